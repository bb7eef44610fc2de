package forwarder

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseUpstream(t *testing.T) {
	tests := []struct {
		in, cidr, want string
		wantErr        bool
	}{
		{in: "10.1.2.3", want: "10.1.2.3:53"},
		{in: " 10.1.2.3:5353 ", want: "10.1.2.3:5353"},
		{in: "::1", want: "[::1]:53"},
		{in: "[2001:db8::1]:5300", want: "[2001:db8::1]:5300"},
		{in: "[::ffff:10.0.0.1]:53", want: "10.0.0.1:53"},
		{in: "vpc", cidr: "10.20.0.0/16", want: "10.20.0.2:53"},
		{in: "VPC", cidr: "", want: "169.254.169.253:53"},
		{in: "vpc", cidr: "fd00::/64", wantErr: true},
		{in: "vpc", cidr: "nonsense", wantErr: true},
		{in: "", wantErr: true},
		{in: "dns.google", wantErr: true},
		{in: "dns.google:53", wantErr: true},
		{in: "10.1.2.3:0", wantErr: true},
		{in: "10.1.2.3:99999", wantErr: true},
		{in: "0.0.0.0", wantErr: true},
		{in: "[::]:53", wantErr: true},
		{in: "224.0.0.251", wantErr: true},
		{in: "2001:db8::1:53", want: "[2001:db8::1:53]:53"}, // bare IPv6: the last group is not a port
	}
	for _, tc := range tests {
		got, err := ParseUpstream(tc.in, tc.cidr)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseUpstream(%q, %q) = %q, %v; want %q, err=%v", tc.in, tc.cidr, got, err, tc.want, tc.wantErr)
		}
	}
}

func FuzzParseUpstream(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "10.0.0.1:53", "[::1]:53", "vpc", "::ffff:1.2.3.4", "[fe80::1%eth0]:53", ":53", "1.2.3.4:"} {
		f.Add(s, "10.0.0.0/16")
	}
	f.Fuzz(func(t *testing.T, s, cidr string) {
		got, err := ParseUpstream(s, cidr)
		if err != nil {
			return
		}
		ap, err := netip.ParseAddrPort(got)
		if err != nil || ap.Port() == 0 || ap.Addr().IsUnspecified() {
			t.Fatalf("ParseUpstream(%q) = %q: not a usable host:port (%v)", s, got, err)
		}
		// The canonical form is a fixed point.
		again, err := ParseUpstream(got, cidr)
		if err != nil || again != got {
			t.Fatalf("ParseUpstream(%q) = %q, re-parse = %q, %v", s, got, again, err)
		}
	})
}

func TestVPCResolver(t *testing.T) {
	tests := []struct {
		cidr, want string
		wantErr    bool
	}{
		{"", "169.254.169.253", false},
		{"10.0.0.0/16", "10.0.0.2", false},
		{"10.0.5.7/16", "10.0.0.2", false}, // host bits ignored
		{"172.31.0.0/20", "172.31.0.2", false},
		{"192.168.10.16/28", "192.168.10.18", false},
		{"10.0.0.0/31", "", true},
		{"2001:db8::/56", "", true},
		{"10.0.0.0", "", true},
	}
	for _, tc := range tests {
		got, err := VPCResolver(tc.cidr)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("VPCResolver(%q) = %q, %v; want %q, err=%v", tc.cidr, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestAWSRules(t *testing.T) {
	base := []string{"amazonaws.com.", "compute.internal.", "ec2.internal."}
	var twenty []string
	for i := 16; i < 32; i++ {
		twenty = append(twenty, strconv.Itoa(i)+".0.10.in-addr.arpa.")
	}
	tests := []struct {
		cidr string
		want []string
	}{
		{"", base},
		{"garbage", base},
		{"10.0.0.0/16", append(slices.Clone(base), "0.10.in-addr.arpa.")},
		{"10.0.16.0/20", append(slices.Clone(base), twenty...)},
		{"10.0.0.0/8", append(slices.Clone(base), "10.in-addr.arpa.")},
		{"192.168.10.16/28", append(slices.Clone(base), "10.168.192.in-addr.arpa.")},
		{"10.0.0.0/24", append(slices.Clone(base), "0.0.10.in-addr.arpa.")},
		{"10.4.0.0/15", append(slices.Clone(base), "4.10.in-addr.arpa.", "5.10.in-addr.arpa.")},
	}
	for _, tc := range tests {
		rules := AWSRules(tc.cidr)
		var got []string
		for _, r := range rules {
			got = append(got, r.Suffix)
			if len(r.Upstreams) != 1 || r.Upstreams[0] != VPCKeyword {
				t.Errorf("AWSRules(%q) rule %s: upstreams %v, want [vpc]", tc.cidr, r.Suffix, r.Upstreams)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("AWSRules(%q) suffixes:\n got %v\nwant %v", tc.cidr, got, tc.want)
		}
	}
	// The rules are valid input for New, which resolves "vpc" with VPCCIDR.
	f, _ := newTest(t, Config{Rules: AWSRules("10.0.16.0/20"), VPCCIDR: "10.0.16.0/20"})
	if s, ok := f.Match("ip-10-0-17-5.ec2.internal."); !ok || s != "ec2.internal." {
		t.Errorf("Match ec2.internal name = %q, %v", s, ok)
	}
	if s, ok := f.Match("5.17.0.10.in-addr.arpa."); !ok || s != "17.0.10.in-addr.arpa." {
		t.Errorf("Match reverse = %q, %v", s, ok)
	}
	if got := f.Stats().Upstreams; len(got) != 1 || got[0].Addr != "10.0.16.2:53" {
		t.Errorf("upstreams = %+v, want only 10.0.16.2:53", got)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings; empty: must succeed
	}{
		{"ok", Config{Rules: []Rule{{Suffix: ".", Upstreams: []string{"10.0.0.1"}}, {Suffix: "Corp.Example", Upstreams: []string{"10.0.0.2:5353", "10.0.0.1"}, Policy: PolicyRoundRobin}}}, nil},
		{"no rules", Config{}, nil},
		{"duplicate suffix after canonicalization", Config{Rules: []Rule{{Suffix: "corp.example.", Upstreams: []string{"10.0.0.1"}}, {Suffix: "CORP.example", Upstreams: []string{"10.0.0.2"}}}}, []string{`rule 1 ("CORP.example")`, "duplicate suffix corp.example."}},
		{"duplicate default", Config{Rules: []Rule{{Suffix: ".", Upstreams: []string{"10.0.0.1"}}, {Suffix: ".", Upstreams: []string{"10.0.0.2"}}}}, []string{"rule 1", "duplicate"}},
		{"bad policy", Config{Rules: []Rule{{Suffix: "a.", Upstreams: []string{"10.0.0.1"}, Policy: "fastest"}}}, []string{`rule 0 ("a.")`, "unknown policy"}},
		{"no upstreams", Config{Rules: []Rule{{Suffix: "a.", Upstreams: nil}}}, []string{`rule 0 ("a.")`, "no upstreams"}},
		{"bad upstream", Config{Rules: []Rule{{Suffix: "a.", Upstreams: []string{"ns1.example"}}}}, []string{`rule 0 ("a.")`, "ns1.example"}},
		{"empty suffix", Config{Rules: []Rule{{Suffix: "", Upstreams: []string{"10.0.0.1"}}}}, []string{"empty suffix"}},
		{"same upstream twice", Config{Rules: []Rule{{Suffix: "a.", Upstreams: []string{"10.0.0.1", "10.0.0.1:53"}}}}, []string{"listed twice"}},
		{"all problems at once", Config{Rules: []Rule{{Suffix: "a.", Upstreams: nil}, {Suffix: "b.", Upstreams: []string{"x"}}}}, []string{`rule 0 ("a.")`, `rule 1 ("b.")`}},
		{"shards", Config{CacheShards: 3}, []string{"power of two"}},
		{"min above max", Config{MinTTL: 2e9, MaxTTL: 1e9}, []string{"min ttl"}},
		{"negative timeout", Config{Timeout: -1}, []string{"timeout"}},
		// Forwarding loops: an upstream that is our own listener.
		{"loop exact", Config{LocalAddrs: []string{"127.0.0.1:5353"}, Rules: defaultRule("127.0.0.1:5353")}, []string{"forwarding loop", "127.0.0.1:5353"}},
		{"loop bare ip local addr", Config{LocalAddrs: []string{"10.9.9.9"}, Rules: defaultRule("10.9.9.9")}, []string{"forwarding loop"}},
		{"loop unspecified v4", Config{LocalAddrs: []string{"0.0.0.0:53"}, Rules: defaultRule("127.0.0.1")}, []string{"forwarding loop"}},
		{"loop unspecified v6", Config{LocalAddrs: []string{"[::]:53"}, Rules: defaultRule("127.0.0.53:53")}, []string{"forwarding loop"}},
		{"loop empty host", Config{LocalAddrs: []string{":53"}, Rules: defaultRule("[::1]:53")}, []string{"forwarding loop"}},
		{"no loop other port", Config{LocalAddrs: []string{"0.0.0.0:53"}, Rules: defaultRule("127.0.0.1:5300")}, nil},
		{"no loop other ip", Config{LocalAddrs: []string{"127.0.0.1:53"}, Rules: defaultRule("127.0.0.2:53")}, nil},
		{"no loop remote", Config{LocalAddrs: []string{"0.0.0.0:53"}, Rules: defaultRule("192.0.2.1")}, nil},
		{"bad local addr", Config{LocalAddrs: []string{"localhost:53"}}, []string{"local address"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := New(tc.cfg)
			if f != nil {
				defer f.Close()
			}
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("New succeeded, want error")
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestMatch(t *testing.T) {
	rules := []Rule{
		{Suffix: ".", Upstreams: []string{"10.0.0.1"}},
		{Suffix: "example.com.", Upstreams: []string{"10.0.0.2"}},
		{Suffix: "a.example.com.", Upstreams: []string{"10.0.0.3"}},
		{Suffix: "corp.", Upstreams: []string{"10.0.0.4"}},
	}
	f, _ := newTest(t, Config{Rules: rules})
	noDefault, _ := newTest(t, Config{Rules: rules[1:]})
	tests := []struct {
		qname     string
		want      string
		wantNoDef string // "" means no match
	}{
		{"x.a.example.com.", "a.example.com.", "a.example.com."},
		{"a.example.com.", "a.example.com.", "a.example.com."},
		{"b.example.com.", "example.com.", "example.com."},
		{"example.com.", "example.com.", "example.com."},
		{"xa.example.com.", "example.com.", "example.com."},
		{"xexample.com.", ".", ""}, // label boundary, not string suffix
		{"com.", ".", ""},
		{".", ".", ""},
		{"deep.er.corp.", "corp.", "corp."},
		{`a\.example.com.`, ".", ""}, // escaped dot is not a boundary: labels are "a\.example" and "com"
		{`x.a\.example.com.`, ".", ""},
	}
	for _, tc := range tests {
		if got, ok := f.Match(tc.qname); !ok || got != tc.want {
			t.Errorf("Match(%q) = %q, %v; want %q", tc.qname, got, ok, tc.want)
		}
		got, ok := noDefault.Match(tc.qname)
		if ok != (tc.wantNoDef != "") || got != tc.wantNoDef {
			t.Errorf("no default: Match(%q) = %q, %v; want %q", tc.qname, got, ok, tc.wantNoDef)
		}
	}
	if allocs := testing.AllocsPerRun(1000, func() { f.Match("www.x.a.example.com.") }); allocs != 0 {
		t.Errorf("Match allocates %v per run, want 0", allocs)
	}
}

func BenchmarkMatch(b *testing.B) {
	rules := []Rule{{Suffix: ".", Upstreams: []string{"10.0.0.1"}}}
	for _, s := range []string{"example.com.", "a.example.com.", "corp.", "amazonaws.com.", "ec2.internal.", "0.10.in-addr.arpa."} {
		rules = append(rules, Rule{Suffix: s, Upstreams: []string{"10.0.0.2"}})
	}
	f, _ := newTest(b, Config{Rules: rules})
	names := []string{"www.x.a.example.com.", "s3.eu-west-1.amazonaws.com.", "www.google.com.", "5.4.0.10.in-addr.arpa."}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok := f.Match(names[i%len(names)]); !ok {
			b.Fatal("no match")
		}
	}
}
