package main

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// zoneIndex is what the test knows about a zone after dns.ZoneParser read it.
type zoneIndex struct {
	origin string
	types  map[string]map[uint16]bool // owner -> types present
	cname  map[string]string          // CNAME owner -> target
	exists map[string]bool            // owners and empty non-terminals
}

func parseZone(t *testing.T, text []byte, origin string) zoneIndex {
	t.Helper()
	z := zoneIndex{origin: origin, types: map[string]map[uint16]bool{}, cname: map[string]string{}, exists: map[string]bool{}}
	zp := dns.NewZoneParser(bytes.NewReader(text), origin, "bench.example.zone")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		name := strings.ToLower(h.Name)
		if !dns.IsSubDomain(origin, name) {
			t.Fatalf("record outside the zone: %s", rr)
		}
		if z.types[name] == nil {
			z.types[name] = map[uint16]bool{}
		}
		z.types[name][h.Rrtype] = true
		if c, ok := rr.(*dns.CNAME); ok {
			z.cname[name] = strings.ToLower(c.Target)
		}
		// The owner and every ancestor down to the apex exist (ENTs).
		for n := name; ; {
			z.exists[n] = true
			if n == origin {
				break
			}
			i, _ := dns.NextLabel(n, 0)
			n = n[i:]
		}
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("zone does not parse: %v", err)
	}
	return z
}

// classify says what an authoritative server answers for (name, qtype), by
// the RFC 1034 / RFC 4592 lookup: exact match, else wildcard at the closest
// encloser, else NXDOMAIN. It returns "" for answers outside the bench's
// classes (NODATA, which the generator should never ask for).
func (z zoneIndex) classify(name string, qtype uint16) string {
	name = strings.ToLower(name)
	if z.exists[name] {
		ts := z.types[name]
		switch {
		case ts[dns.TypeCNAME]:
			return ClassCNAME
		case ts[qtype] && (qtype == dns.TypeA || qtype == dns.TypeAAAA):
			return ClassHit
		}
		return ""
	}
	ce := name
	for !z.exists[ce] {
		i, _ := dns.NextLabel(ce, 0)
		ce = ce[i:]
	}
	if ts := z.types["*."+ce]; ts != nil {
		if ts[qtype] {
			return ClassWildcard
		}
		return ""
	}
	return ClassNX
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// generate runs the generator as run.sh does (through the files it writes).
func generate(t *testing.T, cfg Config) (zoneIndex, []string, []string) {
	t.Helper()
	b, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	zf, qf, cf := filepath.Join(dir, "z"), filepath.Join(dir, "q"), filepath.Join(dir, "c")
	if err := writeFile(zf, func(w io.Writer) error { return b.WriteZone(w, "bench.example.") }); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(qf, b.WriteQueries); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(cf, b.WriteChecks); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(zf)
	if err != nil {
		t.Fatal(err)
	}
	return parseZone(t, text, "bench.example."), readLines(t, qf), readLines(t, cf)
}

func checkMix(t *testing.T, z zoneIndex, lines []string) {
	t.Helper()
	counts := map[string]int{}
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("query line %d: %q is not \"name TYPE\"", i+1, l)
		}
		qt, ok := dns.StringToType[f[1]]
		if !ok {
			t.Fatalf("query line %d: unknown type %q", i+1, f[1])
		}
		if _, ok := dns.IsDomainName(f[0]); !ok || !dns.IsFqdn(f[0]) {
			t.Fatalf("query line %d: bad name %q", i+1, f[0])
		}
		c := z.classify(f[0], qt)
		if c == "" {
			t.Fatalf("query line %d: %q is outside the mix (NODATA?)", i+1, l)
		}
		counts[c]++
	}
	for _, c := range Classes {
		got := float64(counts[c]) / float64(len(lines))
		if math.Abs(got-DefaultMix[c]) > 0.01 {
			t.Errorf("class %s: %.4f of queries, want %.2f ± 0.01", c, got, DefaultMix[c])
		}
	}
	t.Logf("mix over %d lines: %v", len(lines), counts)
}

func TestAuthZoneAndQueries(t *testing.T) {
	const names = 10000
	z, lines, checks := generate(t, Config{Names: names, Lines: 50000, Seed: 1})
	if got := len(z.types); got != names {
		t.Errorf("zone has %d owner names, want exactly %d", got, names)
	}
	apex := z.types["bench.example."]
	for _, ty := range []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeMX, dns.TypeTXT} {
		if !apex[ty] {
			t.Errorf("apex lacks %s", dns.TypeToString[ty])
		}
	}
	if z.types["*.wild.bench.example."] == nil {
		t.Error("no wildcard *.wild.bench.example.")
	}
	// CNAMEs: about 10% of owners, some chains of two, all ending in-zone
	// at a name with an address.
	var nCNAME, nChain int
	for owner, ts := range z.types {
		if !ts[dns.TypeCNAME] {
			continue
		}
		nCNAME++
		if len(ts) != 1 {
			t.Errorf("%s: CNAME beside other data", owner)
		}
	}
	if nCNAME < names/12 || nCNAME > names/8 {
		t.Errorf("%d CNAME owners, want about %d", nCNAME, names/10)
	}
	if len(lines) < 50000 {
		t.Errorf("%d query lines, want ≥ 50000", len(lines))
	}
	checkMix(t, z, lines)
	// Chains of two CNAMEs exist, none longer; every chain ends in-zone at
	// a name with an address.
	for owner, tgt := range z.cname {
		hops := 1
		for ; z.cname[tgt] != ""; hops++ {
			tgt = z.cname[tgt]
			if hops > 2 {
				t.Fatalf("%s: CNAME chain longer than 2", owner)
			}
		}
		if hops == 2 {
			nChain++
		}
		if ts := z.types[tgt]; !ts[dns.TypeA] {
			t.Errorf("%s: CNAME chain ends at %s with no A", owner, tgt)
		}
	}
	if nChain == 0 {
		t.Error("no CNAME chains of 2")
	}
	if len(checks) < 6 {
		t.Errorf("only %d sanity checks", len(checks))
	}
	// Each check's expected rcode agrees with the zone.
	for _, l := range checks {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("check %q is not \"name TYPE RCODE\"", l)
		}
		qt := dns.StringToType[f[1]]
		if qt == dns.TypeSOA {
			continue
		}
		want := "NOERROR"
		if z.classify(f[0], qt) == ClassNX {
			want = "NXDOMAIN"
		}
		if f[2] != want {
			t.Errorf("check %q: zone says %s", l, want)
		}
	}
}

func TestForwardQueriesRepeatDistinctSet(t *testing.T) {
	const distinct = 5000
	z, lines, _ := generate(t, Config{Names: 10000, Lines: 50000, Distinct: distinct, Seed: 7})
	if len(lines) < 50000 {
		t.Fatalf("%d query lines, want ≥ 50000", len(lines))
	}
	first := map[string]bool{}
	for _, l := range lines[:distinct] {
		first[l] = true
	}
	if len(first) != distinct {
		t.Errorf("first pass has %d distinct queries, want %d", len(first), distinct)
	}
	for i, l := range lines[distinct:] {
		if !first[l] {
			t.Fatalf("line %d: %q not in the first pass: not a cache hit after warm-up", distinct+i+1, l)
		}
	}
	checkMix(t, z, lines)
	checkMix(t, z, lines[:distinct])
}

func TestDeterministic(t *testing.T) {
	var out [2]bytes.Buffer
	for i := range out {
		b, err := Generate(Config{Names: 500, Lines: 1000, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		b.WriteZone(&out[i], "bench.example.")
		b.WriteQueries(&out[i])
	}
	if !bytes.Equal(out[0].Bytes(), out[1].Bytes()) {
		t.Error("same seed, different output")
	}
}
