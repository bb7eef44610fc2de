package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/urfave/cli/v2"

	"hybridns/zonestore/zonedir"
)

const statusZone = `$ORIGIN corp.example.
$TTL 300
@ IN SOA ns1 hostmaster 2024010101 3600 600 86400 300
@ IN NS ns1
ns1 IN A 192.0.2.53
www IN A 192.0.2.80
`

// statusDaemon: a zone directory with one good and one broken file, a
// forwarder with a default rule to a loopback upstream and the built-in
// AWS rules, served over HTTP on 127.0.0.1:0.
func statusDaemon(t *testing.T) (d *daemon, base string, upstreamQueries func() int64) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "corp.example.zone"), []byte(statusZone), 0o644)
	os.WriteFile(filepath.Join(dir, "broken.example.zone"), []byte("this is not a zone\n"), 0o644)
	old := time.Now().Add(-time.Hour) // quiet: read at the first scan
	for _, f := range []string{"corp.example.zone", "broken.example.zone"} {
		os.Chtimes(filepath.Join(dir, f), old, old)
	}
	up, n := testUpstream(t, "192.0.2.7")
	d = testDaemon(t)
	d.cfg = &Config{ForwardDefault: []string{up}, AWS: AWSConfig{VPCCIDR: "10.1.0.0/16"}, ZoneDir: dir}
	d.cur.Store(d.cfg)
	d.loaded.Store(true)
	d.loader = zonedir.New(dir, d.store, "", nil)
	_ = d.loader.Scan()
	fwd, err := buildForwarder(d.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fwd.Close() })
	d.fwd = fwd
	d.setForwarder(fwd)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := serveHTTP(ln, d.mux(), slog.New(slog.DiscardHandler))
	t.Cleanup(func() { hs.Close() })
	return d, ln.Addr().String(), n.Load
}

func TestStatusEndpoint(t *testing.T) {
	d, addr, _ := statusDaemon(t)
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep statusReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.Version == "" || rep.StartedAt.IsZero() || rep.UptimeSeconds < 0 {
		t.Errorf("version/uptime missing: %+v", rep)
	}
	if rep.Ready {
		t.Errorf("ready with a zone file that never loaded")
	}
	if len(rep.Zones) != 2 {
		t.Fatalf("zones %+v, want 2", rep.Zones)
	}
	broken, corp := rep.Zones[0], rep.Zones[1]
	if corp.Zone != "corp.example." || corp.View != "default" || corp.Source != filepath.Join(d.cfg.ZoneDir, "corp.example.zone") ||
		corp.Serial != 2024010101 || corp.Records != 4 || !corp.Serving || corp.LoadedAt == nil || corp.LastError != "" {
		t.Errorf("corp.example: %+v", corp)
	}
	if broken.Zone != "broken.example." || broken.Serving || broken.LoadedAt != nil || broken.LastError == "" {
		t.Errorf("broken.example: %+v", broken)
	}
	if len(rep.Forwarding) == 0 || rep.Forwarding[len(rep.Forwarding)-1].Suffix != "." {
		t.Errorf("forwarding rules %+v", rep.Forwarding)
	}
	want := []string{"amazonaws.com.", "compute.internal.", "ec2.internal.", "1.10.in-addr.arpa."}
	var got []string
	for _, r := range rep.BuiltinRules {
		got = append(got, r.Zone)
		if r.Upstream != "10.1.0.2:53" {
			t.Errorf("built-in rule %s to %s, want 10.1.0.2:53", r.Zone, r.Upstream)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("built-in rules %v, want %v", got, want)
	}

	// hybridns status prints the same as tables.
	var out bytes.Buffer
	app := &cli.App{Writer: &out, Commands: []*cli.Command{{Name: "status", Flags: []cli.Flag{&cli.StringFlag{Name: "http"}, &cli.BoolFlag{Name: "json"}}, Action: statusCmd}}}
	if err := app.Run([]string{"hybridns", "status", "--http", addr}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ZONES (2)", "corp.example.", "default", "2024010101", " ago)", "broken.example.", "SERVFAIL",
		"FORWARDING", "up", "BUILT-IN AWS RULES (to 10.1.0.2:53)", "1.10.in-addr.arpa."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCacheFlushEndpoint(t *testing.T) {
	d, addr, queries := statusDaemon(t)
	ask := func(name string) {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		if _, err := d.fwdNow.Load().Resolve(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"www.example.org.", "a.example.net.", "b.a.example.net."} {
		ask(n)
	}
	if queries() != 3 {
		t.Fatalf("upstream queries %d, want 3", queries())
	}
	post := func(path string, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+addr+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The checks of /reload: a form post or another origin is refused and
	// flushes nothing.
	if code, _ := post("/cache/flush", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); code != http.StatusForbidden {
		t.Errorf("form post: %d, want 403", code)
	}
	if code, _ := post("/cache/flush", map[string]string{"Origin": "https://evil.example"}); code != http.StatusForbidden {
		t.Errorf("cross-origin: %d, want 403", code)
	}
	if code, _ := post("/cache/flush?name=bad..name", nil); code != http.StatusBadRequest {
		t.Errorf("bad name: %d, want 400", code)
	}
	if st := d.fwdNow.Load().Stats(); st.CacheSize != 3 {
		t.Fatalf("refused requests flushed the cache: %d entries", st.CacheSize)
	}
	code, body := post("/cache/flush?name=example.net", nil)
	if code != 200 || body != "flushed 2 entries at and below example.net.\n" {
		t.Errorf("flush name: %d %q", code, body)
	}
	for _, n := range []string{"www.example.org.", "a.example.net.", "b.a.example.net."} {
		ask(n)
	}
	if queries() != 5 {
		t.Errorf("upstream queries %d after flushing example.net, want 5", queries())
	}
	code, body = post("/cache/flush", nil)
	if code != 200 || body != "flushed 3 entries\n" {
		t.Errorf("flush all: %d %q", code, body)
	}
}

// TestBuiltinRulesLogged: the built-in rules are logged when they turn on,
// and not when they are off or nothing is forwarded.
func TestBuiltinRulesLogged(t *testing.T) {
	off := false
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{ForwardDefault: []string{"192.0.2.1"}}, `msg="built-in AWS forwarding rules on (aws.builtin_rules: false turns them off)" upstream=169.254.169.253:53 zones="amazonaws.com. compute.internal. ec2.internal."` + "\n"},
		{Config{ForwardDefault: []string{"192.0.2.1"}, AWS: AWSConfig{BuiltinRules: &off}}, ""},
		{Config{}, ""},
	} {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
				return slog.Attr{}
			}
			return a
		}}))
		logBuiltinRules(&tc.cfg, log)
		if buf.String() != tc.want {
			t.Errorf("logged %q, want %q", buf.String(), tc.want)
		}
	}
}
