package main

import (
	"os"
	"path/filepath"
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
		{name: "unknown key names key and line", yaml: "listen: [\":53\"]\ncache:\n  entires: 5\n", wantErr: []string{"line 3", "entires"}},
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
`, wantErr: []string{"nonsense", "/nonexistent/dir", "cfg.yaml:5: forward a.example: no upstreams", "cfg.yaml:6: forward a.example: zone given twice", "fastest", "a view needs a name", "not-a-cidr", "chatty"}},
		{name: "bad type", yaml: "listen: 53\n", wantErr: []string{"cfg.yaml", "line 1"}},
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
