// Command hybridns serves Route 53 and zone-file zones authoritatively and
// forwards everything else by rule through a cache.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"slices"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := newApp().Run(os.Args); err != nil {
		writeFatal(os.Stderr, err, fatalFormat(os.Args))
		os.Exit(1)
	}
}

// newApp is the command line: its commands and flags (the README's tables
// are tested against it).
func newApp() *cli.App {
	return &cli.App{
		Name:  "hybridns",
		Usage: "authoritative DNS for Route 53 zones and conditional forwarding for hybrid AWS networks",
		Commands: []*cli.Command{
			{
				Name:   "serve",
				Usage:  "answer DNS queries",
				Flags:  configFlags(),
				Action: serveCmd,
			},
			{
				Name:      "check",
				Usage:     "validate a config and its zones, or with --zone one zone file as named-checkzone does; exit non-zero on any problem",
				ArgsUsage: "[--zone NAME FILE]",
				Flags:     checkFlags(),
				Action:    checkCmd,
			},
			{
				Name:   "sync",
				Usage:  "sync the Route 53 zones once, print a per-zone report (and write snapshots with --snapshot-dir)",
				Flags:  append(configFlags(), &cli.BoolFlag{Name: "once", Value: true, Usage: "sync once and exit (the only mode)"}),
				Action: syncCmd,
			},
			{
				Name:   "export",
				Usage:  "write one Route 53 hosted zone as a BIND zone file to stdout",
				Flags:  append(configFlags(), &cli.StringFlag{Name: "zone", Required: true, Usage: "the hosted zone: its `ID` or name"}),
				Action: exportCmd,
			},
			{
				Name:      "import",
				Usage:     "apply a BIND zone file to one Route 53 hosted zone as the minimal diff (prints the plan; --dry-run changes nothing)",
				ArgsUsage: "FILE",
				Flags: append(configFlags(),
					&cli.StringFlag{Name: "zone", Required: true, Usage: "the hosted zone: its `ID` or name"},
					&cli.BoolFlag{Name: "dry-run", Usage: "print the plan, change nothing", DefaultText: "off"}),
				Action: importCmd,
			},
			{
				Name:      "keygen",
				Usage:     "print a new TSIG key as a BIND key file and as a tsig_keys entry",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{&cli.StringFlag{Name: "algorithm", Aliases: []string{"a"}, Value: "hmac-sha256", Usage: "`ALGORITHM`: hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha1 or hmac-md5"}},
				Action:    keygenCmd,
			},
			{
				Name:      "token",
				Usage:     "print a new API token and the token_sha256 the config keeps",
				ArgsUsage: "NAME",
				Action:    tokenCmd,
			},
			{
				Name:  "reverse",
				Usage: "reconcile a Route 53 reverse zone (reverse: mode route53) with its forward zones",
				Flags: append(configFlags(), &cli.StringFlag{Name: "zone", Required: true, Usage: "the reverse `ZONE`: its name or hosted zone ID"},
					&cli.BoolFlag{Name: "dry-run", Usage: "print the PTR changes, write nothing", DefaultText: "off"}),
				Action: reverseCmd,
			},
			{
				Name:  "status",
				Usage: "show a running instance's zones, forwarding rules and upstream health (GET /status)",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "http", Value: "127.0.0.1:8053", Usage: "ask the instance's HTTP endpoint at `ADDR` (its http_listen)", EnvVars: []string{"HYBRIDNS_HTTP_LISTEN"}},
					&cli.BoolFlag{Name: "json", Usage: "print the JSON document as served", DefaultText: "off"},
				},
				Action: statusCmd,
			},
			{
				Name:   "health",
				Usage:  "exit 0 when a running instance's /healthz says ok (for a container HEALTHCHECK), 1 otherwise",
				Flags:  healthFlags(),
				Action: healthCmd,
			},
			{
				Name:  "version",
				Usage: "print the version",
				Action: func(c *cli.Context) error {
					fmt.Fprintln(c.App.Writer, "hybridns", buildVersion())
					return nil
				},
			},
		},
	}
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return version
}

// configFlags are the flags of the commands that read a config. Each
// overrides one config key; the help shows the built-in default only where
// the flag has one of its own (a value in the file wins over it too).
func configFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "YAML config `FILE`", EnvVars: []string{"HYBRIDNS_CONFIG"}},
		&cli.StringSliceFlag{Name: "listen", Usage: "answer DNS on `ADDR` (IP:port or :port), UDP and TCP; repeatable", DefaultText: ":53", EnvVars: []string{"HYBRIDNS_LISTEN"}},
		&cli.StringFlag{Name: "zone-dir", Usage: "serve the <zone>.zone files in `DIR`, watched for changes", EnvVars: []string{"HYBRIDNS_ZONE_DIR"}},
		&cli.StringFlag{Name: "http-listen", Usage: "serve /healthz, /readyz, /metrics, /status and the control requests on `ADDR`; off disables it", DefaultText: "127.0.0.1:8053", EnvVars: []string{"HYBRIDNS_HTTP_LISTEN"}},
		&cli.DurationFlag{Name: "lame-duck", Usage: "on SIGTERM keep answering for `DURATION` with /readyz at 503, then stop", DefaultText: "5s", EnvVars: []string{"HYBRIDNS_LAME_DUCK"}},
		&cli.BoolFlag{Name: "proxy-protocol", Usage: "expect PROXY protocol v2 headers on TCP (behind an NLB; needs proxy_protocol.trusted in the config)", DefaultText: "off", EnvVars: []string{"HYBRIDNS_PROXY_PROTOCOL"}},
		&cli.StringSliceFlag{Name: "forward", Usage: "forwarding rule `ZONE=ADDR[,ADDR…]`, repeatable", EnvVars: []string{"HYBRIDNS_FORWARD"}},
		&cli.StringFlag{Name: "forward-default", Usage: "upstreams for every other name, `ADDR[,ADDR…]`: IP, IP:port, vpc (the VPC resolver) or resolv.conf (its nameservers)", EnvVars: []string{"HYBRIDNS_FORWARD_DEFAULT"}},
		&cli.StringFlag{Name: "allow-recursion", Usage: "client networks that may use forwarding, `CIDR[,CIDR…]`", DefaultText: "loopback, RFC 1918, RFC 6598, RFC 4193", EnvVars: []string{"HYBRIDNS_ALLOW_RECURSION"}},
		&cli.StringFlag{Name: "vpc-cidr", Usage: "the VPC's network `CIDR`; the upstream vpc is its base address + 2", EnvVars: []string{"HYBRIDNS_VPC_CIDR"}},
		&cli.BoolFlag{Name: "route53", Usage: "mirror every Route 53 hosted zone the credentials can see", DefaultText: "off", EnvVars: []string{"HYBRIDNS_ROUTE53"}},
		&cli.StringSliceFlag{Name: "route53-zone", Usage: "mirror this hosted zone (`ID` or name), repeatable", EnvVars: []string{"HYBRIDNS_ROUTE53_ZONE"}},
		&cli.StringFlag{Name: "route53-endpoint", Usage: "Route 53 API endpoint `URL` (a fake, LocalStack, moto)", EnvVars: []string{"HYBRIDNS_ROUTE53_ENDPOINT"}},
		&cli.DurationFlag{Name: "route53-interval", Usage: "refresh every hosted zone every `DURATION`", DefaultText: "5m", EnvVars: []string{"HYBRIDNS_ROUTE53_INTERVAL"}},
		&cli.Float64Flag{Name: "route53-rps", Usage: "Route 53 requests per second (`N`) for the whole process", DefaultText: "5", EnvVars: []string{"HYBRIDNS_ROUTE53_RPS"}},
		&cli.StringFlag{Name: "snapshot-dir", Usage: "keep the mirrored zones in `DIR` for a cold start", EnvVars: []string{"HYBRIDNS_SNAPSHOT_DIR"}},
		&cli.StringFlag{Name: "log-level", Usage: "`LEVEL`: debug, info, warn or error", DefaultText: "info", EnvVars: []string{"HYBRIDNS_LOG_LEVEL"}},
		&cli.StringFlag{Name: "log-format", Usage: "`FORMAT` of the log and of fatal errors: text or json", DefaultText: "text", EnvVars: []string{"HYBRIDNS_LOG_FORMAT"}},
		&cli.Float64Flag{Name: "log-queries", Usage: "`FRACTION` of queries to log, 0 to 1", DefaultText: "0", EnvVars: []string{"HYBRIDNS_LOG_QUERIES"}},
	}
}

// checkFlagNames are the flags `check` uses: those that change what is
// validated (the others only steer a running server).
var checkFlagNames = []string{"config", "listen", "zone-dir", "forward", "forward-default", "allow-recursion", "vpc-cidr", "log-format"}

func checkFlags() []cli.Flag {
	out := []cli.Flag{&cli.StringFlag{Name: "zone", Usage: "check only the zone file FILE (the argument) for zone `NAME`, as named-checkzone NAME FILE"}}
	for _, f := range configFlags() {
		if slices.Contains(checkFlagNames, f.Names()[0]) {
			out = append(out, f)
		}
	}
	return out
}
