// Command hybridns serves Route 53 and zone-file zones authoritatively and
// forwards everything else by rule through a cache.
package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	app := &cli.App{
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
				Name:   "check",
				Usage:  "validate a config and its zones; exit non-zero on any problem",
				Flags:  configFlags(),
				Action: checkCmd,
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
				Flags:  append(configFlags(), &cli.StringFlag{Name: "zone", Required: true, Usage: "zone ID or name"}),
				Action: exportCmd,
			},
			{
				Name:      "import",
				Usage:     "apply a BIND zone file to one Route 53 hosted zone as the minimal diff (prints the plan; --dry-run changes nothing)",
				ArgsUsage: "FILE",
				Flags: append(configFlags(),
					&cli.StringFlag{Name: "zone", Required: true, Usage: "zone ID or name"},
					&cli.BoolFlag{Name: "dry-run", Usage: "print the plan, change nothing"}),
				Action: importCmd,
			},
			{
				Name:      "keygen",
				Usage:     "print a new TSIG key as a BIND key file and as a tsig_keys entry",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{&cli.StringFlag{Name: "algorithm", Aliases: []string{"a"}, Value: "hmac-sha256", Usage: "hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha1 or hmac-md5"}},
				Action:    keygenCmd,
			},
			{
				Name:  "status",
				Usage: "show a running instance's zones, forwarding rules and upstream health (GET /status)",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "http", Value: "127.0.0.1:8053", Usage: "the instance's HTTP address (its http_listen)", EnvVars: []string{"HYBRIDNS_HTTP_LISTEN"}},
					&cli.BoolFlag{Name: "json", Usage: "print the JSON document as served"},
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
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "hybridns:", err)
		os.Exit(1)
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

func configFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "YAML config file", EnvVars: []string{"HYBRIDNS_CONFIG"}},
		&cli.StringSliceFlag{Name: "listen", Usage: "DNS listen address, UDP and TCP (repeatable; default :53)", EnvVars: []string{"HYBRIDNS_LISTEN"}},
		&cli.StringFlag{Name: "zone-dir", Usage: "directory of <zone>.zone files, watched for changes", EnvVars: []string{"HYBRIDNS_ZONE_DIR"}},
		&cli.StringFlag{Name: "http-listen", Usage: "HTTP address for /healthz, /readyz, /metrics, /reload, /sync (`off` to disable; default 127.0.0.1:8053)", EnvVars: []string{"HYBRIDNS_HTTP_LISTEN"}},
		&cli.DurationFlag{Name: "lame-duck", Usage: "on SIGTERM keep answering this long with /readyz at 503 (default 5s)", EnvVars: []string{"HYBRIDNS_LAME_DUCK"}},
		&cli.BoolFlag{Name: "proxy-protocol", Usage: "expect PROXY protocol v2 headers on TCP (behind an NLB; needs proxy_protocol.trusted in the config)", EnvVars: []string{"HYBRIDNS_PROXY_PROTOCOL"}},
		&cli.StringSliceFlag{Name: "forward", Usage: "forwarding rule ZONE=ADDR[,ADDR…] (repeatable)", EnvVars: []string{"HYBRIDNS_FORWARD"}},
		&cli.StringFlag{Name: "forward-default", Usage: "upstreams for every other name: ADDR[,ADDR…] (`vpc` = the VPC resolver)", EnvVars: []string{"HYBRIDNS_FORWARD_DEFAULT"}},
		&cli.StringFlag{Name: "allow-recursion", Usage: "client networks that may use forwarding: CIDR[,CIDR…] (default loopback, RFC 1918, RFC 4193)", EnvVars: []string{"HYBRIDNS_ALLOW_RECURSION"}},
		&cli.StringFlag{Name: "vpc-cidr", Usage: "the VPC's CIDR (the `vpc` upstream is its base + 2)", EnvVars: []string{"HYBRIDNS_VPC_CIDR"}},
		&cli.BoolFlag{Name: "route53", Usage: "mirror every Route 53 hosted zone the credentials can see", EnvVars: []string{"HYBRIDNS_ROUTE53"}},
		&cli.StringSliceFlag{Name: "route53-zone", Usage: "mirror this hosted zone (ID or name; repeatable)", EnvVars: []string{"HYBRIDNS_ROUTE53_ZONE"}},
		&cli.StringFlag{Name: "route53-endpoint", Usage: "Route 53 API endpoint URL (a fake, LocalStack, moto)", EnvVars: []string{"HYBRIDNS_ROUTE53_ENDPOINT"}},
		&cli.DurationFlag{Name: "route53-interval", Usage: "refresh interval per zone (default 5m)", EnvVars: []string{"HYBRIDNS_ROUTE53_INTERVAL"}},
		&cli.Float64Flag{Name: "route53-rps", Usage: "Route 53 requests per second for the whole process (default 5)", EnvVars: []string{"HYBRIDNS_ROUTE53_RPS"}},
		&cli.StringFlag{Name: "snapshot-dir", Usage: "keep the mirrored zones here for a cold start", EnvVars: []string{"HYBRIDNS_SNAPSHOT_DIR"}},
		&cli.StringFlag{Name: "log-level", Usage: "debug, info, warn, error", EnvVars: []string{"HYBRIDNS_LOG_LEVEL"}},
		&cli.StringFlag{Name: "log-format", Usage: "text or json", EnvVars: []string{"HYBRIDNS_LOG_FORMAT"}},
		&cli.Float64Flag{Name: "log-queries", Usage: "fraction of queries to log (0..1)", EnvVars: []string{"HYBRIDNS_LOG_QUERIES"}},
	}
}
