package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"hybridns/zonestore"
	"hybridns/zonestore/zonedir"
	"io"
	"math"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.yaml.in/yaml/v3"
)

// Config is everything `hybridns serve` runs on. The config file fills it
// first; flags and HYBRIDNS_* environment variables override single fields.
type Config struct {
	Listen         []string       `yaml:"listen"`
	ZoneDir        string         `yaml:"zone_dir"`
	HTTPListen     string         `yaml:"http_listen"`
	AllowRecursion []string       `yaml:"allow_recursion"`
	Forward        []ForwardRule  `yaml:"forward"`
	ForwardDefault []string       `yaml:"forward_default"`
	AWS            AWSConfig      `yaml:"aws"`
	Cache          CacheConfig    `yaml:"cache"`
	Upstream       UpstreamConfig `yaml:"upstream"`
	Views          []ViewConfig   `yaml:"views"`
	Log            LogConfig      `yaml:"log"`
	Route53        Route53Config  `yaml:"route53"`
	SnapshotDir    string         `yaml:"snapshot_dir"`
	// LameDuck is how long a SIGTERM keeps answering with /readyz at 503,
	// so the load balancer takes the instance out first (default 5s).
	LameDuck      *time.Duration `yaml:"lame_duck"`
	ProxyProtocol ProxyConfig    `yaml:"proxy_protocol"`
	TCP           TCPConfig      `yaml:"tcp"`
	RRL           RRLConfig      `yaml:"rate_limit"`
	// HTTPControl lists the networks allowed to POST /reload and /sync
	// (default loopback).
	HTTPControl []string `yaml:"http_control_from"`
	// TSIG keys (RFC 8945) inline and from BIND key files.
	TSIGKeys     []TSIGKeyConfig `yaml:"tsig_keys"`
	TSIGKeyFiles []string        `yaml:"tsig_key_files"`
	// UpdatePolicy: zone → BIND update-policy rules; no entry, no updates.
	UpdatePolicy map[string][]string `yaml:"update_policy"`
	// UpdateTimeout bounds one UPDATE, Route 53 retries included.
	UpdateTimeout time.Duration `yaml:"update_timeout"`
	// Secondary zones, transferred in from primaries.
	Secondary []SecondaryConfig `yaml:"secondary"`
	// Follow makes the instance a follower of other hybridns instances.
	Follow *FollowConfig `yaml:"follow"`
	// Zone files: size and record limits per file (0: the defaults, 128 MiB
	// and 1,000,000 records), how long a changed file must be quiet before
	// it is read (default 200ms), and whether a changed file must carry a
	// higher SOA serial (default: load it with a warning, as BIND).
	ZoneMaxBytes           int64         `yaml:"zone_max_bytes"`
	ZoneMaxRecords         int           `yaml:"zone_max_records"`
	ZoneQuiet              time.Duration `yaml:"zone_quiet"`
	ZoneSerialMustIncrease bool          `yaml:"zone_serial_must_increase"`
	// The records API and dyndns2 (off unless api_listen is set).
	APIListen         string           `yaml:"api_listen"`
	APITLSCert        string           `yaml:"api_tls_cert"`
	APITLSKey         string           `yaml:"api_tls_key"`
	APIAllowPlainHTTP bool             `yaml:"api_allow_plain_http"` // plain HTTP off loopback (behind a TLS proxy)
	APITokens         []APITokenConfig `yaml:"api_tokens"`
	APITrustedProxies []string         `yaml:"api_trusted_proxies"` // may set X-Forwarded-For or a PROXY header
	APIProxyProtocol  bool             `yaml:"api_proxy_protocol"`  // PROXY v1/v2 from api_trusted_proxies
	// Reverse zones kept from forward zones' addresses.
	Reverse []ReverseConfig `yaml:"reverse"`
	// Zone transfers out (AXFR/IXFR), NOTIFY and the catalog zone.
	Transfer []TransferConfig `yaml:"transfer"`
	Catalog  CatalogConfig    `yaml:"catalog"`
	Journal  JournalConfig    `yaml:"journal"`
	// Zones lists zone files by name, as BIND's zone statements, besides
	// the <zone>.zone files of zone_dir (files relative to zone_dir).
	Zones []ZoneFileConfig `yaml:"zones"`
	// NSID (RFC 5001) identifies this instance to a query that asks (dig
	// +nsid): "hostname" for the host name, or the text itself.
	NSID string `yaml:"nsid"`
	// ResolvConf is the file whose nameservers the "resolv.conf" upstream
	// stands for (default /etc/resolv.conf).
	ResolvConf string `yaml:"resolv_conf"`

	resolvServers []string // its nameservers, read by validate

	file string     // where it was read from, for messages
	root *yaml.Node // the document, for the line of a key in messages
	// fromFlags maps config keys set by a flag or environment variable
	// to its name, so that a bad value is blamed on it, not on the file.
	fromFlags map[string]string
	// readErrs are the file's unknown keys and undecodable values, each at
	// its line and column; validate reports them with every other problem.
	readErrs []error
}

// ForwardRule sends a domain (and everything below it) to upstreams.
type ForwardRule struct {
	Zone      string   `yaml:"zone"`
	Upstreams []string `yaml:"upstreams"`
	Policy    string   `yaml:"policy"` // random | round_robin | sequential

	line int
}

// AWSConfig holds what hybridns needs to know of its VPC.
type AWSConfig struct {
	VPCCIDR string `yaml:"vpc_cidr"`
	// BuiltinRules forwards amazonaws.com, compute.internal, ec2.internal and
	// the VPC's reverse zones to the VPC resolver. Default: on whenever any
	// forwarding is configured.
	BuiltinRules *bool `yaml:"builtin_rules"`
}

// CacheConfig tunes the forwarder's cache.
type CacheConfig struct {
	Entries     int           `yaml:"entries"`
	MaxBytes    int64         `yaml:"max_bytes"` // estimated heap bound (default 256 MiB)
	MinTTL      time.Duration `yaml:"min_ttl"`
	MaxTTL      time.Duration `yaml:"max_ttl"`
	NegMaxTTL   time.Duration `yaml:"negative_max_ttl"`
	ServFailTTL time.Duration `yaml:"servfail_ttl"`
	StaleTTL    time.Duration `yaml:"stale_ttl"`
	Prefetch    int           `yaml:"prefetch"`
	// NegativeShare is the percentage of entries and max_bytes that
	// negative answers may fill (default 25), so a random-subdomain flood
	// cannot evict positive answers.
	NegativeShare int `yaml:"negative_share"`
}

// UpstreamConfig tunes upstream exchanges.
type UpstreamConfig struct {
	Timeout     time.Duration `yaml:"timeout"`
	Deadline    time.Duration `yaml:"deadline"`
	MaxInFlight int           `yaml:"max_in_flight"` // per rule
	// MaxInFlightPerUpstream bounds exchanges to one upstream address.
	MaxInFlightPerUpstream int `yaml:"max_in_flight_per_upstream"`
	// FetchesPerZone bounds concurrent fetches of distinct names under one
	// zone (BIND's fetches-per-zone); 0 means the default.
	FetchesPerZone int `yaml:"fetches_per_zone"`
	// MaxFails failed health probes mark an upstream down (default 3);
	// 0 turns health checking off.
	MaxFails            *int          `yaml:"max_fails"`
	HealthCheckInterval time.Duration `yaml:"health_check_interval"`
}

// Route53Config says which hosted zones to mirror and how.
type Route53Config struct {
	Discover   bool              `yaml:"discover"`   // every zone the credentials see
	Zones      []string          `yaml:"zones"`      // IDs or names, instead
	Suffixes   []string          `yaml:"suffixes"`   // discovery: keep zones under these names
	Visibility string            `yaml:"visibility"` // discovery: public | private
	Tags       map[string]string `yaml:"tags"`       // discovery: zones with all these tags ("*": any value)
	Endpoint   string            `yaml:"endpoint"`   // the fake, LocalStack, moto
	RoleARN    string            `yaml:"role_arn"`
	Interval   time.Duration     `yaml:"interval"`
	RPS        float64           `yaml:"rps"`
	Burst      int               `yaml:"burst"`
	// Region is this instance's region, for latency records.
	Region         string        `yaml:"region"`
	HealthInterval time.Duration `yaml:"health_interval"`
	// ChangePoll is how often changes made through hybridns are polled
	// with GetChange until INSYNC (default 10s).
	ChangePoll    time.Duration    `yaml:"change_poll"`
	Accounts      []AccountConfig  `yaml:"accounts"`
	Locations     []LocationConfig `yaml:"locations"`
	CIDRLocations []CIDRConfig     `yaml:"cidr_locations"`
}

// AccountConfig is another AWS account to mirror zones from, through a role.
type AccountConfig struct {
	Name     string   `yaml:"name"`
	RoleARN  string   `yaml:"role_arn"`
	Discover bool     `yaml:"discover"`
	Zones    []string `yaml:"zones"`
}

// LocationConfig places client networks for geolocation records.
type LocationConfig struct {
	Clients     []string `yaml:"clients"`
	Continent   string   `yaml:"continent"`
	Country     string   `yaml:"country"`
	Subdivision string   `yaml:"subdivision"`
}

// CIDRConfig is one location of a CIDR collection, for IP-based records.
type CIDRConfig struct {
	Collection string   `yaml:"collection"`
	Location   string   `yaml:"location"`
	CIDRs      []string `yaml:"cidrs"`
}

func (r Route53Config) enabled() bool {
	return r.Discover || len(r.Zones) > 0 || len(r.Accounts) > 0
}

// ViewConfig is a named set of client networks.
type ViewConfig struct {
	Name    string   `yaml:"name"`
	Clients []string `yaml:"clients"`
	VPCs    []string `yaml:"vpcs"`
	// ZoneDir and Zones are zone files only this view's clients see; a
	// zone here shadows the default view's zone of the same name.
	ZoneDir string           `yaml:"zone_dir"`
	Zones   []ZoneFileConfig `yaml:"zones"`
	// AllowQuery, when set, is who of the view's clients may query
	// (BIND's allow-query); the others get REFUSED. [] refuses all.
	AllowQuery []string `yaml:"allow_query"`
}

// LogConfig selects log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
	// Queries is the fraction of queries logged (client, name, type,
	// rcode, path, duration); 0 = none, 1 = all.
	Queries float64 `yaml:"queries"`
	// ErrorsPerSecond bounds warning and error lines (a flood must not
	// fill a disk); excess lines are counted and summarized. Default 20.
	ErrorsPerSecond float64 `yaml:"errors_per_second"`
}

// ProxyConfig enables PROXY protocol v2 on the TCP listeners (as AWS NLBs
// send it), so views and ACLs see the real client.
type ProxyConfig struct {
	Enabled bool `yaml:"enabled"`
	// Trusted lists the load balancers' networks, the only peers whose
	// header is believed; required when enabled. A header from anyone
	// else closes the connection.
	Trusted []string `yaml:"trusted"`
}

// TCPConfig bounds TCP clients.
type TCPConfig struct {
	MaxConnections int `yaml:"max_connections"` // default 1000
	// MaxConnectionsPerClient caps the open connections of one client
	// address (the PROXY header's, behind a balancer); default 64.
	MaxConnectionsPerClient int           `yaml:"max_connections_per_client"`
	IdleTimeout             time.Duration `yaml:"idle_timeout"` // default 10s
}

// RRLConfig is response rate limiting for UDP, as BIND's rate-limit.
type RRLConfig struct {
	ResponsesPerSecond int      `yaml:"responses_per_second"` // 0 = off (the default, as in BIND)
	NXDomainsPerSecond int      `yaml:"nxdomains_per_second"`
	ErrorsPerSecond    int      `yaml:"errors_per_second"`
	Slip               *int     `yaml:"slip"` // default 2
	IPv4PrefixLen      int      `yaml:"ipv4_prefix_length"`
	IPv6PrefixLen      int      `yaml:"ipv6_prefix_length"`
	Exempt             []string `yaml:"exempt_clients"` // default loopback
}

// loadConfig reads a YAML config strictly: unknown keys are errors that name
// the key, the file and the line.
func loadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parseConfig(data, path)
}

func parseConfig(data []byte, path string) (*Config, error) {
	var root yaml.Node
	cfg := &Config{file: path}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return cfg, nil // empty file: all defaults
		}
		// A syntax error: yaml says "yaml: line N: …".
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, tail, ok := strings.Cut(rest, ": "); ok {
				return nil, fmt.Errorf("%s:%s: not valid YAML: %s", path, n, tail)
			}
		}
		return nil, fmt.Errorf("%s: not valid YAML: %s", path, msg)
	}
	// The node tree is checked against the Config type first (unknown
	// keys, values of the wrong kind, each at its line and column); then
	// the values are decoded leniently, so that validate can report every
	// other problem in the same run.
	cfg.readErrs = cfg.checkNodes(&root)
	if err := root.Decode(cfg); err != nil && len(cfg.readErrs) == 0 {
		cfg.readErrs = append(cfg.readErrs, fmt.Errorf("%s: %s", path, goTypeNames.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "the expected kind of value")))
	}
	cfg.file = path
	cfg.root = &root
	// Paths in the file are relative to the file, as BIND's and nginx's.
	cfg.ZoneDir = cfg.path(cfg.ZoneDir)
	cfg.SnapshotDir = cfg.path(cfg.SnapshotDir)
	for i := range cfg.Views {
		cfg.Views[i].ZoneDir = cfg.path(cfg.Views[i].ZoneDir)
	}
	for i, f := range cfg.TSIGKeyFiles {
		cfg.TSIGKeyFiles[i] = cfg.path(f)
	}
	if doc := root.Content; len(doc) == 1 && doc[0].Kind == yaml.MappingNode {
		for i := 0; i+1 < len(doc[0].Content); i += 2 {
			if doc[0].Content[i].Value == "forward" && doc[0].Content[i+1].Kind == yaml.SequenceNode {
				for j, item := range doc[0].Content[i+1].Content {
					if j < len(cfg.Forward) {
						cfg.Forward[j].line = item.Line
					}
				}
			}
		}
	}
	return cfg, nil
}

// goTypeNames matches what the YAML library says of Go types
// ("into main.Config", "into time.Duration").
var goTypeNames = regexp.MustCompile(`[a-z0-9]+\.[A-Z][A-Za-z0-9]*|\[\][a-z0-9.]+`)

// where names a config position for error messages.
func (c *Config) where(line int) string {
	if c.file == "" {
		return "flags"
	}
	if line > 0 {
		return fmt.Sprintf("%s:%d", c.file, line)
	}
	return c.file
}

// lineOf returns the line of a dotted key ("tcp.idle_timeout") in the
// config file, or 0 when the file does not set it.
func (c *Config) lineOf(key string) int {
	if c.root == nil || len(c.root.Content) != 1 {
		return 0
	}
	n, line := c.root.Content[0], 0
	for _, part := range strings.Split(key, ".") {
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

// checkRanges bounds every numeric setting; a zero value means the
// default unless the message says otherwise. Messages name the key and,
// when the file sets it, the line.
func (c *Config) checkRanges() []error {
	var errs []error
	bad := func(key string, val any, want string) {
		errs = append(errs, fmt.Errorf("%s: %s %v: want %s", c.at(key), key, val, want))
	}
	dur := func(key string, v, lo, hi time.Duration, want string) {
		if v < lo || v > hi {
			bad(key, v, want)
		}
	}
	num := func(key string, v, lo, hi int, want string) {
		if v < lo || v > hi {
			bad(key, v, want)
		}
	}
	const day = 24 * time.Hour
	// Sentinels: -1 turns a feature off where the component documents it.
	num("cache.entries", c.Cache.Entries, -1, 100_000_000, "0 (default 100000) to 100000000, or -1 for no cache")
	dur("cache.min_ttl", c.Cache.MinTTL, 0, day, "0 to 24h")
	dur("cache.max_ttl", c.Cache.MaxTTL, 0, 7*day, "0 (default 24h) to 168h")
	if c.Cache.MaxTTL > 0 && c.Cache.MinTTL > c.Cache.MaxTTL {
		bad("cache.min_ttl", c.Cache.MinTTL, fmt.Sprintf("at most cache.max_ttl (%v)", c.Cache.MaxTTL))
	}
	dur("cache.negative_max_ttl", c.Cache.NegMaxTTL, 0, day, "0 (default 1h) to 24h")
	if c.Cache.ServFailTTL != -time.Second {
		dur("cache.servfail_ttl", c.Cache.ServFailTTL, 0, 30*time.Second, "0 (default 5s) to 30s, or -1s for no SERVFAIL caching")
	}
	if c.Cache.StaleTTL != -time.Second {
		dur("cache.stale_ttl", c.Cache.StaleTTL, 0, 7*day, "0 (default 24h) to 168h, or -1s for no serve-stale")
	}
	num("cache.prefetch", c.Cache.Prefetch, -1, 1_000_000, "0 (default 3) to 1000000 hits, or -1 for no prefetch")
	num("cache.negative_share", c.Cache.NegativeShare, 0, 90, "0 (default 25) to 90 percent")
	dur("upstream.timeout", c.Upstream.Timeout, 0, time.Minute, "0 (default 2s) to 1m")
	dur("upstream.deadline", c.Upstream.Deadline, 0, 2*time.Minute, "0 (default 5s) to 2m")
	timeout, deadline := cmp.Or(c.Upstream.Timeout, 2*time.Second), cmp.Or(c.Upstream.Deadline, 5*time.Second)
	if c.Upstream.Timeout >= 0 && c.Upstream.Deadline >= 0 && timeout > deadline {
		bad("upstream.timeout", timeout, fmt.Sprintf("at most upstream.deadline (%v)", deadline))
	}
	num("upstream.max_in_flight", c.Upstream.MaxInFlight, 0, 1_000_000, "0 (default 1000) to 1000000")
	num("upstream.max_in_flight_per_upstream", c.Upstream.MaxInFlightPerUpstream, 0, 1_000_000, "0 (default 1000) to 1000000")
	num("upstream.fetches_per_zone", c.Upstream.FetchesPerZone, 0, 1_000_000, "0 (default 100) to 1000000")
	if c.Upstream.MaxFails != nil {
		num("upstream.max_fails", *c.Upstream.MaxFails, 0, 1000, "0 (health checking off) to 1000")
	}
	dur("upstream.health_check_interval", c.Upstream.HealthCheckInterval, 0, time.Hour, "0 (the default) to 1h")
	if c.Cache.MaxBytes != 0 && (c.Cache.MaxBytes < 1<<20 || c.Cache.MaxBytes > 1<<40) {
		bad("cache.max_bytes", c.Cache.MaxBytes, "0 (default 256 MiB) or 1 MiB (1048576) to 1 TiB")
	}
	if c.LameDuck != nil {
		dur("lame_duck", *c.LameDuck, 0, 10*time.Minute, "0 to 10m")
	}
	num("tcp.max_connections", c.TCP.MaxConnections, 0, 1_000_000, "0 (default 1000) to 1000000")
	num("tcp.max_connections_per_client", c.TCP.MaxConnectionsPerClient, 0, 1_000_000, "0 (default 64) to 1000000")
	dur("tcp.idle_timeout", c.TCP.IdleTimeout, 0, time.Hour, "0 (default 10s) to 1h")
	num("rate_limit.responses_per_second", c.RRL.ResponsesPerSecond, 0, 1_000_000, "0 (off) to 1000000")
	num("rate_limit.nxdomains_per_second", c.RRL.NXDomainsPerSecond, -1, 1_000_000, "0 (as responses_per_second) to 1000000, or -1 for unlimited")
	num("rate_limit.errors_per_second", c.RRL.ErrorsPerSecond, -1, 1_000_000, "0 (as responses_per_second) to 1000000, or -1 for unlimited")
	if c.RRL.Slip != nil {
		num("rate_limit.slip", *c.RRL.Slip, 0, 10, "0 (drop every limited response) to 10, as BIND")
	}
	num("rate_limit.ipv4_prefix_length", c.RRL.IPv4PrefixLen, 0, 32, "0 (default 24) to 32")
	num("rate_limit.ipv6_prefix_length", c.RRL.IPv6PrefixLen, 0, 128, "0 (default 56) to 128")
	if c.Log.Queries < 0 || c.Log.Queries > 1 || math.IsNaN(c.Log.Queries) {
		bad("log.queries", c.Log.Queries, "a fraction between 0 and 1")
	}
	if c.Log.ErrorsPerSecond < 0 || c.Log.ErrorsPerSecond > 100_000 || math.IsNaN(c.Log.ErrorsPerSecond) {
		bad("log.errors_per_second", c.Log.ErrorsPerSecond, "0 (default 20) to 100000")
	}
	if c.Route53.Interval != 0 {
		dur("route53.interval", c.Route53.Interval, time.Second, 7*day, "0 (default 5m) or 1s to 168h")
	}
	if c.Route53.HealthInterval != 0 {
		dur("route53.health_interval", c.Route53.HealthInterval, time.Second, day, "0 (default 30s) or 1s to 24h")
	}
	if c.Route53.RPS < 0 || c.Route53.RPS > 100 || math.IsNaN(c.Route53.RPS) {
		bad("route53.rps", c.Route53.RPS, "0 (default 5) to 100 (the account allows 5 in all)")
	}
	num("route53.burst", c.Route53.Burst, 0, 1000, "0 (default 10) to 1000")
	return errs
}

// validate returns every problem of the config at once.
func (c *Config) validate() error {
	errs := append([]error(nil), c.readErrs...)
	if n := c.nodeAt("listen"); len(c.Listen) == 0 && (n == nil || n.Kind != yaml.ScalarNode) {
		errs = append(errs, fmt.Errorf("%s: listen: at least one address is needed", c.at("listen")))
	}
	for i, a := range c.Listen {
		if _, err := netip.ParseAddrPort(a); err != nil && !strings.HasPrefix(a, ":") {
			msg := "want IP:port or :port"
			if h := bindHintValue(a); h != "" {
				msg = h
			}
			errs = append(errs, fmt.Errorf("%s: listen %q: %s", c.at(fmt.Sprintf("listen[%d]", i)), a, msg))
		}
	}
	if c.ZoneDir != "" {
		// Listed, not only stat'ed: a directory we cannot read would claim
		// no zone, and its names would be forwarded.
		if _, err := os.ReadDir(c.ZoneDir); err != nil {
			errs = append(errs, fmt.Errorf("%s: zone_dir %q: not a readable directory", c.at("zone_dir"), c.ZoneDir))
		}
	}
	if c.ZoneMaxBytes < 0 || c.ZoneMaxBytes > 16<<30 {
		errs = append(errs, fmt.Errorf("%s: zone_max_bytes %d: want 0 (default) to 16 GiB", c.at("zone_max_bytes"), c.ZoneMaxBytes))
	}
	if c.ZoneMaxRecords < 0 || c.ZoneMaxRecords > 100_000_000 {
		errs = append(errs, fmt.Errorf("%s: zone_max_records %d: want 0 (default) to 100000000", c.at("zone_max_records"), c.ZoneMaxRecords))
	}
	if c.ZoneQuiet < 0 || c.ZoneQuiet > time.Minute {
		errs = append(errs, fmt.Errorf("%s: zone_quiet %v: want 0 (default) to 1m", c.at("zone_quiet"), c.ZoneQuiet))
	}
	for i, s := range c.AllowRecursion {
		if s == "none" {
			continue
		}
		if _, err := netip.ParseAddr(s); err == nil {
			continue // one address
		}
		if p := cidrProblem(s); p != "" {
			errs = append(errs, fmt.Errorf("%s: allow_recursion %q: %s", c.at(fmt.Sprintf("allow_recursion[%d]", i)), s, p))
		}
	}
	seen := map[string]bool{}
	for i, r := range c.Forward {
		rule := fmt.Sprintf("forward[%d]", i)
		if r.Zone == "" {
			errs = append(errs, fmt.Errorf("%s: forward: rule without zone", c.at(rule)))
		} else if _, ok := dns.IsDomainName(r.Zone); !ok {
			errs = append(errs, fmt.Errorf("%s: forward zone %q: not a domain name", c.at(rule+".zone"), r.Zone))
		}
		if len(r.Upstreams) == 0 {
			errs = append(errs, fmt.Errorf("%s: forward %s: no upstreams", c.at(rule), r.Zone))
		}
		errs = append(errs, c.checkUpstreams(rule+".upstreams", "forward "+r.Zone, r.Upstreams)...)
		switch r.Policy {
		case "", "random", "round_robin", "sequential":
		default:
			errs = append(errs, fmt.Errorf("%s: forward %s: unknown policy %q (random, round_robin, sequential)", c.at(rule+".policy"), r.Zone, r.Policy))
		}
		key := zonestore.Canonical(r.Zone)
		if seen[key] && r.Zone != "" {
			errs = append(errs, fmt.Errorf("%s: forward %s: zone given twice", c.at(rule+".zone"), r.Zone))
		}
		seen[key] = true
	}
	errs = append(errs, c.checkUpstreams("forward_default", "forward_default", c.ForwardDefault)...)
	upstreamsOK := len(errs)
	if c.AWS.VPCCIDR != "" {
		if p := cidrProblem(c.AWS.VPCCIDR); p != "" {
			errs = append(errs, fmt.Errorf("%s: aws.vpc_cidr %q: %s", c.at("aws.vpc_cidr"), c.AWS.VPCCIDR, p))
		}
	}
	for i, v := range c.Views {
		view := fmt.Sprintf("views[%d]", i)
		if v.Name == "" {
			errs = append(errs, fmt.Errorf("%s: views: a view needs a name", c.at(view)))
			v.Name = fmt.Sprintf("#%d", i+1)
		}
		for j, p := range v.Clients {
			if msg := cidrProblem(p); msg != "" {
				errs = append(errs, fmt.Errorf("%s: view %s: client network %q: %s", c.at(fmt.Sprintf("%s.clients[%d]", view, j)), v.Name, p, msg))
			}
		}
		for j, p := range v.AllowQuery {
			if msg := cidrProblem(p); msg != "" {
				errs = append(errs, fmt.Errorf("%s: view %s: allow_query %q: %s", c.at(fmt.Sprintf("%s.allow_query[%d]", view, j)), v.Name, p, msg))
			}
		}
	}
	for _, list := range []struct {
		key  string
		vals []string
	}{{"proxy_protocol.trusted", c.ProxyProtocol.Trusted}, {"rate_limit.exempt_clients", c.RRL.Exempt}, {"http_control_from", c.HTTPControl}} {
		for i, p := range list.vals {
			if msg := cidrProblem(p); msg != "" {
				errs = append(errs, fmt.Errorf("%s: %s %q: %s", c.at(fmt.Sprintf("%s[%d]", list.key, i)), list.key, p, msg))
			}
		}
	}
	errs = append(errs, c.checkRanges()...)
	if c.ProxyProtocol.Enabled && len(c.ProxyProtocol.Trusted) == 0 {
		errs = append(errs, fmt.Errorf("%s: proxy_protocol.trusted: required when proxy_protocol.enabled is true: list the load balancers' networks (a header from any other peer is refused)",
			c.at("proxy_protocol.enabled")))
	}
	if c.Route53.enabled() {
		switch c.Route53.Visibility {
		case "", "public", "private":
		default:
			errs = append(errs, fmt.Errorf("%s: route53.visibility %q: want public or private", c.at("route53.visibility"), c.Route53.Visibility))
		}
		if c.Route53.ChangePoll < 0 {
			errs = append(errs, fmt.Errorf("%s: route53.change_poll %v: must not be negative", c.at("route53.change_poll"), c.Route53.ChangePoll))
		}
		for i, a := range c.Route53.Accounts {
			if a.RoleARN == "" || (!a.Discover && len(a.Zones) == 0) {
				errs = append(errs, fmt.Errorf("%s: route53.accounts %q: needs role_arn and zones or discover", c.at(fmt.Sprintf("route53.accounts[%d]", i)), a.Name))
			}
		}
		for i, l := range c.Route53.Locations {
			for j, p := range l.Clients {
				if msg := cidrProblem(p); msg != "" {
					errs = append(errs, fmt.Errorf("%s: route53.locations: %q: %s", c.at(fmt.Sprintf("route53.locations[%d].clients[%d]", i, j)), p, msg))
				}
			}
		}
		for i, l := range c.Route53.CIDRLocations {
			for j, p := range l.CIDRs {
				if msg := cidrProblem(p); msg != "" {
					errs = append(errs, fmt.Errorf("%s: route53.cidr_locations: %q: %s", c.at(fmt.Sprintf("route53.cidr_locations[%d].cidrs[%d]", i, j)), p, msg))
				}
			}
		}
	}
	errs = append(errs, c.checkZoneFiles()...)
	if err := c.loadResolvConf(); err != nil {
		errs = append(errs, err)
	} else if !hasForwardErr(errs[:upstreamsOK]) {
		errs = append(errs, c.checkForwarder()...)
	}
	if _, err := c.nsidBytes(); err != nil {
		errs = append(errs, err)
	}
	keys, kerrs := c.tsigKeys()
	errs = append(errs, kerrs...)
	errs = append(errs, c.validateSecondaries(keys)...)
	errs = append(errs, c.validateFollow(keys)...)
	_, xerrs := c.transferRules(keys)
	errs = append(errs, xerrs...)
	_, perrs := c.updatePolicies()
	errs = append(errs, perrs...)
	errs = append(errs, c.validateAPI()...)
	if c.UpdateTimeout < 0 || c.UpdateTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("%s: update_timeout %v: want 0 (default 30s) to 10m", c.at("update_timeout"), c.UpdateTimeout))
	}
	switch strings.ToLower(c.Log.Level) {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("%s: log.level %q: want debug, info, warn or error", c.at("log.level"), c.Log.Level))
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("%s: log.format %q: want text or json", c.at("log.format"), c.Log.Format))
	}
	c.sortByPosition(errs)
	return errors.Join(errs...)
}

// recursionPrefixes parses allow_recursion; nil means the defaults.
func (c *Config) recursionPrefixes() ([]netip.Prefix, error) {
	if c.AllowRecursion == nil {
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(c.AllowRecursion))
	for _, s := range c.AllowRecursion {
		if s == "none" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, err2 := netip.ParseAddr(s); err2 == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				return nil, fmt.Errorf("allow_recursion %q: %s", s, cidrProblem(s))
			}
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func mustPrefix(s string) netip.Prefix {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		panic(err) // validate() has checked every prefix
	}
	return p.Masked()
}

// zoneOptions is what the zone directory loader takes from the config.
func (c *Config) zoneOptions() zonedir.Options {
	return zonedir.Options{MaxBytes: c.ZoneMaxBytes, MaxRecords: c.ZoneMaxRecords, Quiet: c.ZoneQuiet, SerialMustIncrease: c.ZoneSerialMustIncrease}
}
