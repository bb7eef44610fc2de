package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestConfigErrorMessages: every problem of a file in one run, each at
// FILE:LINE:COLUMN, in words (no Go type or function names), with "did you
// mean" for unknown keys and a hint for values written as in named.conf.
func TestConfigErrorMessages(t *testing.T) {
	yaml := `listen: ["127.0.0.1 port 5301"]
zone-dir: /srv/zones
vpc_cidr: 10.0.0.0/16
allow_recursion: [10.0.0.0/33, 192.0.2.1, corp]
forward:
  - zone: corp.example
    upstreams: [10.1.0.2, "127.0.0.1 port 5301", dns.google]
    policy: fastest
forward_default: [1.1.1.1, "10.0.0.1:99999"]
aws: {vpc_cidr: 10.0.0.0}
cache:
  max_ttl: 5
  min_ttl: soon
  entries: many
views:
  - name: inside
    clients: [10.0.0.0/8, "192.168.1.0/24;"]
  - clients: [fd00::/129]
http_control_from: [127.0.0.1]
log: {level: chatty, queries: all}
`
	c, err := parseConfig([]byte(yaml), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := c.validate()
	want := `c.yaml:1:10: listen "127.0.0.1 port 5301": BIND's "127.0.0.1 port 5301" is written 127.0.0.1:5301 here
c.yaml:2:1: unknown key "zone-dir" (did you mean zone_dir?)
c.yaml:3:1: unknown key "vpc_cidr" (did you mean aws.vpc_cidr?)
c.yaml:4:19: allow_recursion "10.0.0.0/33": prefix length "33": want 0 to 32
c.yaml:4:43: allow_recursion "corp": want a network like 10.0.0.0/8 or fd00::/8
c.yaml:7:27: forward corp.example upstream "127.0.0.1 port 5301": BIND's "127.0.0.1 port 5301" is written 127.0.0.1:5301 here
c.yaml:7:50: forward corp.example upstream "dns.google": an upstream is an IP address, not a host name (resolving it would depend on ourselves); want IP, IP:port, [IPv6]:port, vpc or resolv.conf
c.yaml:8:13: forward corp.example: unknown policy "fastest" (random, round_robin, sequential)
c.yaml:9:28: forward_default upstream "10.0.0.1:99999": want IP, IP:port, [IPv6]:port, vpc or resolv.conf
c.yaml:10:17: aws.vpc_cidr "10.0.0.0": a network needs a prefix length: 10.0.0.0/32 for this one address
c.yaml:12:12: cache.max_ttl: 5: a duration needs a unit: 5s, 5ms, 5m …
c.yaml:13:12: cache.min_ttl: "soon" is not a duration: write it like 30s, 5m or 24h
c.yaml:14:12: cache.entries: "many": want a whole number
c.yaml:17:27: view inside: client network "192.168.1.0/24;": looks like named.conf syntax; write one value per list item, like [10.0.0.0/8, 192.0.2.1]
c.yaml:18:5: views: a view needs a name
c.yaml:18:15: view #2: client network "fd00::/129": prefix length "129": want 0 to 128
c.yaml:19:21: http_control_from "127.0.0.1": a network needs a prefix length: 127.0.0.1/32 for this one address
c.yaml:20:14: log.level "chatty": want debug, info, warn or error
c.yaml:20:31: log.queries: "all": want a number`
	if got == nil || got.Error() != want {
		t.Errorf("got:\n%v\n\nwant:\n%s", got, want)
	}
	for _, goName := range []string{"main.", "netip.", "time.Duration", "ParsePrefix", "unmarshal", "!!"} {
		if got != nil && strings.Contains(got.Error(), goName) {
			t.Errorf("message names Go internals (%q)", goName)
		}
	}
}

// TestConfigErrorBlamesFlag: a bad value given by flag or environment is
// reported against the flag or variable, not the file's line.
func TestConfigErrorBlamesFlag(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte("listen: [\"127.0.0.1:5300\"]\nforward_default: [10.0.0.1]\naws: {builtin_rules: false}\n"), 0o644)
	run := func(args ...string) error {
		var got error
		app := &cli.App{Commands: []*cli.Command{{Name: "check", Flags: configFlags(), Action: func(c *cli.Context) error {
			_, got = configFromCLI(c)
			return nil
		}}}}
		if err := app.Run(append([]string{"hybridns", "check", "--config", path}, args...)); err != nil {
			t.Fatal(err)
		}
		return got
	}
	err := run("--forward-default", "10.0.0.1 port 5301")
	if err == nil || err.Error() != `--forward-default: forward_default upstream "10.0.0.1 port 5301": BIND's "10.0.0.1 port 5301" is written 10.0.0.1:5301 here` {
		t.Errorf("flag: %v", err)
	}
	t.Setenv("HYBRIDNS_VPC_CIDR", "10.0.0.0/40")
	err = run()
	if err == nil || err.Error() != `HYBRIDNS_VPC_CIDR: aws.vpc_cidr "10.0.0.0/40": prefix length "40": want 0 to 32` {
		t.Errorf("environment: %v", err)
	}
}

// TestConfigPathsRelativeToFile: zone_dir, snapshot_dir, tsig_key_files
// and resolv_conf in a file are relative to the file; a flag's path is
// relative to the working directory.
func TestConfigPathsRelativeToFile(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc", "zones"), 0o755)
	path := filepath.Join(dir, "etc", "c.yaml")
	os.WriteFile(path, []byte("listen: [\"127.0.0.1:5300\"]\nzone_dir: zones\nsnapshot_dir: ../var\nresolv_conf: resolv.conf\ntsig_key_files: [keys/a.key]\n"), 0o644)
	c, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.ZoneDir != filepath.Join(dir, "etc", "zones") || c.SnapshotDir != filepath.Join(dir, "var") ||
		c.resolvConfPath() != filepath.Join(dir, "etc", "resolv.conf") || c.TSIGKeyFiles[0] != filepath.Join(dir, "etc", "keys", "a.key") {
		t.Errorf("paths: %q %q %q %q", c.ZoneDir, c.SnapshotDir, c.resolvConfPath(), c.TSIGKeyFiles)
	}
	c, _ = loadConfig(path)
	c.ZoneDir = "rel" // as --zone-dir sets it after the file
	if c.ZoneDir != "rel" {
		t.Error("flag path changed")
	}
}

// TestConfigSyntaxError: broken YAML names the file and line, without the
// library's prefix.
func TestConfigSyntaxError(t *testing.T) {
	_, err := parseConfig([]byte("listen: [\":53\"]\nforward:\n  - zone: a\n   upstreams: [1.1.1.1]\n"), "c.yaml")
	if err == nil || err.Error() != "c.yaml:2: not valid YAML: did not find expected '-' indicator" {
		t.Errorf("%v", err)
	}
}

func TestZoneListErrors(t *testing.T) {
	c, err := parseConfig([]byte("listen: [\":53\"]\nzones:\n  - {name: corp.example, file: db.corp}\n  - {name: corp.example., file: db.corp2}\n  - {name: \"bad..name\", file: x}\n  - {name: other.example}\nviews:\n  - name: in\n    clients: [10.0.0.0/8]\n    zones: [{name: corp.example, file: db.in}]\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := `c.yaml:3:3: zones: needs a zone_dir beside it, the directory the files are in
c.yaml:4:12: zones: zone corp.example. listed twice
c.yaml:5:12: zones: name "bad..name": want a zone name, like corp.example
c.yaml:6:5: zones: zone other.example: file is required
c.yaml:10:12: views[0].zones: needs a zone_dir beside it, the directory the files are in`
	if err := c.validate(); err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

// TestForwarderErrorsInOneRun: what only the forwarder judges (a loop to
// our own listen address, an upstream twice) comes with every other
// problem, at the rule's line, never as "rule 0".
func TestForwarderErrorsInOneRun(t *testing.T) {
	c, err := parseConfig([]byte("listen: [\"127.0.0.1:5300\"]\nforward:\n  - zone: corp.example\n    upstreams: [10.0.0.1, 10.0.0.1:53]\nforward_default: [127.0.0.1:5300]\nlog: {level: chatty}\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := `c.yaml:3:5: forward corp.example: upstream 10.0.0.1:53 listed twice
c.yaml:5:18: forward_default: upstream 127.0.0.1:5300 is our own listen address 127.0.0.1:5300 (forwarding loop)
c.yaml:6:14: log.level "chatty": want debug, info, warn or error`
	if err := c.validate(); err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}
