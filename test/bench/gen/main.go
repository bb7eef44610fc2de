// Command gen writes the benchmark inputs for test/bench/run.sh: a zone file
// for bench.example. with a fixed number of owner names, a dnsperf query file
// and a small list of sanity checks (name, type, expected rcode) that the
// script runs with dig before benchmarking a server.
//
// Usage:
//
//	gen -mode auth    -zone DIR/bench.example.zone -queries Q -checks C
//	gen -mode forward -zone DIR/bench.example.zone -queries Q -checks C
//
// Authoritative mode writes -lines queries drawn afresh from the target mix
// (70% A/AAAA hits, 10% CNAME owners, 10% wildcard matches, 10% NXDOMAIN).
// Forward mode draws -distinct (name, type) pairs from the same mix and
// writes them as repeated shuffled passes, the first pass first, so that a
// warm-up that gets through one pass leaves every later query a cache hit.
//
// Output is deterministic for a given -seed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Query classes of the mix.
const (
	ClassHit      = "hit"      // existing host, A or AAAA it has
	ClassCNAME    = "cname"    // owner of a CNAME (chain resolved in-zone)
	ClassWildcard = "wildcard" // synthesised from *.wild
	ClassNX       = "nxdomain" // name that does not exist
)

// Classes lists the classes in a fixed order.
var Classes = []string{ClassHit, ClassCNAME, ClassWildcard, ClassNX}

// DefaultMix is the target share of each class in the query file.
var DefaultMix = map[string]float64{
	ClassHit:      0.70,
	ClassCNAME:    0.10,
	ClassWildcard: 0.10,
	ClassNX:       0.10,
}

// Config says what to generate.
type Config struct {
	Origin   string // zone apex, fully qualified
	Names    int    // exact number of distinct owner names in the zone
	Lines    int    // minimum number of query lines
	Distinct int    // forward mode: number of distinct (name, type) pairs; 0 = auth mode
	Seed     uint64
}

// Query is one dnsperf line.
type Query struct {
	Name  string
	Type  uint16
	Class string
}

func (q Query) String() string { return q.Name + " " + dns.TypeToString[q.Type] }

// Check is one sanity query for dig.
type Check struct {
	Name  string
	Type  uint16
	Rcode int
}

// host is an owner name holding address records (and maybe MX/TXT).
type host struct {
	name    string
	hasAAAA bool
}

// Bench holds everything generated.
type Bench struct {
	Zone    []dns.RR
	Owners  int
	Queries []Query
	Checks  []Check
	hosts   []host
	cnames  []string
	wildTop string // wild.<origin>; *.wild.<origin> is the wildcard
	exists  map[string]bool
}

const ttl = 3600

// Generate builds the zone, query list and checks for cfg.
func Generate(cfg Config) (*Bench, error) {
	if cfg.Origin == "" {
		cfg.Origin = "bench.example."
	}
	cfg.Origin = dns.Fqdn(strings.ToLower(cfg.Origin))
	if cfg.Names < 100 {
		return nil, fmt.Errorf("names must be at least 100, got %d", cfg.Names)
	}
	if cfg.Distinct < 0 || cfg.Lines < 1 {
		return nil, fmt.Errorf("bad distinct/lines: %d/%d", cfg.Distinct, cfg.Lines)
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x68796272696473))
	b := &Bench{exists: map[string]bool{}, wildTop: "wild." + cfg.Origin}
	b.buildZone(cfg, r)
	if cfg.Distinct > 0 {
		b.buildForwardQueries(cfg, r)
	} else {
		b.Queries = b.drawQueries(cfg.Lines, r, nil)
	}
	b.buildChecks(cfg)
	return b, nil
}

func (b *Bench) add(s string) {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(fmt.Sprintf("gen: bad record %q: %v", s, err))
	}
	name := strings.ToLower(rr.Header().Name)
	if !b.exists[name] {
		b.exists[name] = true
		b.Owners++
	}
	b.Zone = append(b.Zone, rr)
}

func ip4(i int) string { return fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255) }
func ip6(i int) string {
	return fmt.Sprintf("2001:db8:%x:%x::%x", (i>>16)&0xffff, (i>>8)&0xff, i&0xff+1)
}

// Host name prefixes and "site" sub-labels for a realistic-looking zone.
var (
	prefixes = []string{"www", "api", "app", "web", "db", "cache", "mq", "vpn", "git", "ci", "mon", "log", "lb", "edge", "host", "node", "srv", "auth", "cdn", "img"}
	sites    = []string{"", "", "", "lon", "fra", "nyc", "sfo", "sin", "dev", "corp"}
)

func (b *Bench) buildZone(cfg Config, r *rand.Rand) {
	o := cfg.Origin
	// Apex: SOA (minimum = negative-caching TTL), NS, MX, TXT.
	b.add(fmt.Sprintf("%s %d IN SOA ns1.%s hostmaster.%s 2024010101 7200 3600 1209600 %d", o, ttl, o, o, ttl))
	b.add(fmt.Sprintf("%s %d IN NS ns1.%s", o, ttl, o))
	b.add(fmt.Sprintf("%s %d IN NS ns2.%s", o, ttl, o))
	b.add(fmt.Sprintf("%s %d IN MX 10 mail1.%s", o, ttl, o))
	b.add(fmt.Sprintf("%s %d IN MX 20 mail2.%s", o, ttl, o))
	b.add(fmt.Sprintf(`%s %d IN TXT "v=spf1 mx -all"`, o, ttl))
	n := 0 // address counter
	addHost := func(name string, v6 bool, nA int) {
		for k := 0; k < nA; k++ {
			n++
			b.add(fmt.Sprintf("%s %d IN A %s", name, ttl, ip4(n)))
		}
		if v6 {
			b.add(fmt.Sprintf("%s %d IN AAAA %s", name, ttl, ip6(n)))
		}
		b.hosts = append(b.hosts, host{name: name, hasAAAA: v6})
	}
	for _, h := range []string{"ns1", "ns2", "mail1", "mail2"} {
		addHost(h+"."+o, true, 1)
	}
	// Wildcard subtree: *.wild plus two explicit names that shadow it.
	w := b.wildTop
	b.add(fmt.Sprintf("*.%s %d IN A 192.0.2.1", w, ttl))
	b.add(fmt.Sprintf("*.%s %d IN AAAA 2001:db8::1", w, ttl))
	b.add(fmt.Sprintf(`*.%s %d IN TXT "wildcard"`, w, ttl))
	addHost("www."+w, true, 1)
	addHost("static."+w, false, 2)

	// What is left: 10% CNAME owners (some in chains of 2), the rest hosts.
	left := cfg.Names - b.Owners
	nCNAME := cfg.Names / 10
	nChain := nCNAME / 50 // chains of 2 CNAMEs: alias -> alias-hop -> host
	nHosts := left - nCNAME
	i := 0
	nextName := func() string {
		for {
			i++
			p := prefixes[r.IntN(len(prefixes))]
			s := sites[r.IntN(len(sites))]
			name := fmt.Sprintf("%s%d.", p, i)
			if s != "" {
				name += s + "."
			}
			name += o
			if !b.exists[name] {
				return name
			}
		}
	}
	for h := 0; h < nHosts; h++ {
		name := nextName()
		switch x := r.IntN(100); {
		case x < 55: // A only
			addHost(name, false, 1)
		case x < 85: // A + AAAA
			addHost(name, true, 1)
		case x < 95: // round-robin: 2-4 A, and AAAA
			addHost(name, true, 2+r.IntN(3))
		default: // a mail host: A, MX, TXT
			addHost(name, false, 1)
			b.add(fmt.Sprintf("%s %d IN MX 10 %s", name, ttl, name))
			b.add(fmt.Sprintf(`%s %d IN TXT "v=spf1 a -all" "site=%d"`, name, ttl, h))
		}
	}
	target := func() string { return b.hosts[r.IntN(len(b.hosts))].name }
	for c := 0; c < nCNAME; {
		alias := nextName()
		if c < 2*nChain && c+1 < nCNAME {
			hop := nextName()
			b.add(fmt.Sprintf("%s %d IN CNAME %s", alias, ttl, hop))
			b.add(fmt.Sprintf("%s %d IN CNAME %s", hop, ttl, target()))
			b.cnames = append(b.cnames, alias, hop)
			c += 2
			continue
		}
		b.add(fmt.Sprintf("%s %d IN CNAME %s", alias, ttl, target()))
		b.cnames = append(b.cnames, alias)
		c++
	}
	if b.Owners != cfg.Names {
		panic(fmt.Sprintf("gen: built %d owners, want %d", b.Owners, cfg.Names))
	}
}

// draw returns one query of the given class.
func (b *Bench) draw(class string, r *rand.Rand) Query {
	q := Query{Class: class, Type: dns.TypeA}
	switch class {
	case ClassHit:
		h := b.hosts[r.IntN(len(b.hosts))]
		q.Name = h.name
		if h.hasAAAA && r.IntN(3) == 0 {
			q.Type = dns.TypeAAAA
		}
	case ClassCNAME:
		q.Name = b.cnames[r.IntN(len(b.cnames))]
		if r.IntN(4) == 0 {
			q.Type = dns.TypeAAAA
		}
	case ClassWildcard:
		for {
			q.Name = fmt.Sprintf("u%x.%s", r.Uint32(), b.wildTop)
			if r.IntN(5) == 0 { // deeper names match the wildcard too
				q.Name = fmt.Sprintf("v%d.%s", r.IntN(1000), q.Name)
			}
			if !b.exists[q.Name] {
				break
			}
		}
		switch x := r.IntN(10); {
		case x < 2:
			q.Type = dns.TypeAAAA
		case x < 3:
			q.Type = dns.TypeTXT
		}
	case ClassNX:
		for {
			// Mostly misses at the top level; some below a site label.
			p := prefixes[r.IntN(len(prefixes))]
			if s := sites[r.IntN(len(sites))]; s != "" {
				q.Name = fmt.Sprintf("%s-%x.%s.%s", p, r.Uint32(), s, b.origin())
			} else {
				q.Name = fmt.Sprintf("%s-%x.%s", p, r.Uint32(), b.origin())
			}
			if !b.exists[q.Name] {
				break
			}
		}
		if r.IntN(4) == 0 {
			q.Type = dns.TypeAAAA
		}
	}
	return q
}

func (b *Bench) origin() string { return strings.TrimPrefix(b.wildTop, "wild.") }

// classCounts splits n into per-class counts matching DefaultMix exactly
// (largest remainder).
func classCounts(n int) map[string]int {
	out := map[string]int{}
	sum := 0
	for _, c := range Classes {
		out[c] = int(float64(n) * DefaultMix[c])
		sum += out[c]
	}
	for i := 0; sum < n; i = (i + 1) % len(Classes) {
		out[Classes[i]]++
		sum++
	}
	return out
}

// drawQueries returns n queries with the exact class counts, shuffled. If
// seen is not nil, queries are distinct and recorded in it.
func (b *Bench) drawQueries(n int, r *rand.Rand, seen map[string]bool) []Query {
	counts := classCounts(n)
	qs := make([]Query, 0, n)
	for _, c := range Classes {
		for k := 0; k < counts[c]; k++ {
			q := b.draw(c, r)
			for tries := 0; seen != nil && seen[q.String()]; tries++ {
				if tries > 1000 {
					panic("gen: cannot draw enough distinct queries of class " + c)
				}
				q = b.draw(c, r)
			}
			if seen != nil {
				seen[q.String()] = true
			}
			qs = append(qs, q)
		}
	}
	r.Shuffle(len(qs), func(i, j int) { qs[i], qs[j] = qs[j], qs[i] })
	return qs
}

func (b *Bench) buildForwardQueries(cfg Config, r *rand.Rand) {
	set := b.drawQueries(cfg.Distinct, r, map[string]bool{})
	b.Queries = append(b.Queries, set...) // first pass: each query once
	for len(b.Queries) < cfg.Lines {
		pass := append([]Query(nil), set...)
		r.Shuffle(len(pass), func(i, j int) { pass[i], pass[j] = pass[j], pass[i] })
		b.Queries = append(b.Queries, pass...)
	}
}

func (b *Bench) buildChecks(cfg Config) {
	o := cfg.Origin
	b.Checks = []Check{
		{o, dns.TypeSOA, dns.RcodeSuccess},
		{"ns1." + o, dns.TypeA, dns.RcodeSuccess},
		{b.hosts[len(b.hosts)-1].name, dns.TypeA, dns.RcodeSuccess},
		{b.cnames[0], dns.TypeA, dns.RcodeSuccess},
		{"check-wildcard." + b.wildTop, dns.TypeA, dns.RcodeSuccess},
		{"no-such-name-check." + o, dns.TypeA, dns.RcodeNameError},
	}
	// One of each class from the query file itself.
	want := map[string]bool{}
	for _, q := range b.Queries {
		if !want[q.Class] {
			want[q.Class] = true
			rc := dns.RcodeSuccess
			if q.Class == ClassNX {
				rc = dns.RcodeNameError
			}
			b.Checks = append(b.Checks, Check{q.Name, q.Type, rc})
		}
	}
}

// WriteZone writes the zone in master-file format, sorted by owner name.
func (b *Bench) WriteZone(w io.Writer, origin string) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "; generated by hybridns test/bench/gen: %d owner names\n$ORIGIN %s\n$TTL %d\n", b.Owners, dns.Fqdn(origin), ttl)
	rrs := append([]dns.RR(nil), b.Zone...)
	// Apex first (SOA leading), then owner-name order; stable keeps each
	// owner's records in the order they were added.
	apex := dns.Fqdn(origin)
	key := func(rr dns.RR) string {
		if n := rr.Header().Name; n != apex {
			return "1" + n
		}
		return "0"
	}
	sort.SliceStable(rrs, func(i, j int) bool { return key(rrs[i]) < key(rrs[j]) })
	for _, rr := range rrs {
		fmt.Fprintln(bw, rr.String())
	}
	return bw.Flush()
}

// WriteQueries writes one "name TYPE" line per query (dnsperf format).
func (b *Bench) WriteQueries(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, q := range b.Queries {
		fmt.Fprintln(bw, q.String())
	}
	return bw.Flush()
}

// WriteChecks writes one "name TYPE RCODE" line per check (RCODE as dig
// prints it: NOERROR, NXDOMAIN).
func (b *Bench) WriteChecks(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, c := range b.Checks {
		fmt.Fprintf(bw, "%s %s %s\n", c.Name, dns.TypeToString[c.Type], dns.RcodeToString[c.Rcode])
	}
	return bw.Flush()
}

func writeFile(path string, f func(io.Writer) error) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func main() {
	mode := flag.String("mode", "auth", "auth, forward, miss (unique cache-miss queries), scale (a large zone) or wait (poll until answered)")
	origin := flag.String("origin", "bench.example.", "zone apex")
	names := flag.Int("names", 10000, "number of owner names in the zone")
	lines := flag.Int("lines", 50000, "minimum number of query lines")
	distinct := flag.Int("distinct", 5000, "forward mode: number of distinct queries")
	seed := flag.Uint64("seed", 1, "random seed")
	zone := flag.String("zone", "", "zone file to write (required)")
	queries := flag.String("queries", "", "dnsperf query file to write (required)")
	checks := flag.String("checks", "", "sanity-check file to write (optional)")
	count := flag.Int("count", 100000, "miss mode: number of query lines")
	tag := flag.String("tag", "", "miss mode: label that makes this file's names unique")
	records := flag.Int("records", 1000000, "scale mode: number of records in the zone")
	server := flag.String("server", "", "wait mode: server address (host:port)")
	qname := flag.String("qname", "", "wait mode: name to ask for (type A)")
	timeout := flag.Duration("timeout", 120*time.Second, "wait mode: give up after this long")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	switch *mode {
	case "miss", "scale", "wait":
		if err := runScale(*mode, *origin, *queries, *zone, *checks, *tag, *count, *records, *seed, *server, *qname, *timeout); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		return
	}
	if *zone == "" || *queries == "" {
		flag.Usage()
		os.Exit(2)
	}
	cfg := Config{Origin: *origin, Names: *names, Lines: *lines, Seed: *seed}
	switch *mode {
	case "auth":
	case "forward":
		cfg.Distinct = *distinct
	default:
		fmt.Fprintf(os.Stderr, "gen: unknown -mode %q\n", *mode)
		os.Exit(2)
	}
	b, err := Generate(cfg)
	if err == nil {
		err = writeFile(*zone, func(w io.Writer) error { return b.WriteZone(w, cfg.Origin) })
	}
	if err == nil {
		err = writeFile(*queries, b.WriteQueries)
	}
	if err == nil && *checks != "" {
		err = writeFile(*checks, b.WriteChecks)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
