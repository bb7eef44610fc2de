package main

import (
	"bytes"
	"errors"
	"fmt"
	"hybridns/zonestore"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

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
	// Zone transfers out (AXFR/IXFR), NOTIFY and the catalog zone.
	Transfer []TransferConfig `yaml:"transfer"`
	Catalog  CatalogConfig    `yaml:"catalog"`
	Journal  JournalConfig    `yaml:"journal"`

	file string // where it was read from, for messages
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
	MinTTL      time.Duration `yaml:"min_ttl"`
	MaxTTL      time.Duration `yaml:"max_ttl"`
	NegMaxTTL   time.Duration `yaml:"negative_max_ttl"`
	ServFailTTL time.Duration `yaml:"servfail_ttl"`
	StaleTTL    time.Duration `yaml:"stale_ttl"`
	Prefetch    int           `yaml:"prefetch"`
}

// UpstreamConfig tunes upstream exchanges.
type UpstreamConfig struct {
	Timeout     time.Duration `yaml:"timeout"`
	Deadline    time.Duration `yaml:"deadline"`
	MaxInFlight int           `yaml:"max_in_flight"`
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
	Region         string           `yaml:"region"`
	HealthInterval time.Duration    `yaml:"health_interval"`
	Accounts       []AccountConfig  `yaml:"accounts"`
	Locations      []LocationConfig `yaml:"locations"`
	CIDRLocations  []CIDRConfig     `yaml:"cidr_locations"`
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
	Enabled bool     `yaml:"enabled"`
	Trusted []string `yaml:"trusted"` // who may send a header (default: anyone when enabled)
}

// TCPConfig bounds TCP clients.
type TCPConfig struct {
	MaxConnections int           `yaml:"max_connections"` // default 1000
	IdleTimeout    time.Duration `yaml:"idle_timeout"`    // default 10s
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
	dec.KnownFields(true)
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return cfg, nil // empty file: all defaults
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Decode twice: once strictly for the values, once as nodes for line
	// numbers of list items that validation may complain about.
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	cfg.file = path
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

// validate returns every problem of the config at once.
func (c *Config) validate() error {
	var errs []error
	if len(c.Listen) == 0 {
		errs = append(errs, fmt.Errorf("%s: listen: at least one address is needed", c.where(0)))
	}
	for _, a := range c.Listen {
		if _, err := netip.ParseAddrPort(a); err != nil && !strings.HasPrefix(a, ":") {
			errs = append(errs, fmt.Errorf("%s: listen %q: want IP:port or :port", c.where(0), a))
		}
	}
	if c.ZoneDir != "" {
		if st, err := os.Stat(c.ZoneDir); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("%s: zone_dir %q: not a readable directory", c.where(0), c.ZoneDir))
		}
	}
	if _, err := c.recursionPrefixes(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", c.where(0), err))
	}
	seen := map[string]bool{}
	for _, r := range c.Forward {
		if r.Zone == "" {
			errs = append(errs, fmt.Errorf("%s: forward: rule without zone", c.where(r.line)))
		}
		if len(r.Upstreams) == 0 {
			errs = append(errs, fmt.Errorf("%s: forward %s: no upstreams", c.where(r.line), r.Zone))
		}
		switch r.Policy {
		case "", "random", "round_robin", "sequential":
		default:
			errs = append(errs, fmt.Errorf("%s: forward %s: unknown policy %q (random, round_robin, sequential)", c.where(r.line), r.Zone, r.Policy))
		}
		key := zonestore.Canonical(r.Zone)
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s: forward %s: zone given twice", c.where(r.line), r.Zone))
		}
		seen[key] = true
	}
	if c.AWS.VPCCIDR != "" {
		if _, err := netip.ParsePrefix(c.AWS.VPCCIDR); err != nil {
			errs = append(errs, fmt.Errorf("%s: aws.vpc_cidr: %w", c.where(0), err))
		}
	}
	for _, v := range c.Views {
		if v.Name == "" {
			errs = append(errs, fmt.Errorf("%s: views: a view needs a name", c.where(0)))
		}
		for _, p := range v.Clients {
			if _, err := netip.ParsePrefix(p); err != nil {
				errs = append(errs, fmt.Errorf("%s: view %s: client network %q: %w", c.where(0), v.Name, p, err))
			}
		}
	}
	for _, list := range []struct {
		key  string
		vals []string
	}{{"proxy_protocol.trusted", c.ProxyProtocol.Trusted}, {"rate_limit.exempt_clients", c.RRL.Exempt}, {"http_control_from", c.HTTPControl}} {
		for _, p := range list.vals {
			if _, err := netip.ParsePrefix(p); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %q: %w", c.where(0), list.key, p, err))
			}
		}
	}
	if c.Log.Queries < 0 || c.Log.Queries > 1 {
		errs = append(errs, fmt.Errorf("%s: log.queries %v: a fraction between 0 and 1", c.where(0), c.Log.Queries))
	}
	if c.Route53.enabled() {
		switch c.Route53.Visibility {
		case "", "public", "private":
		default:
			errs = append(errs, fmt.Errorf("%s: route53.visibility %q: want public or private", c.where(0), c.Route53.Visibility))
		}
		if c.Route53.RPS < 0 || c.Route53.RPS > 100 {
			errs = append(errs, fmt.Errorf("%s: route53.rps %v: want 0 < rps ≤ 100 (the account allows 5)", c.where(0), c.Route53.RPS))
		}
		for _, a := range c.Route53.Accounts {
			if a.RoleARN == "" || (!a.Discover && len(a.Zones) == 0) {
				errs = append(errs, fmt.Errorf("%s: route53.accounts %q: needs role_arn and zones or discover", c.where(0), a.Name))
			}
		}
		for _, l := range c.Route53.Locations {
			for _, p := range l.Clients {
				if _, err := netip.ParsePrefix(p); err != nil {
					errs = append(errs, fmt.Errorf("%s: route53.locations: %q: %w", c.where(0), p, err))
				}
			}
		}
		for _, l := range c.Route53.CIDRLocations {
			for _, p := range l.CIDRs {
				if _, err := netip.ParsePrefix(p); err != nil {
					errs = append(errs, fmt.Errorf("%s: route53.cidr_locations: %q: %w", c.where(0), p, err))
				}
			}
		}
	}
	keys, kerrs := c.tsigKeys()
	errs = append(errs, kerrs...)
	_, xerrs := c.transferRules(keys)
	errs = append(errs, xerrs...)
	_, perrs := c.updatePolicies()
	errs = append(errs, perrs...)
	if c.UpdateTimeout < 0 || c.UpdateTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("%s: update_timeout %v: want 0 (default 30s) to 10m", c.where(0), c.UpdateTimeout))
	}
	switch strings.ToLower(c.Log.Level) {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("%s: log.level %q: want debug, info, warn or error", c.where(0), c.Log.Level))
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("%s: log.format %q: want text or json", c.where(0), c.Log.Format))
	}
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
				return nil, fmt.Errorf("allow_recursion %q: %w", s, err)
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
