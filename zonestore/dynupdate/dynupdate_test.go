package dynupdate

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// mapSource is a Source over zone-file text; names listed in opaque exist
// without plain records (an alias, say).
type mapSource struct {
	sets   map[Key][]dns.RR
	opaque map[Key]bool
}

func newSource(t *testing.T, zone string, opaque ...Key) *mapSource {
	t.Helper()
	src := &mapSource{sets: map[Key][]dns.RR{}, opaque: map[Key]bool{}}
	zp := dns.NewZoneParser(strings.NewReader(zone), "example.", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		k := Key{strings.ToLower(rr.Header().Name), rr.Header().Rrtype}
		src.sets[k] = append(src.sets[k], rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range opaque {
		src.opaque[k] = true
	}
	return src
}

func (m *mapSource) RRset(name string, t uint16) ([]dns.RR, bool) {
	k := Key{name, t}
	if m.opaque[k] {
		return nil, true
	}
	s, ok := m.sets[k]
	return s, ok
}

func (m *mapSource) Types(name string) []uint16 {
	var out []uint16
	for k := range m.sets {
		if k.Name == name {
			out = append(out, k.Type)
		}
	}
	for k := range m.opaque {
		if k.Name == name && !slices.Contains(out, k.Type) {
			out = append(out, k.Type)
		}
	}
	return out
}

const zone = `
$TTL 300
@	SOA	ns1 host 1 7200 900 1209600 86400
@	NS	ns1
@	NS	ns2
www	A	192.0.2.1
www	A	192.0.2.2
mail	MX	10 mx
alias	CNAME	www
`

// rrs parses records and round-trips them through the wire, as a server
// receives them (RDLENGTH set).
func rrs(t *testing.T, class uint16, lines ...string) []dns.RR {
	t.Helper()
	m := new(dns.Msg)
	m.SetUpdate("example.")
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if class != 0 {
			rr.Header().Class = class
			if class == dns.ClassANY && strings.Count(l, " ") < 3 {
				rr = &dns.ANY{Hdr: *rr.Header()}
				rr.Header().Rrtype = dns.StringToType[strings.Fields(l)[len(strings.Fields(l))-1]]
			}
		}
		m.Ns = append(m.Ns, rr)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var u dns.Msg
	if err := u.Unpack(b); err != nil {
		t.Fatal(err)
	}
	return u.Ns
}

func TestPrereqs(t *testing.T) {
	src := newSource(t, zone)
	any := func(name string, typ uint16) dns.RR {
		return &dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassANY}}
	}
	none := func(name string, typ uint16) dns.RR {
		return &dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassNONE}}
	}
	for _, tc := range []struct {
		name string
		pre  []dns.RR
		want int
	}{
		{"name in use", []dns.RR{any("www.example.", dns.TypeANY)}, dns.RcodeSuccess},
		{"name in use fails", []dns.RR{any("no.example.", dns.TypeANY)}, dns.RcodeNameError},
		{"name not in use", []dns.RR{none("no.example.", dns.TypeANY)}, dns.RcodeSuccess},
		{"name not in use fails", []dns.RR{none("www.example.", dns.TypeANY)}, dns.RcodeYXDomain},
		{"rrset exists", []dns.RR{any("www.example.", dns.TypeA)}, dns.RcodeSuccess},
		{"rrset exists fails", []dns.RR{any("www.example.", dns.TypeAAAA)}, dns.RcodeNXRrset},
		{"rrset absent", []dns.RR{none("www.example.", dns.TypeAAAA)}, dns.RcodeSuccess},
		{"rrset absent fails", []dns.RR{none("www.example.", dns.TypeA)}, dns.RcodeYXRrset},
		{"value-dependent equal", rrs(t, 0, "www.example. 0 IN A 192.0.2.2", "WWW.example. 0 IN A 192.0.2.1"), dns.RcodeSuccess},
		{"value-dependent subset fails", rrs(t, 0, "www.example. 0 IN A 192.0.2.1"), dns.RcodeNXRrset},
		{"value-dependent superset fails", rrs(t, 0, "www.example. 0 IN A 192.0.2.1", "www.example. 0 IN A 192.0.2.2", "www.example. 0 IN A 192.0.2.3"), dns.RcodeNXRrset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Prereqs(src, tc.pre); got != tc.want {
				t.Errorf("Prereqs = %s, want %s", dns.RcodeToString[got], dns.RcodeToString[tc.want])
			}
		})
	}
}

func TestCheckShape(t *testing.T) {
	for _, tc := range []struct {
		name           string
		prereq, update []dns.RR
		want           int
	}{
		{"fine", nil, rrs(t, 0, "a.example. 60 IN A 192.0.2.1"), dns.RcodeSuccess},
		{"update outside the zone", nil, rrs(t, 0, "a.other. 60 IN A 192.0.2.1"), dns.RcodeNotZone},
		{"an escaped dot is not a label end", nil, rrs(t, 0, `x\.example. 60 IN A 192.0.2.1`), dns.RcodeNotZone},
		{"prereq outside the zone", rrs(t, 0, "a.other. 0 IN A 192.0.2.1"), nil, dns.RcodeNotZone},
		{"prereq with a TTL", rrs(t, 0, "a.example. 60 IN A 192.0.2.1"), nil, dns.RcodeFormatError},
		{"delete with a TTL", nil, []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeA, Class: dns.ClassANY, Ttl: 5}}}, dns.RcodeFormatError},
		{"add of type ANY", nil, []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeANY, Class: dns.ClassINET, Ttl: 5, Rdlength: 1}}}, dns.RcodeFormatError},
		{"add of AXFR", nil, []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeAXFR, Class: dns.ClassINET, Ttl: 5, Rdlength: 1}}}, dns.RcodeFormatError},
		{"class CH", nil, []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeA, Class: dns.ClassCHAOS, Rdlength: 4}}}, dns.RcodeFormatError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CheckShape("example.", tc.prereq, tc.update); got != tc.want {
				t.Errorf("CheckShape = %s, want %s", dns.RcodeToString[got], dns.RcodeToString[tc.want])
			}
		})
	}
}

// render shows changes as "name type: old -> new" with rdata only.
func render(cs []Change) []string {
	set := func(rrs []dns.RR) string {
		var v []string
		for _, rr := range rrs {
			s := rr.String()
			v = append(v, strings.TrimSpace(s[len(rr.Header().String()):])+"/"+itoa(rr.Header().Ttl))
		}
		slices.Sort(v)
		return "[" + strings.Join(v, " ") + "]"
	}
	var out []string
	for _, c := range cs {
		out = append(out, c.Name+" "+dns.TypeToString[c.Type]+": "+set(c.Old)+" -> "+set(c.New))
	}
	return out
}

func itoa(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestApply(t *testing.T) {
	del := func(name, typ string) dns.RR {
		return &dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: dns.StringToType[typ], Class: dns.ClassANY}}
	}
	noneRR := func(line string) dns.RR {
		rr := rrs(t, 0, line)[0]
		rr.Header().Class, rr.Header().Ttl = dns.ClassNONE, 0
		return rr
	}
	for _, tc := range []struct {
		name    string
		updates []dns.RR
		opaque  []Key
		want    []string
	}{
		{"add new", rrs(t, 0, "new.example. 60 IN A 192.0.2.9"),
			nil, []string{"new.example. A: [] -> [192.0.2.9/60]"}},
		{"add merges with the new TTL", rrs(t, 0, "www.example. 60 IN A 192.0.2.3"),
			nil, []string{"www.example. A: [192.0.2.1/300 192.0.2.2/300] -> [192.0.2.1/60 192.0.2.2/60 192.0.2.3/60]"}},
		{"add duplicate same TTL: nothing", rrs(t, 0, "www.example. 300 IN A 192.0.2.1"), nil, nil},
		{"CNAME onto other data skipped", rrs(t, 0, "www.example. 60 IN CNAME mail.example."), nil, nil},
		{"other data onto a CNAME skipped", rrs(t, 0, "alias.example. 60 IN A 192.0.2.7"), nil, nil},
		{"CNAME replaces CNAME", rrs(t, 0, "alias.example. 300 IN CNAME mail.example."),
			nil, []string{"alias.example. CNAME: [www.example./300] -> [mail.example./300]"}},
		{"delete one", []dns.RR{noneRR("www.example. 0 IN A 192.0.2.1")},
			nil, []string{"www.example. A: [192.0.2.1/300 192.0.2.2/300] -> [192.0.2.2/300]"}},
		{"delete a missing value: nothing", []dns.RR{noneRR("www.example. 0 IN A 192.0.2.99")}, nil, nil},
		{"delete rrset", []dns.RR{del("www.example.", "A")},
			nil, []string{"www.example. A: [192.0.2.1/300 192.0.2.2/300] -> []"}},
		{"delete name", []dns.RR{del("mail.example.", "ANY")},
			nil, []string{"mail.example. MX: [10 mx.example./300] -> []"}},
		{"apex delete-all spares SOA and NS", []dns.RR{del("example.", "ANY"), del("example.", "NS"), del("example.", "SOA")}, nil, nil},
		{"last apex NS stays", []dns.RR{noneRR("example. 0 IN NS ns1.example."), noneRR("example. 0 IN NS ns2.example.")},
			nil, []string{"example. NS: [ns1.example./300 ns2.example./300] -> [ns2.example./300]"}},
		{"SOA ignored", rrs(t, 0, "example. 300 IN SOA ns1.example. host.example. 99 1 1 1 1"), nil, nil},
		{"delete then add is one change", []dns.RR{del("www.example.", "A"), rrs(t, 0, "www.example. 30 IN A 192.0.2.5")[0]},
			nil, []string{"www.example. A: [192.0.2.1/300 192.0.2.2/300] -> [192.0.2.5/30]"}},
		{"an opaque set written is reported", []dns.RR{del("lb.example.", "A")},
			[]Key{{"lb.example.", dns.TypeA}}, []string{"lb.example. A: [] -> []"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(t, zone, tc.opaque...)
			got := render(Apply(src, "example.", tc.updates))
			if !slices.Equal(got, tc.want) {
				t.Errorf("Apply =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
