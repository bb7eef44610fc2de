package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"hybridns/forwarder"
)

// TestForwardToResolvConf: forward_default: [resolv.conf] forwards to the
// nameservers of the resolv.conf named by resolv_conf (relative to the
// config file), here a loopback upstream; a changed resolv.conf makes a
// reload build a new forwarder.
func TestForwardToResolvConf(t *testing.T) {
	up, n := testUpstream(t, "192.0.2.9")
	ap := netip.MustParseAddrPort(up)
	old := resolvConfPort
	resolvConfPort = ap.Port()
	t.Cleanup(func() { resolvConfPort = old })

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("# generated\nsearch corp.example\nnameserver 127.0.0.1 ; the loopback upstream\noptions edns0 trust-ad\n"), 0o644)
	path := filepath.Join(dir, "hybridns.yaml")
	os.WriteFile(path, []byte("listen: [127.0.0.1:0]\nresolv_conf: resolv.conf\nforward_default: [resolv.conf]\naws: {builtin_rules: false}\n"), 0o644)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.resolvServers, " "); got != up {
		t.Fatalf("resolv.conf servers %q, want %s", got, up)
	}
	fwd, err := buildForwarder(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	r, err := fwd.(*forwarder.Forwarder).Resolve(context.Background(), m)
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.9" || n.Load() != 1 {
		t.Fatalf("forwarded through resolv.conf: %v %v (upstream queries %d)", r, err, n.Load())
	}

	os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 127.0.0.2\n"), 0o644)
	next, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := next.validate(); err != nil {
		t.Fatal(err)
	}
	if sameForwarding(cfg, next) {
		t.Error("a changed resolv.conf judged the same forwarding: a reload would keep the old nameservers")
	}
}

func TestResolvConfErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ file, want string }{
		{"search example\n", "resolv.conf: upstream resolv.conf: the file lists no nameserver"},
		{"nameserver dns.example\n", "resolv.conf: line 1: nameserver \"dns.example\": not an IP address"},
		{"nameserver fe80::1%eth0\n", "resolv.conf: line 1: nameserver fe80::1%eth0: link-local addresses with a zone are not supported as upstreams"},
	} {
		os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(tc.file), 0o644)
		cfg, _ := parseConfig([]byte("resolv_conf: resolv.conf\nforward_default: [resolv.conf]\n"), filepath.Join(dir, "hybridns.yaml"))
		err := cfg.loadResolvConf()
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("%q: %v, want …%s", tc.file, err, tc.want)
		}
	}
	cfg, _ := parseConfig([]byte("resolv_conf: /nonexistent/resolv.conf\nforward:\n  - zone: corp.example\n    upstreams: [resolv.conf]\n"), "hybridns.yaml")
	if err := cfg.loadResolvConf(); err == nil || err.Error() != "hybridns.yaml:1: upstream resolv.conf: open /nonexistent/resolv.conf: no such file or directory" {
		t.Errorf("missing file: %v", err)
	}
}
