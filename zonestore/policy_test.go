package zonestore

import (
	"math"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// policyZone builds a zone with one group of each routing policy and
// several aliases.
func policyZone(t testing.TB) *Zone {
	b := NewBuilder("r53.test.")
	for _, s := range []string{
		"r53.test. 900 IN SOA ns-1.awsdns-1.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400",
		"r53.test. 172800 IN NS ns-1.awsdns-1.com.",
		"www.r53.test. 300 IN A 192.0.2.1",
		"chain.r53.test. 60 IN CNAME www.r53.test.",
		"toelb.r53.test. 60 IN CNAME elb.r53.test.",
		"toelb2.r53.test. 60 IN CNAME al-elb.r53.test.",
	} {
		if err := b.Add(mustRR(t, s)); err != nil {
			t.Fatal(err)
		}
	}
	add := func(owner string, qtype uint16, p Policy, v Variant, rrs ...string) {
		t.Helper()
		for _, s := range rrs {
			v.RRs = append(v.RRs, mustRR(t, s))
		}
		if err := b.AddVariant(owner, qtype, p, v); err != nil {
			t.Fatal(err)
		}
	}
	A := dns.TypeA
	add("w.r53.test.", A, PolicyWeighted, Variant{ID: "one", Weight: 1}, "w.r53.test. 60 IN A 10.0.0.1")
	add("w.r53.test.", A, PolicyWeighted, Variant{ID: "three", Weight: 3}, "w.r53.test. 60 IN A 10.0.0.3")
	add("w.r53.test.", A, PolicyWeighted, Variant{ID: "six", Weight: 6, HealthCheck: "hc-six"}, "w.r53.test. 60 IN A 10.0.0.6")
	add("w.r53.test.", A, PolicyWeighted, Variant{ID: "zero", Weight: 0}, "w.r53.test. 60 IN A 10.0.0.0")

	add("f.r53.test.", A, PolicyFailover, Variant{ID: "p", Failover: FailoverPrimary, HealthCheck: "hc-p"}, "f.r53.test. 60 IN A 10.1.0.1")
	add("f.r53.test.", A, PolicyFailover, Variant{ID: "s", Failover: FailoverSecondary, HealthCheck: "hc-s"}, "f.r53.test. 60 IN A 10.1.0.2")
	add("f2.r53.test.", A, PolicyFailover, Variant{ID: "p", Failover: FailoverPrimary, HealthCheck: "hc-p"}, "f2.r53.test. 60 IN A 10.1.0.1")
	add("f2.r53.test.", A, PolicyFailover, Variant{ID: "s", Failover: FailoverSecondary}, "f2.r53.test. 60 IN A 10.1.0.2")

	for i := 0; i < 10; i++ {
		hc := ""
		if i < 3 {
			hc = "hc-mv"
		}
		add("mv.r53.test.", A, PolicyMultiValue, Variant{ID: string(rune('a' + i)), HealthCheck: hc}, "mv.r53.test. 60 IN A 10.2.0."+string(rune('0'+i)))
	}
	add("lat.r53.test.", A, PolicyLatency, Variant{ID: "use1", Region: "us-east-1"}, "lat.r53.test. 60 IN A 10.3.0.1")
	add("lat.r53.test.", A, PolicyLatency, Variant{ID: "euw1", Region: "eu-west-1"}, "lat.r53.test. 60 IN A 10.3.0.2")
	add("lat.r53.test.", A, PolicyLatency, Variant{ID: "euc1", Region: "eu-central-1"}, "lat.r53.test. 60 IN A 10.3.0.3")

	add("geo.r53.test.", A, PolicyGeo, Variant{ID: "wa", Location: Location{Country: "US", Subdivision: "WA"}}, "geo.r53.test. 60 IN A 10.4.0.1")
	add("geo.r53.test.", A, PolicyGeo, Variant{ID: "us", Location: Location{Country: "US"}}, "geo.r53.test. 60 IN A 10.4.0.2")
	add("geo.r53.test.", A, PolicyGeo, Variant{ID: "eu", Location: Location{Continent: "EU"}}, "geo.r53.test. 60 IN A 10.4.0.3")
	add("geo.r53.test.", A, PolicyGeo, Variant{ID: "def", Location: Location{Country: "*"}}, "geo.r53.test. 60 IN A 10.4.0.4")
	add("geo2.r53.test.", A, PolicyGeo, Variant{ID: "us", Location: Location{Country: "US"}}, "geo2.r53.test. 60 IN A 10.4.1.1")

	add("ip.r53.test.", A, PolicyCIDR, Variant{ID: "office", CIDRColl: "c1", CIDRLoc: "office"}, "ip.r53.test. 60 IN A 10.5.0.1")
	add("ip.r53.test.", A, PolicyCIDR, Variant{ID: "rest", CIDRColl: "c1", CIDRLoc: "*"}, "ip.r53.test. 60 IN A 10.5.0.2")

	add("r53.test.", A, PolicySimple, Variant{Alias: &Alias{Target: "www.r53.test."}})             // apex alias
	add("al.r53.test.", A, PolicySimple, Variant{Alias: &Alias{Target: "w.r53.test."}})            // alias to a weighted group
	add("al2.r53.test.", A, PolicySimple, Variant{Alias: &Alias{Target: "al.r53.test."}})          // chained alias
	add("*.wild.r53.test.", A, PolicySimple, Variant{Alias: &Alias{Target: "www.r53.test."}})      // wildcard alias
	add("missing.r53.test.", A, PolicySimple, Variant{Alias: &Alias{Target: "nothing.r53.test."}}) // dangling
	add("elb.r53.test.", A, PolicySimple, Variant{Alias: &Alias{Target: "dualstack.my-lb.elb.amazonaws.com.", External: true}})
	add("al-elb.r53.test.", A, PolicySimple, Variant{Alias: &Alias{Target: "elb.r53.test."}}) // same-zone alias to an outside alias
	add("ha.r53.test.", A, PolicyFailover, Variant{ID: "p", Failover: FailoverPrimary, Alias: &Alias{Target: "f.r53.test.", EvalHealth: true}})
	add("ha.r53.test.", A, PolicyFailover, Variant{ID: "s", Failover: FailoverSecondary}, "ha.r53.test. 60 IN A 10.9.9.9")
	z, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func addrs(res Result) string {
	var out []string
	for _, rr := range res.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return strings.Join(out, ",")
}

func health(down ...string) func(string) bool {
	return func(id string) bool {
		for _, d := range down {
			if d == id {
				return false
			}
		}
		return true
	}
}

func TestWeightedDistribution(t *testing.T) {
	z := policyZone(t)
	const n = 10000
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		counts[addrs(z.LookupFor("w.r53.test.", dns.TypeA, nil))]++
	}
	for ip, weight := range map[string]float64{"10.0.0.1": 0.1, "10.0.0.3": 0.3, "10.0.0.6": 0.6} {
		got := float64(counts[ip]) / n
		if math.Abs(got-weight) > 0.05*weight+0.01 {
			t.Errorf("%s chosen %.3f of the time, want %.2f", ip, got, weight)
		}
	}
	if counts["10.0.0.0"] != 0 {
		t.Errorf("zero weight chosen %d times while others are healthy", counts["10.0.0.0"])
	}
	// With six unhealthy, the rest share by weight.
	c := &Client{Healthy: health("hc-six")}
	for i := 0; i < 200; i++ {
		if got := addrs(z.LookupFor("w.r53.test.", dns.TypeA, c)); got == "10.0.0.6" {
			t.Fatal("unhealthy weighted set chosen")
		}
	}
}

func TestPolicies(t *testing.T) {
	z := policyZone(t)
	locate := func(a netip.Addr) (Location, bool) {
		switch a.String() {
		case "198.51.100.1":
			return Location{Continent: "NA", Country: "US", Subdivision: "WA"}, true
		case "198.51.100.2":
			return Location{Continent: "NA", Country: "US", Subdivision: "CA"}, true
		case "198.51.100.3":
			return Location{Continent: "EU", Country: "DE"}, true
		case "198.51.100.4":
			return Location{Continent: "AS", Country: "JP"}, true
		}
		return Location{}, false
	}
	cidr := func(coll string, a netip.Addr) string {
		if coll == "c1" && netip.MustParsePrefix("203.0.113.0/24").Contains(a) {
			return "office"
		}
		return ""
	}
	tests := []struct {
		name   string
		qname  string
		client Client
		want   string
		kind   Kind
	}{
		{"failover primary", "f.r53.test.", Client{}, "10.1.0.1", Answer},
		{"failover to secondary", "f.r53.test.", Client{Healthy: health("hc-p")}, "10.1.0.2", Answer},
		{"failover both down: primary", "f.r53.test.", Client{Healthy: health("hc-p", "hc-s")}, "10.1.0.1", Answer},
		{"failover secondary without check", "f2.r53.test.", Client{Healthy: health("hc-p")}, "10.1.0.2", Answer},
		{"latency same region", "lat.r53.test.", Client{Region: "eu-west-1"}, "10.3.0.2", Answer},
		{"latency same area", "lat.r53.test.", Client{Region: "eu-central-2"}, "10.3.0.3", Answer},
		{"latency same continent prefix", "lat.r53.test.", Client{Region: "us-west-2"}, "10.3.0.1", Answer},
		{"geo subdivision", "geo.r53.test.", Client{Addr: netip.MustParseAddr("198.51.100.1"), Locate: locate}, "10.4.0.1", Answer},
		{"geo country", "geo.r53.test.", Client{Addr: netip.MustParseAddr("198.51.100.2"), Locate: locate}, "10.4.0.2", Answer},
		{"geo continent", "geo.r53.test.", Client{Addr: netip.MustParseAddr("198.51.100.3"), Locate: locate}, "10.4.0.3", Answer},
		{"geo default", "geo.r53.test.", Client{Addr: netip.MustParseAddr("198.51.100.4"), Locate: locate}, "10.4.0.4", Answer},
		{"geo no match no default", "geo2.r53.test.", Client{Addr: netip.MustParseAddr("198.51.100.4"), Locate: locate}, "", NoData},
		{"cidr match", "ip.r53.test.", Client{Addr: netip.MustParseAddr("203.0.113.9"), CIDRLocation: cidr}, "10.5.0.1", Answer},
		{"cidr default", "ip.r53.test.", Client{Addr: netip.MustParseAddr("192.0.2.9"), CIDRLocation: cidr}, "10.5.0.2", Answer},
		{"apex alias", "r53.test.", Client{}, "192.0.2.1", Answer},
		{"wildcard alias", "x.wild.r53.test.", Client{}, "192.0.2.1", Answer},
		{"dangling alias", "missing.r53.test.", Client{}, "", NoData},
		{"alias evaluates target health: healthy", "ha.r53.test.", Client{}, "10.1.0.1", Answer},
		{"alias evaluates target health: all down", "ha.r53.test.", Client{Healthy: health("hc-p", "hc-s")}, "10.9.9.9", Answer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client
			res := z.LookupFor(tc.qname, dns.TypeA, &c)
			if res.Kind != tc.kind || addrs(res) != tc.want {
				t.Fatalf("got %v %q, want %v %q", res.Kind, addrs(res), tc.kind, tc.want)
			}
			for _, rr := range res.Answer {
				if rr.Header().Name != tc.qname {
					t.Errorf("owner %s, want %s", rr.Header().Name, tc.qname)
				}
			}
		})
	}
}

func TestAliases(t *testing.T) {
	z := policyZone(t)
	res := z.Lookup("r53.test.", dns.TypeA)
	if res.Answer[0].Header().Ttl != 300 {
		t.Errorf("apex alias TTL %d, want the target's 300", res.Answer[0].Header().Ttl)
	}
	if res := z.Lookup("r53.test.", dns.TypeAAAA); res.Kind != NoData {
		t.Errorf("alias of type A answers AAAA: %v", res.Kind)
	}
	res = z.Lookup("al2.r53.test.", dns.TypeA)
	if res.Kind != Answer || len(res.Answer) != 1 || res.Answer[0].Header().Name != "al2.r53.test." || res.Answer[0].Header().Ttl != 60 {
		t.Errorf("chained alias to a weighted group: %v", res.Answer)
	}
	res = z.Lookup("elb.r53.test.", dns.TypeA)
	if res.Kind != Answer || res.Alias != "dualstack.my-lb.elb.amazonaws.com." || len(res.Answer) != 0 {
		t.Errorf("external alias: %+v", res)
	}
	// A CNAME to an alias of an outside resource: the CNAME, and the
	// alias's owner to chase (a caller resolves it); never a crash.
	for _, name := range []string{"toelb.r53.test.", "toelb2.r53.test."} {
		for _, lookup := range []func(string, uint16, *Client) Result{z.LookupFor, z.LookupWire} {
			res := lookup(name, dns.TypeA, nil)
			if res.Kind != Answer || res.Chase == "" || (len(res.Answer) != 1 && res.Answer != nil) {
				t.Errorf("%s: %+v", name, res)
			}
		}
	}
	if res := z.Lookup("al-elb.r53.test.", dns.TypeA); res.Alias != "dualstack.my-lb.elb.amazonaws.com." {
		t.Errorf("alias to an outside alias: %+v", res)
	}
	// The zone's data is never rewritten by re-owning.
	if www := z.Lookup("www.r53.test.", dns.TypeA); www.Answer[0].Header().Name != "www.r53.test." {
		t.Errorf("target record re-owned in place: %v", www.Answer[0])
	}
}

func TestMultiValue(t *testing.T) {
	z := policyZone(t)
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		res := z.LookupFor("mv.r53.test.", dns.TypeA, &Client{Healthy: health("hc-mv")})
		if len(res.Answer) != 7 {
			t.Fatalf("%d records, want the 7 healthy ones", len(res.Answer))
		}
		for _, ip := range strings.Split(addrs(res), ",") {
			if ip < "10.2.0.3" {
				t.Fatalf("unhealthy record %s returned", ip)
			}
			seen[ip] = true
		}
		res = z.Lookup("mv.r53.test.", dns.TypeA)
		if len(res.Answer) != 8 {
			t.Fatalf("%d records, want at most 8", len(res.Answer))
		}
		for _, ip := range strings.Split(addrs(res), ",") {
			seen[ip] = true
		}
	}
	if len(seen) != 10 {
		t.Errorf("only %d of 10 record sets ever returned", len(seen))
	}
}

func TestVariantValidation(t *testing.T) {
	base := func() *Builder {
		b := NewBuilder("v.test.")
		b.Add(mustRR(t, "v.test. 60 IN SOA ns hm 1 2 3 4 5"))
		b.Add(mustRR(t, "v.test. 60 IN NS ns.v.test."))
		return b
	}
	b := base()
	b.AddVariant("a.v.test.", dns.TypeA, PolicyWeighted, Variant{ID: "x", Weight: 1, RRs: []dns.RR{mustRR(t, "a.v.test. 60 IN A 10.0.0.1")}})
	if err := b.AddVariant("a.v.test.", dns.TypeA, PolicyFailover, Variant{ID: "y", RRs: []dns.RR{mustRR(t, "a.v.test. 60 IN A 10.0.0.2")}}); err == nil {
		t.Error("mixed policies accepted")
	}
	if err := b.AddVariant("a.v.test.", dns.TypeA, PolicyWeighted, Variant{ID: "x", Weight: 1, RRs: []dns.RR{mustRR(t, "a.v.test. 60 IN A 10.0.0.3")}}); err == nil {
		t.Error("duplicate set identifier accepted")
	}
	if err := b.Add(mustRR(t, "a.v.test. 60 IN A 10.0.0.4")); err == nil {
		t.Error("plain record mixed into a weighted group")
	}
	if err := b.AddVariant("b.v.test.", dns.TypeA, PolicySimple, Variant{}); err == nil {
		t.Error("empty record set accepted")
	}
	b = base()
	b.AddVariant("c.v.test.", dns.TypeCNAME, PolicySimple, Variant{Alias: &Alias{Target: "x.v.test."}})
	b.Add(mustRR(t, "c.v.test. 60 IN TXT \"x\""))
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "CNAME and other data") {
		t.Errorf("alias CNAME with other data: %v", err)
	}
	b = base()
	b.AddVariant("f.v.test.", dns.TypeA, PolicyFailover, Variant{ID: "1", Failover: FailoverPrimary, RRs: []dns.RR{mustRR(t, "f.v.test. 60 IN A 10.0.0.1")}})
	b.AddVariant("f.v.test.", dns.TypeA, PolicyFailover, Variant{ID: "2", Failover: FailoverPrimary, RRs: []dns.RR{mustRR(t, "f.v.test. 60 IN A 10.0.0.2")}})
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "PRIMARY") {
		t.Errorf("two primaries: %v", err)
	}
}

func TestPolicyLookupZeroAlloc(t *testing.T) {
	z := policyZone(t)
	c := &Client{Region: "eu-west-1", Healthy: health()}
	for _, name := range []string{"w.r53.test.", "f.r53.test.", "lat.r53.test.", "r53.test."} {
		if n := testing.AllocsPerRun(100, func() { z.LookupWire(name, dns.TypeA, c) }); n != 0 {
			t.Errorf("LookupWire(%s) allocates %v", name, n)
		}
	}
}
