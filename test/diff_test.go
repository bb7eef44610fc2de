// Differential test: the zones in testdata/diff are served by hybridns and by
// BIND 9 (the reference) on loopback, and every query of the corpus below
// must get the same answer from both. TestDiffBINDvsKnot runs the same corpus
// against Knot DNS: it checks that the corpus only asserts what the two
// reference implementations agree on.
//
// What is compared, for every case (no case is skipped):
//   - the question section, echoed with the query's exact case by each server
//     (checked on each server separately);
//   - rcode, AA, TC, and whether an OPT record (and DO) comes back;
//   - the answer section: RRs sorted in text form, owner names and domain
//     names inside RDATA compared case-insensitively, TTLs exactly (nothing
//     decrements them: both servers serve the same file);
//   - the authority section when either answer is negative (NXDOMAIN, or an
//     SOA in authority: NODATA) or a referral (NS in authority and no
//     record of the type asked for in the answer: also after a CNAME);
//   - the A/AAAA records of the additional section (glue) for referrals.
//
// What is not compared, on purpose:
//   - the message ID (checked against the query instead), RA;
//   - the authority section of positive answers: a server may add the
//     zone's NS there (BIND does by default; it runs here with
//     minimal-responses no-auth, Knot never does): RFC 1034 §4.3.2 step 6;
//   - the additional section of non-referrals (MX/SRV/NS target addresses):
//     optional data; differences are only logged;
//   - for ANY queries only rcode and AA: RFC 8482 lets a server answer ANY
//     with a subset (Knot returns one RRset, BIND the whole node);
//   - when both servers set TC, the (possibly partial) sections (BIND fills
//     the answer with what fits, Knot sends it empty).
//
// Cases where BIND and Knot legitimately differ are marked with .only(...)
// in the corpus and compare only what they agree on; see the comments there.
//
// Run:
//
//	go test ./test/ -run TestDiff -v
//	DIFF_DUMP=1 go test ./test/ -run TestDiffBINDvsKnot -v   # log every response pair
//
// named (Debian package bind9) and knotd (package knot) must be installed:
// the tests fail, they do not skip, without them.
package test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/test/refserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	refserver.CleanupBuild()
	os.Exit(code)
}

// part is one thing compared between two responses.
type part uint16

const (
	pRcode part = 1 << iota
	pAA
	pTC
	pEDNS      // OPT present in the response iff in the query, DO echoed
	pAnswer    // the answer section
	pAuthority // the authority section, for negative answers and referrals
	pGlue      // additional A/AAAA, for referrals

	pAll   = pRcode | pAA | pTC | pEDNS | pAnswer | pAuthority | pGlue
	pFlags = pRcode | pAA // what is compared for ANY (RFC 8482)
)

// qcase is one query of the corpus.
type qcase struct {
	name    string // subtest name
	qname   string // sent exactly like this (case preserved)
	qtype   uint16
	edns    bool
	bufsize uint16 // EDNS UDP payload size advertised; 1232 when zero
	do      bool
	rd      bool
	tcp     bool
	// cmp is the parts compared, pAll when zero. It is narrower only where
	// the RFCs allow several answers (ANY) or where BIND and Knot
	// legitimately differ: the corpus asserts only what both references
	// agree on, and the comment next to such a case says why.
	cmp part
}

const origin = "diff.example."

// q builds a case. name is relative to diff.example. unless it ends in a dot;
// opts is a space-separated list of: edns, do (implies edns), rd, tcp,
// bufsize=N (implies edns).
func q(name, qtype, opts string) qcase {
	c := qcase{qname: name}
	if !strings.HasSuffix(name, ".") {
		if name == "@" {
			c.qname = origin
		} else {
			c.qname = name + "." + origin
		}
	}
	t, ok := dns.StringToType[qtype]
	if !ok {
		panic("unknown type " + qtype)
	}
	c.qtype = t
	for _, o := range strings.Fields(opts) {
		switch {
		case o == "edns":
			c.edns = true
		case o == "do":
			c.edns, c.do = true, true
		case o == "rd":
			c.rd = true
		case o == "tcp":
			c.tcp = true
		case strings.HasPrefix(o, "bufsize="):
			var n uint16
			if _, err := fmt.Sscanf(o, "bufsize=%d", &n); err != nil {
				panic(o)
			}
			c.edns, c.bufsize = true, n
		default:
			panic("unknown option " + o)
		}
	}
	c.name = name
	if name != "." {
		c.name = strings.TrimSuffix(name, ".")
	}
	c.name += "/" + qtype
	if opts != "" {
		c.name += "/" + strings.ReplaceAll(opts, " ", "+")
	}
	return c
}

func (c qcase) only(cmp part) qcase { c.cmp = cmp; return c }

// corpus is the list of queries. Each line says which RFC 1034 §4.3.2 /
// RFC 4592 case it exercises.
var corpus = []qcase{
	// Apex data.
	q("@", "SOA", "edns"),
	q("@", "NS", "edns"),
	q("@", "MX", "edns"), // one target in zone (additional), one outside
	q("@", "TXT", ""),
	q("@", "AAAA", "edns"), // NODATA at the apex
	q("@", "DS", "edns"),   // no parent zone served: NODATA from the zone itself

	// Plain hits, multi-record RRsets, misses.
	q("www", "A", "edns"), // three records, TTL 600
	q("www", "AAAA", ""),
	q("www", "MX", "edns"),  // NODATA
	q("www", "CAA", "edns"), // NODATA, a type the zone never uses
	q("ns2", "AAAA", "edns"),
	q("mail", "A", ""),
	q("mixed", "A", "edns"), // the file spells the owner MiXeD
	q("nothere", "A", "edns"),
	q("deep.below.nothere", "A", ""), // NXDOMAIN several labels down
	q("multi", "TXT", "edns"),        // several strings per record, two records
	q("_sip._tcp", "SRV", "edns"),    // targets: one in zone, one outside
	q("_tcp", "SRV", "edns"),         // empty non-terminal: NODATA

	// CNAMEs.
	q("alias", "A", "edns"),
	q("alias", "AAAA", ""),
	q("alias", "CNAME", "edns"), // the CNAME itself, no chasing
	q("alias", "MX", "edns"),    // CNAME, then NODATA at the target
	q("chain1", "A", "edns"),    // three hops
	q("chain2", "AAAA", ""),
	// loop1 -> loop2 -> loop1. Both references answer with the two CNAMEs
	// and AA, but BIND sets SERVFAIL (max. restarts reached, with an EDE)
	// while Knot says NOERROR: the rcode is not compared.
	q("loop1", "A", "edns").only(pAll &^ pRcode),
	q("external", "A", "edns"), // target outside every zone: CNAME only
	q("dangling", "A", "edns"), // target NXDOMAIN: rcode NXDOMAIN (RFC 6604)
	// The target is in the nested zone, served by the same server. Neither
	// reference chases a CNAME into another zone: both answer with the CNAME
	// alone, AA=1. Knot adds, in authority, the parent's delegation to the
	// child (with glue), as for todeleg below; BIND leaves authority empty.
	// Both are acceptable: authority and glue are not compared.
	q("tochild", "A", "edns").only(pAll &^ (pAuthority | pGlue)),
	q("todeleg", "A", "edns"), // target below a delegation

	// Wildcards (RFC 4592).
	q("a.wild", "A", "edns"),    // one label below *.wild
	q("a.wild", "TXT", "edns"),  //
	q("a.b.wild", "A", "edns"),  // two labels below
	q("a.wild", "MX", "edns"),   // NODATA at a synthesized name
	q("*.wild", "A", "edns"),    // the wildcard owner asked literally
	q("explicit.wild", "A", ""), // existing name
	q("explicit.wild", "TXT", "edns"),
	q("x.explicit.wild", "A", "edns"), // below an existing name: no *.explicit.wild
	q("ent.wild", "A", "edns"),        // empty non-terminal blocks the wildcard: NODATA
	q("x.ent.wild", "A", "edns"),      // below it: NXDOMAIN
	q("sub.*.wild", "A", "edns"),      // name below the wildcard (RFC 4592 §2.2.1)
	q("x.*.wild", "A", "edns"),        // closest encloser *.wild, no *.*.wild: NXDOMAIN
	q("wild", "A", "edns"),            // empty non-terminal parent of the wildcard
	q("foo.cwild", "A", "edns"),       // wildcard CNAME, chased
	q("foo.cwild", "CNAME", "edns"),
	q("a.b.cwild", "AAAA", ""),

	// Empty non-terminals.
	q("ent", "A", "edns"),
	q("b.ent", "TXT", ""),
	q("a.b.ent", "A", "edns"),
	q("x.b.ent", "A", "edns"),

	// A large RRset (40 A records: 674 octets).
	q("big", "A", ""),             // UDP, no EDNS: TC=1
	q("big", "A", "edns"),         // fits in 1232
	q("big", "A", "tcp"),          // whole over TCP
	q("big", "A", "bufsize=512"),  // EDNS but 512: TC=1
	q("big", "A", "bufsize=4096"), // servers cap at their own size: fits

	// A delegation with in-bailiwick glue and one out-of-bailiwick NS.
	q("host.deleg", "A", "edns"),
	q("deep.host.deleg", "AAAA", ""),
	q("deleg", "NS", "edns"), // referral, not an authoritative answer
	q("deleg", "A", "edns"),
	q("deleg", "DS", "edns"),    // the parent's side: NODATA, AA=1
	q("ns1.deleg", "A", "edns"), // glue is not authoritative data: referral
	q("deleg", "SOA", ""),

	// The nested zone child.diff.example., served by the same server.
	q("child", "SOA", "edns"),
	q("child", "NS", "edns"),
	q("child", "DS", "edns"), // the parent's side even though the child is served
	q("www.child", "A", "edns"),
	q("nx.child", "A", "edns"), // NXDOMAIN with the child's SOA
	q("child", "MX", "edns"),
	q("back.child", "A", "edns"), // CNAME back into the parent zone
	q("foo.wc.child", "TXT", "edns"),
	q("ns1.child", "A", ""),

	// Mixed-case query names: the question is echoed as sent.
	q("WwW.DiFf.ExAmPlE.", "A", "edns"),
	q("FOO.WILD.DIFF.EXAMPLE.", "TXT", "edns"),
	q("ALIAS.Diff.Example.", "A", "edns"),
	q("NoThErE.diff.example.", "A", "edns"),
	q("HoSt.DeLeG.diff.example.", "A", "edns"),
	q("WWW.CHILD.DIFF.EXAMPLE.", "A", ""),

	// ANY (RFC 8482): only rcode and AA are compared, see the file comment.
	q("www", "ANY", "edns").only(pFlags),
	q("@", "ANY", "tcp").only(pFlags),
	q("nothere", "ANY", "edns").only(pFlags),

	// Outside every zone: REFUSED (recursion is off).
	q("www.other.test.", "A", "edns"),
	q("example.", "SOA", "edns"), // the parent of a served zone
	q(".", "NS", ""),
	q("www.other.test.", "A", "rd"),

	// DNAME (RFC 6672): the DNAME, the synthesized CNAME, and the chase.
	q("x.dn", "A", "edns"),
	q("X.Dn", "A", ""),
	q("nope.dn", "A", "edns"),
	q("dn", "DNAME", "edns"),
	q("dn", "A", "edns"),
	q("a.b.dnout", "A", "edns"),
	q("x.dn", "A", "tcp"),

	// Header and transport variants.
	q("www", "A", "rd"),
	q("www", "A", "do"),
	q("nothere", "A", "do"),
	q("www", "A", "tcp"),
	q("nothere", "A", "tcp edns"),
	q("host.deleg", "A", "tcp edns"),
	q("a.wild", "A", "rd edns"),
	q("dangling", "A", "tcp"),
}

func TestCorpusSize(t *testing.T) {
	if len(corpus) < 60 {
		t.Fatalf("corpus has %d queries, want at least 60", len(corpus))
	}
	seen := map[string]bool{}
	for _, c := range corpus {
		if seen[c.name] {
			t.Errorf("duplicate case %s", c.name)
		}
		seen[c.name] = true
	}
}

func zoneDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "diff"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// refZones lists the zones of testdata/diff as (origin, file) pairs.
func refZones(t *testing.T, dir string) []refserver.Zone {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.zone"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no zone files in %s (%v)", dir, err)
	}
	var zs []refserver.Zone
	for _, f := range files {
		zs = append(zs, refserver.Zone{Origin: strings.TrimSuffix(filepath.Base(f), ".zone"), File: f})
	}
	return zs
}

func TestDiffBINDvsHybridns(t *testing.T) {
	dir := zoneDir(t)
	bin := refserver.BuildHybridns(t) // fails clearly while ./cmd/hybridns is missing
	bind := refserver.StartNamed(t, refZones(t, dir))
	// hybridns gets its own copy of the zone directory, holding only the
	// zone files, so that nothing it might write lands in testdata.
	hdir := t.TempDir()
	for _, z := range refZones(t, dir) {
		b, err := os.ReadFile(z.File)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(hdir, filepath.Base(z.File)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hyb := refserver.StartHybridns(t, bin, hdir)
	runCorpus(t, bind, hyb)
}

func TestDiffBINDvsKnot(t *testing.T) {
	zs := refZones(t, zoneDir(t))
	bind := refserver.StartNamed(t, zs)
	knot := refserver.StartKnot(t, zs)
	runCorpus(t, bind, knot)
}

func runCorpus(t *testing.T, ref, other *refserver.Server) {
	for _, c := range corpus {
		t.Run(c.name, func(t *testing.T) {
			want := c.cmp
			if want == 0 {
				want = pAll
			}
			a, aerr := exchange(ref.Addr, c)
			b, berr := exchange(other.Addr, c)
			if aerr != nil || berr != nil {
				t.Fatalf("%s %s %s: exchange failed\n--- %s ---\n%s\n--- %s ---\n%s",
					c.qname, dns.TypeToString[c.qtype], c.optString(),
					ref.Name, result(a, aerr), other.Name, result(b, berr))
			}
			var diffs []string
			diffs = append(diffs, checkQuestion(ref.Name, c, a)...)
			diffs = append(diffs, checkQuestion(other.Name, c, b)...)
			d, notes := compare(c, want, a, b)
			diffs = append(diffs, d...)
			for _, n := range notes {
				t.Logf("note (not compared): %s", n)
			}
			if os.Getenv("DIFF_DUMP") != "" {
				t.Logf("--- %s ---\n%s\n--- %s ---\n%s", ref.Name, a, other.Name, b)
			}
			if len(diffs) > 0 {
				t.Errorf("%s %s %s: %d difference(s):\n  - %s\n--- %s (reference) ---\n%s\n--- %s ---\n%s",
					c.qname, dns.TypeToString[c.qtype], c.optString(), len(diffs),
					strings.Join(diffs, "\n  - "), ref.Name, a, other.Name, b)
			}
		})
	}
}

func result(m *dns.Msg, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return m.String()
}

func (c qcase) optString() string {
	var s []string
	if c.tcp {
		s = append(s, "TCP")
	} else {
		s = append(s, "UDP")
	}
	if c.edns {
		s = append(s, fmt.Sprintf("EDNS(%d)", c.size()))
	} else {
		s = append(s, "no-EDNS")
	}
	if c.do {
		s = append(s, "DO")
	}
	if c.rd {
		s = append(s, "RD")
	}
	return strings.Join(s, " ")
}

func (c qcase) size() uint16 {
	if c.bufsize != 0 {
		return c.bufsize
	}
	return 1232
}

func (c qcase) msg() *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(c.qname, c.qtype) // keeps the name's case
	m.RecursionDesired = c.rd
	if c.edns {
		m.SetEdns0(c.size(), c.do)
	}
	return m
}

// exchange sends the case's query. Over UDP it reads into a 64 KiB buffer so
// that an oversized response is seen and reported rather than cut.
func exchange(addr string, c qcase) (*dns.Msg, error) {
	m := c.msg()
	if c.tcp {
		cl := &dns.Client{Net: "tcp", Timeout: 3 * time.Second}
		r, _, err := cl.Exchange(m, addr)
		return r, err
	}
	wire, err := m.Pack()
	if err != nil {
		return nil, err
	}
	limit := dns.MinMsgSize
	if c.edns && int(c.size()) > limit {
		limit = int(c.size())
	}
	var lastErr error
	for try := 0; try < 3; try++ { // loopback UDP: a retry only on timeout
		r, err := udpOnce(addr, wire, m.Id)
		if err == nil {
			if r.n > limit {
				return nil, fmt.Errorf("UDP response of %d octets exceeds the %d the query allows", r.n, limit)
			}
			return r.msg, nil
		}
		lastErr = err
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			break
		}
	}
	return nil, lastErr
}

type udpResp struct {
	msg *dns.Msg
	n   int
}

func udpOnce(addr string, wire []byte, id uint16) (udpResp, error) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return udpResp{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write(wire); err != nil {
		return udpResp{}, err
	}
	buf := make([]byte, 65535)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return udpResp{}, err
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			return udpResp{}, fmt.Errorf("unpacking a %d-octet response: %v", n, err)
		}
		if r.Id != id {
			continue // a stray datagram
		}
		return udpResp{r, n}, nil
	}
}

// checkQuestion asserts the server echoed the question with the exact case
// of the query, and answered as a response with the query's opcode.
func checkQuestion(server string, c qcase, r *dns.Msg) []string {
	var d []string
	if !r.Response {
		d = append(d, server+": QR not set")
	}
	if r.Opcode != dns.OpcodeQuery {
		d = append(d, fmt.Sprintf("%s: opcode %d", server, r.Opcode))
	}
	if len(r.Question) != 1 {
		return append(d, fmt.Sprintf("%s: %d questions echoed, want 1", server, len(r.Question)))
	}
	got := r.Question[0]
	if got.Name != c.qname || got.Qtype != c.qtype || got.Qclass != dns.ClassINET {
		d = append(d, fmt.Sprintf("%s: question echoed as %q %s %s, want %q %s IN (case preserved)",
			server, got.Name, dns.TypeToString[got.Qtype], dns.ClassToString[got.Qclass], c.qname, dns.TypeToString[c.qtype]))
	}
	return d
}

// compare returns the differences between a (reference) and b in the given
// parts, and notes on the differences in what is not compared.
func compare(c qcase, want part, a, b *dns.Msg) (diffs, notes []string) {
	add := func(p part, format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		if want&p != 0 {
			diffs = append(diffs, s)
		} else {
			notes = append(notes, s)
		}
	}
	if a.Rcode != b.Rcode {
		add(pRcode, "rcode: %s vs %s", dns.RcodeToString[a.Rcode], dns.RcodeToString[b.Rcode])
	}
	if a.Authoritative != b.Authoritative {
		add(pAA, "AA: %v vs %v", a.Authoritative, b.Authoritative)
	}
	if a.Truncated != b.Truncated {
		add(pTC, "TC: %v vs %v", a.Truncated, b.Truncated)
	}
	if ea, eb := ednsString(a), ednsString(b); ea != eb {
		add(pEDNS, "EDNS: %s vs %s", ea, eb)
	}
	if a.Truncated && b.Truncated {
		return diffs, notes // the sections of a truncated response may be partial
	}
	if d := diffSection(a.Answer, b.Answer, nil); d != "" {
		add(pAnswer, "answer section:%s", d)
	}
	negative := isNegative(a) || isNegative(b)
	referral := isReferral(a, c.qtype) || isReferral(b, c.qtype)
	if d := diffSection(a.Ns, b.Ns, nil); d != "" {
		if negative || referral {
			add(pAuthority, "authority section (negative/referral):%s", d)
		} else {
			notes = append(notes, "authority section of a positive answer:"+d)
		}
	}
	if d := diffSection(a.Extra, b.Extra, addressOnly); d != "" {
		if referral {
			add(pGlue, "glue in the additional section:%s", d)
		} else {
			notes = append(notes, "additional A/AAAA of a non-referral:"+d)
		}
	}
	return diffs, notes
}

func ednsString(m *dns.Msg) string {
	o := m.IsEdns0()
	if o == nil {
		return "no OPT"
	}
	return fmt.Sprintf("OPT(version %d, DO=%v)", o.Version(), o.Do())
}

// isNegative: NXDOMAIN, or an SOA in authority (NODATA, also after a CNAME).
func isNegative(m *dns.Msg) bool {
	if m.Rcode == dns.RcodeNameError {
		return true
	}
	for _, rr := range m.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			return true
		}
	}
	return false
}

// isReferral: NOERROR, NS records and no SOA in authority, and no record of
// the type asked for in the answer: a referral, possibly after CNAMEs (then
// with AA=1, as both BIND and Knot answer "todeleg"). NS records next to a
// complete answer are not a referral.
func isReferral(m *dns.Msg, qtype uint16) bool {
	if m.Rcode != dns.RcodeSuccess {
		return false
	}
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == qtype {
			return false
		}
	}
	ns := false
	for _, rr := range m.Ns {
		switch rr.Header().Rrtype {
		case dns.TypeSOA:
			return false
		case dns.TypeNS:
			ns = true
		}
	}
	return ns
}

func addressOnly(rr dns.RR) bool {
	t := rr.Header().Rrtype
	return t == dns.TypeA || t == dns.TypeAAAA
}

// diffSection compares two sections as sorted multisets of normalized text
// RRs (OPT excluded), and describes what only one side has.
func diffSection(a, b []dns.RR, keep func(dns.RR) bool) string {
	na, nb := normSection(a, keep), normSection(b, keep)
	count := map[string]int{}
	for _, s := range na {
		count[s]++
	}
	for _, s := range nb {
		count[s]--
	}
	var onlyA, onlyB []string
	for _, s := range na {
		if count[s] > 0 {
			onlyA = append(onlyA, s)
			count[s]--
		}
	}
	for _, s := range nb {
		if count[s] < 0 {
			onlyB = append(onlyB, s)
			count[s]++
		}
	}
	if len(onlyA) == 0 && len(onlyB) == 0 {
		return ""
	}
	var sb strings.Builder
	for _, s := range onlyA {
		sb.WriteString("\n      - reference only: " + s)
	}
	for _, s := range onlyB {
		sb.WriteString("\n      + other only:     " + s)
	}
	return sb.String()
}

func normSection(rrs []dns.RR, keep func(dns.RR) bool) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT || (keep != nil && !keep(rr)) {
			continue
		}
		out = append(out, normRR(rr))
	}
	sort.Strings(out)
	return out
}

// normRR is the text form of rr with every domain name lower-cased: owner
// names and names inside RDATA compare case-insensitively (RFC 4343).
func normRR(rr dns.RR) string {
	rr = dns.Copy(rr)
	h := rr.Header()
	h.Name = strings.ToLower(h.Name)
	switch v := rr.(type) {
	case *dns.CNAME:
		v.Target = strings.ToLower(v.Target)
	case *dns.DNAME:
		v.Target = strings.ToLower(v.Target)
	case *dns.NS:
		v.Ns = strings.ToLower(v.Ns)
	case *dns.PTR:
		v.Ptr = strings.ToLower(v.Ptr)
	case *dns.MX:
		v.Mx = strings.ToLower(v.Mx)
	case *dns.SRV:
		v.Target = strings.ToLower(v.Target)
	case *dns.SOA:
		v.Ns = strings.ToLower(v.Ns)
		v.Mbox = strings.ToLower(v.Mbox)
	}
	return rr.String()
}
