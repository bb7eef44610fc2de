package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, yaml string
		wantErr    []string // substrings; none: must be valid
		check      func(t *testing.T, c *Config)
	}{
		{name: "empty file is defaults", yaml: "", check: func(t *testing.T, c *Config) {
			if len(c.Listen) != 0 || c.ZoneDir != "" {
				t.Errorf("%+v", c)
			}
		}},
		{name: "full", yaml: `
listen: ["127.0.0.1:5300", "[::1]:5300"]
zone_dir: ` + dir + `
allow_recursion: [10.0.0.0/8, 192.0.2.7]
forward:
  - zone: corp.example
    upstreams: [10.1.0.2, "10.1.0.3:5353"]
    policy: sequential
forward_default: [vpc]
aws: {vpc_cidr: 10.0.0.0/16, builtin_rules: false}
cache: {entries: 5000, max_ttl: 1h, negative_max_ttl: 5m}
upstream: {timeout: 1500ms}
views: [{name: prod, clients: [10.1.0.0/16]}]
log: {level: debug, format: json}
`, check: func(t *testing.T, c *Config) {
			if c.Cache.MaxTTL != time.Hour || c.Upstream.Timeout != 1500*time.Millisecond || *c.AWS.BuiltinRules {
				t.Errorf("%+v", c)
			}
			if c.Forward[0].line != 6 {
				t.Errorf("rule line = %d, want 6", c.Forward[0].line)
			}
			p, err := c.recursionPrefixes()
			if err != nil || len(p) != 2 || p[1].Bits() != 32 {
				t.Errorf("prefixes %v %v", p, err)
			}
		}},
		{name: "unknown key names key and line", yaml: "listen: [\":53\"]\ncache:\n  entires: 5\n", wantErr: []string{"cfg.yaml:3:3: unknown key \"entires\" in cache (did you mean entries?)"}},
		{name: "all problems at once", yaml: `
listen: ["nonsense"]
zone_dir: /nonexistent/dir
forward:
  - zone: a.example
  - zone: a.example
    upstreams: [10.0.0.1]
    policy: fastest
views: [{clients: [not-a-cidr]}]
log: {level: chatty}
`, wantErr: []string{"nonsense", "/nonexistent/dir", "cfg.yaml:5:5: forward a.example: no upstreams", "cfg.yaml:6:11: forward a.example: zone given twice", "fastest", "a view needs a name", "not-a-cidr", "chatty"}},
		{name: "bad type", yaml: "listen: 53\n", wantErr: []string{"cfg.yaml:1:9: listen: want a list, like [\"53\"], not \"53\""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "cfg.yaml")
			os.WriteFile(path, []byte(tc.yaml), 0o644)
			c, err := loadConfig(path)
			if err == nil {
				err = c.validate()
				if len(c.Listen) == 0 && err != nil && len(tc.wantErr) == 0 {
					err = nil // an empty listen list is filled by the flag defaults
				}
			}
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestRuleConflict(t *testing.T) {
	c := &Config{file: "x.yaml", Forward: []ForwardRule{{Zone: "Corp.Example", Upstreams: []string{"10.0.0.1"}, line: 3}}}
	if err := ruleConflict(c, "corp.example."); err == nil || !strings.Contains(err.Error(), "x.yaml:3") {
		t.Fatalf("conflict not reported: %v", err)
	}
	if err := ruleConflict(c, "a.corp.example."); err != nil {
		t.Fatalf("nested zone is no conflict: %v", err)
	}
}

// TestNumericRanges: every numeric setting is range-checked, and the
// message names the key and the line that set it.
func TestNumericRanges(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		yaml string // the setting under test, on line 2
		key  string // "": valid
	}{
		{"tcp: {idle_timeout: -1s}", "tcp.idle_timeout"},
		{"tcp: {idle_timeout: 2h}", "tcp.idle_timeout"},
		{"tcp: {idle_timeout: 30s}", ""},
		{"tcp: {max_connections: -5}", "tcp.max_connections"},
		{"tcp: {max_connections_per_client: -1}", "tcp.max_connections_per_client"},
		{"tcp: {max_connections_per_client: 16}", ""},
		{"rate_limit: {slip: -3}", "rate_limit.slip"},
		{"rate_limit: {slip: 11}", "rate_limit.slip"},
		{"rate_limit: {slip: 0}", ""},
		{"rate_limit: {ipv4_prefix_length: 99}", "rate_limit.ipv4_prefix_length"},
		{"rate_limit: {ipv4_prefix_length: -1}", "rate_limit.ipv4_prefix_length"},
		{"rate_limit: {ipv6_prefix_length: 129}", "rate_limit.ipv6_prefix_length"},
		{"rate_limit: {ipv6_prefix_length: 64}", ""},
		{"rate_limit: {responses_per_second: -1}", "rate_limit.responses_per_second"},
		{"rate_limit: {nxdomains_per_second: -2}", "rate_limit.nxdomains_per_second"},
		{"rate_limit: {nxdomains_per_second: -1}", ""},
		{"rate_limit: {errors_per_second: -7}", "rate_limit.errors_per_second"},
		{"cache: {entries: -2}", "cache.entries"},
		{"cache: {entries: -1}", ""},
		{"cache: {min_ttl: -1s}", "cache.min_ttl"},
		{"cache: {min_ttl: 2h, max_ttl: 1h}", "cache.min_ttl"},
		{"cache: {max_ttl: -1m}", "cache.max_ttl"},
		{"cache: {negative_max_ttl: -1s}", "cache.negative_max_ttl"},
		{"cache: {servfail_ttl: -5s}", "cache.servfail_ttl"},
		{"cache: {servfail_ttl: 31s}", "cache.servfail_ttl"},
		{"cache: {servfail_ttl: -1s}", ""},
		{"cache: {stale_ttl: -2s}", "cache.stale_ttl"},
		{"cache: {prefetch: -4}", "cache.prefetch"},
		{"cache: {negative_share: 91}", "cache.negative_share"},
		{"cache: {negative_share: -1}", "cache.negative_share"},
		{"cache: {negative_share: 50}", ""},
		{"upstream: {timeout: -1s}", "upstream.timeout"},
		{"upstream: {deadline: -1s}", "upstream.deadline"},
		{"upstream: {timeout: 10s, deadline: 3s}", "upstream.timeout"},
		{"upstream: {timeout: 10s}", "upstream.timeout"}, // over the 5s default deadline
		{"upstream: {max_in_flight: -1}", "upstream.max_in_flight"},
		{"lame_duck: -1s", "lame_duck"},
		{"lame_duck: 0s", ""},
		{"log: {queries: 1.5}", "log.queries"},
		{"log: {errors_per_second: -1}", "log.errors_per_second"},
		{"route53: {interval: 500ms}", "route53.interval"},
		{"route53: {interval: -5m}", "route53.interval"},
		{"route53: {health_interval: -1s}", "route53.health_interval"},
		{"route53: {rps: -1}", "route53.rps"},
		{"route53: {rps: 500}", "route53.rps"},
		{"route53: {burst: -1}", "route53.burst"},
	}
	for _, tc := range tests {
		t.Run(tc.yaml, func(t *testing.T) {
			path := filepath.Join(dir, "cfg.yaml")
			os.WriteFile(path, []byte("listen: [\"127.0.0.1:53\"]\n"+tc.yaml+"\n"), 0o644)
			c, err := loadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			err = c.validate()
			if tc.key == "" {
				if err != nil {
					t.Fatalf("valid setting rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s accepted", tc.yaml)
			}
			if want := regexp.MustCompile(`cfg\.yaml:2:\d+: ` + regexp.QuoteMeta(tc.key) + " "); !want.MatchString(err.Error()) {
				t.Fatalf("error lacks %q:\n%v", want, err)
			}
		})
	}
}

// TestProxyProtocolNeedsTrusted: enabling PROXY protocol without trusted
// networks is an error naming the key; with them it is valid.
func TestProxyProtocolNeedsTrusted(t *testing.T) {
	c, err := parseConfig([]byte("listen: [\":53\"]\nproxy_protocol: {enabled: true}\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "p.yaml:2:27: proxy_protocol.trusted") {
		t.Fatalf("PROXY protocol without trusted networks: %v", err)
	}
	c, _ = parseConfig([]byte("listen: [\":53\"]\nproxy_protocol: {enabled: true, trusted: [10.0.250.0/24]}\n"), "p.yaml")
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
}

// TestExamplesAreSafe: the bundled configs parse, validate (zone_dir
// aside, which names a path of the target machine) and never trust PROXY
// headers from anyone.
func TestExamplesAreSafe(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example configs found")
	}
	for _, f := range files {
		c, err := loadConfig(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c.ZoneDir = ""
		c.SnapshotDir = ""
		if err := c.validate(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if c.ProxyProtocol.Enabled && len(c.ProxyProtocol.Trusted) == 0 {
			t.Errorf("%s: PROXY protocol trusts everyone", f)
		}
	}
}

// TestTransferConfigAsInTheIssue parses the config shape issue 10 fixes.
func TestTransferConfigAsInTheIssue(t *testing.T) {
	const text = `
tsig_keys:
  - {name: xfr-key, algorithm: hmac-sha256, secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAxMjM="}
  - {name: vpc-a-key, algorithm: hmac-sha256, secret: "dnBjLWEtc2VjcmV0LXZwYy1hLXNlY3JldC0wMTIzNDU="}
transfer:
  - {keys: [xfr-key], networks: [10.0.0.0/8], notify: ["10.1.0.53:53"]}   # default view
  - {keys: [vpc-a-key], networks: [10.0.0.0/8], view: vpc-a}             # that view's zones
catalog:
  zone: catalog.hybridns.      # one catalog per view, served to that view's transfer keys
journal: {versions: 50, max_bytes: 64MiB}
`
	c, err := parseConfig([]byte(text), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.Listen = []string{"127.0.0.1:53"}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	keys, _ := c.tsigKeys()
	rules, errs := c.transferRules(keys)
	if len(errs) > 0 || len(rules) != 2 {
		t.Fatal(rules, errs)
	}
	if rules[0].Keys[0] != "xfr-key." || rules[0].Notify[0] != "10.1.0.53:53" || rules[0].Networks[0].String() != "10.0.0.0/8" || rules[0].View != "" {
		t.Errorf("rule 0: %+v", rules[0])
	}
	if rules[1].View != "vpc-a" || rules[1].Keys[0] != "vpc-a-key." {
		t.Errorf("rule 1: %+v", rules[1])
	}
	if c.Catalog.Zone != "catalog.hybridns." || c.journalConfig().MaxBytes != 64<<20 || c.journalConfig().Versions != 50 {
		t.Errorf("catalog %+v journal %+v", c.Catalog, c.journalConfig())
	}
	for _, bad := range []struct{ yaml, want string }{
		{"transfer: [{view: vpc-a, networks: [10.0.0.0/8]}]", "needs keys"},
		{"transfer: [{notify: [1.2.3.4]}]", "needs keys or networks"},
		{"transfer: [{keys: [nope]}]", "not defined"},
		{"transfer: [{networks: [10.0.0.0/33]}]", "network"},
		{"transfer: [{networks: [10.0.0.0/8], notify: [host.example]}]", "want IP or IP:port"},
		{"journal: {max_bytes: lots}", "journal.max_bytes"},
	} {
		c, err := parseConfig([]byte(bad.yaml), "x.yaml")
		if err == nil {
			c.Listen = []string{"127.0.0.1:53"}
			err = c.validate()
		}
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want an error with %q", bad.yaml, err, bad.want)
		}
	}
}
