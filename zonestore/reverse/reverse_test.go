package reverse

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

func zone(t *testing.T, origin, source, text string) *zonestore.Zone {
	t.Helper()
	b := zonestore.NewBuilder(origin)
	b.SetSource(source)
	p := dns.NewZoneParser(strings.NewReader(text), origin, "")
	for rr, ok := p.Next(); ok; rr, ok = p.Next() {
		if err := b.Add(rr); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	z, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return z
}

const fwd = `@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@ 3600 IN NS ns1
ns1 300 IN A 192.0.2.53
zeta 120 IN A 192.0.2.7
alpha 300 IN A 192.0.2.7
a.b 300 IN A 192.0.2.8
* 300 IN A 192.0.2.99
sub 300 IN NS ns.sub
ns.sub 300 IN A 192.0.2.98
v6 300 IN AAAA 2001:db8::5
other 300 IN A 198.51.100.1
`

func lookup(t *testing.T, s *zonestore.Store, view, name string) (rcode int, ptr string, soa bool) {
	t.Helper()
	z := s.Load().Find(view, name)
	if z == nil {
		return -1, "", false
	}
	for _, rr := range z.RRs() {
		if p, ok := rr.(*dns.PTR); ok && p.Hdr.Name == name {
			return dns.RcodeSuccess, p.Ptr, false
		}
	}
	return dns.RcodeNameError, "", z.SOA() != nil
}

func TestSynthesized(t *testing.T) {
	s := zonestore.NewStore()
	s.PutZone(zonestore.DefaultView, zone(t, "corp.example.", "route53:Z1", fwd))
	s.PutZone("prod", zone(t, "corp.example.", "route53:Z2", `@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@ 3600 IN NS ns1
intranet 60 IN A 192.0.2.7
`))
	syn := New(s, []Spec{
		{Zone: "2.0.192.in-addr.arpa", From: []string{"corp.example"}},
		{Zone: "2.0.192.in-addr.arpa.", From: []string{"corp.example."}, View: "prod"},
		{Zone: "8.b.d.0.1.0.0.2.ip6.arpa.", From: []string{"corp.example."}},
	}, nil)
	syn.Sync()
	for _, c := range []struct{ view, name, want string }{
		{"", "7.2.0.192.in-addr.arpa.", "alpha.corp.example."}, // canonical order: alpha before zeta
		{"prod", "7.2.0.192.in-addr.arpa.", "intranet.corp.example."},
		{"", "8.2.0.192.in-addr.arpa.", "a.b.corp.example."},
		{"", "99.2.0.192.in-addr.arpa.", ""}, // wildcard: no host
		{"", "98.2.0.192.in-addr.arpa.", ""}, // glue below a delegation
		{"", "53.2.0.192.in-addr.arpa.", "ns1.corp.example."},
		{"", "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "v6.corp.example."},
	} {
		rc, got, _ := lookup(t, s, c.view, c.name)
		if got != c.want || (c.want == "" && rc != dns.RcodeNameError) {
			t.Errorf("view %q %s: %s (rcode %d), want %q", c.view, c.name, got, rc, c.want)
		}
	}
	z := s.Load().Zone("", "2.0.192.in-addr.arpa.")
	if z.Source() != Source || z.SOA() == nil {
		t.Fatalf("reverse zone: source %s", z.Source())
	}
	// A TTL follows the chosen name's record.
	for _, rr := range z.RRs() {
		if rr.Header().Name == "7.2.0.192.in-addr.arpa." && rr.Header().Ttl != 300 {
			t.Errorf("PTR TTL %d, want alpha's 300", rr.Header().Ttl)
		}
	}
	serial := z.Serial()

	// A forward change rebuilds; no change does not.
	syn.Sync()
	if s.Load().Zone("", "2.0.192.in-addr.arpa.") != z {
		t.Fatal("rebuilt without a forward change")
	}
	s.PutZone(zonestore.DefaultView, zone(t, "corp.example.", "route53:Z1", strings.Replace(fwd, "alpha 300 IN A 192.0.2.7", "alpha 300 IN A 192.0.2.9", 1)))
	syn.Sync()
	if _, got, _ := lookup(t, s, "", "7.2.0.192.in-addr.arpa."); got != "zeta.corp.example." {
		t.Errorf("after the change: 7 → %s, want zeta", got)
	}
	if _, got, _ := lookup(t, s, "", "9.2.0.192.in-addr.arpa."); got != "alpha.corp.example." {
		t.Errorf("after the change: 9 → %s, want alpha", got)
	}
	if z2 := s.Load().Zone("", "2.0.192.in-addr.arpa."); int32(z2.Serial()-serial) <= 0 {
		t.Errorf("serial did not move: %d → %d", serial, z2.Serial())
	}
}

func TestExplicitWins(t *testing.T) {
	s := zonestore.NewStore()
	s.PutZone(zonestore.DefaultView, zone(t, "corp.example.", "route53:Z1", fwd))
	s.PutZone(zonestore.DefaultView, zone(t, "2.0.192.in-addr.arpa.", "route53:ZREV", `@ 3600 IN SOA ns1.corp.example. hostmaster.corp.example. 7 3600 600 86400 60
@ 3600 IN NS ns1.corp.example.
7 300 IN PTR printer.other.example.
sub8 300 IN NS ns.delegated.example.
8 300 IN NS ns.delegated.example.
`))
	syn := New(s, []Spec{{Zone: "2.0.192.in-addr.arpa.", From: []string{"corp.example."}}, {Zone: "2.0.192.in-addr.arpa.", From: []string{"corp.example."}, View: "prod"}}, nil)
	syn.Sync()
	for _, view := range []string{"", "prod"} {
		if _, got, _ := lookup(t, s, view, "7.2.0.192.in-addr.arpa."); got != "printer.other.example." {
			t.Errorf("view %q: explicit PTR replaced by %s", view, got)
		}
		if _, got, _ := lookup(t, s, view, "8.2.0.192.in-addr.arpa."); got != "" {
			t.Errorf("view %q: delegated name synthesized: %s", view, got)
		}
		if _, got, _ := lookup(t, s, view, "53.2.0.192.in-addr.arpa."); got != "ns1.corp.example." {
			t.Errorf("view %q: 53 → %q", view, got)
		}
	}
	// The explicit zone changes at its source: the merge follows it.
	s.PutZone(zonestore.DefaultView, zone(t, "2.0.192.in-addr.arpa.", "route53:ZREV", `@ 3600 IN SOA ns1.corp.example. hostmaster.corp.example. 8 3600 600 86400 60
@ 3600 IN NS ns1.corp.example.
53 300 IN PTR dns.other.example.
`))
	syn.Sync()
	for _, view := range []string{"", "prod"} {
		if _, got, _ := lookup(t, s, view, "53.2.0.192.in-addr.arpa."); got != "dns.other.example." {
			t.Errorf("view %q: new explicit PTR not served: %q", view, got)
		}
		if _, got, _ := lookup(t, s, view, "7.2.0.192.in-addr.arpa."); got != "alpha.corp.example." {
			t.Errorf("view %q: 7 → %q after the explicit PTR went", view, got)
		}
	}
}

func TestRunFollowsTheStore(t *testing.T) {
	s := zonestore.NewStore()
	syn := New(s, []Spec{{Zone: "2.0.192.in-addr.arpa.", From: []string{"corp.example."}}}, nil)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { syn.Run(stop); close(done) }()
	defer func() { close(stop); <-done }()
	for {
		ch := s.Changed()
		if _, got, _ := lookup(t, s, "", "7.2.0.192.in-addr.arpa."); got == "alpha.corp.example." {
			return
		}
		if s.Load().Zone("", "corp.example.") == nil {
			s.PutZone(zonestore.DefaultView, zone(t, "corp.example.", "route53:Z1", fwd))
		}
		<-ch // the next publish (ours or the synthesizer's)
	}
}
