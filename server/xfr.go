package server

import (
	"iter"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// Zone transfers out: AXFR (RFC 5936) and IXFR (RFC 1995), streamed from
// one immutable zone version, under transfer rules.

// AnyView in a TransferRule covers every view.
const AnyView = "*"

// TransferRule allows zone transfers (and sends NOTIFY). Every condition
// given must hold: a key from Keys signed the request AND the client is in
// Networks (Knot's ACL semantics). View says whose zones: "" the default
// view's (public) zones, a view name that view's zones (its private ones
// and the public ones it sees), AnyView every view's. A key bound to a view
// picks that view; otherwise the rule's view, or for AnyView the client's.
type TransferRule struct {
	Keys     []string // canonical TSIG key names; empty: no key needed
	Networks []netip.Prefix
	View     string
	Notify   []string // host:port to NOTIFY on every new version
	// NotifyNS also notifies the zone's NS hosts (port 53) whose
	// addresses we serve ourselves; Route 53's awsdns-* name servers are
	// never notified.
	NotifyNS bool
}

// xfrMaxMsg bounds the records' uncompressed size per transfer message,
// well below the 64 KiB a TCP DNS message may hold (compression only
// shrinks it, TSIG adds little).
const xfrMaxMsg = 32 << 10

// isTransfer tells ServeDNS which queries serveTransfer answers: AXFR and
// IXFR, and any query carrying an authority section (only IXFR may).
func isTransfer(r *dns.Msg) bool {
	if r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 {
		return false
	}
	t := r.Question[0].Qtype
	return t == dns.TypeAXFR || t == dns.TypeIXFR || len(r.Ns) > 0
}

// serveTransfer answers an AXFR or IXFR query.
func (s *Server) serveTransfer(w dns.ResponseWriter, r *dns.Msg) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("zone transfer panicked", slog.Any("panic", p))
		}
	}()
	start := time.Now()
	s.stats.Queries.Add(1)
	q := r.Question[0]
	qname := strings.ToLower(q.Name)
	var kind string // "": not a transfer (a query with an authority section)
	switch q.Qtype {
	case dns.TypeAXFR:
		kind = "axfr"
	case dns.TypeIXFR:
		kind = "ixfr"
	}
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	key, terr := s.tsigVerdict(w, r)
	signed := r.IsTsig() != nil
	fail := func(rcode int, result string) {
		m := s.reply(r, rcode) // the one reply builder (OPT included)
		if signed {
			signReply(m, r, key, terr)
		}
		if rcode == dns.RcodeRefused {
			s.stats.Refused.Add(1)
		}
		if kind != "" {
			s.xfrMetrics.transfer(qname, kind, result)
		}
		if err := w.WriteMsg(m); err != nil {
			s.stats.WriteErrors.Add(1)
		}
	}
	switch {
	case terr != dns.RcodeSuccess:
		fail(dns.RcodeNotAuth, "notauth")
		return
	case q.Qtype != dns.TypeAXFR && q.Qtype != dns.TypeIXFR:
		// An authority section in a query that is not IXFR.
		s.stats.FormErr.Add(1)
		fail(dns.RcodeFormatError, "formerr")
		return
	case q.Qclass != dns.ClassINET:
		fail(dns.RcodeRefused, "refused")
		return
	case q.Qtype == dns.TypeAXFR && udp:
		// RFC 5936 §4.2: AXFR is TCP only.
		fail(dns.RcodeRefused, "refused")
		return
	}
	var clientSerial uint32
	if q.Qtype == dns.TypeIXFR {
		soa, ok := ixfrSOA(r)
		if !ok {
			s.stats.FormErr.Add(1)
			fail(dns.RcodeFormatError, "formerr")
			return
		}
		clientSerial = soa.Serial
	}
	addr := remoteIP(w)
	pol := s.pol.Load()
	snap := s.cfg.Store.Load()
	var k *TSIGKey
	if signed {
		k = &key
	}
	z, view, ok := pol.transferZone(snap, addr, k, qname)
	if !ok {
		s.log.Info("zone transfer refused", slog.String("zone", qname), slog.String("kind", kind), slog.String("client", addr.String()), slog.String("key", key.Name))
		fail(dns.RcodeRefused, "refused")
		return
	}
	if !z.Available() {
		// Ours, but without data (never loaded, expired): as BIND, SERVFAIL.
		fail(dns.RcodeServerFailure, "unavailable")
		return
	}
	// A full transfer streams from the zone (one message's records decoded
	// at a time); the other answers are short lists.
	var rrs iter.Seq[dns.RR]
	whole := func(yield func(dns.RR) bool) { // the zone, then its SOA again
		for rr := range z.All() {
			if !yield(rr) {
				return
			}
		}
		yield(z.SOA())
	}
	switch {
	case q.Qtype == dns.TypeAXFR:
		rrs = whole
	case !zonestore.SerialLess(clientSerial, z.Serial()):
		// The client is current (or ahead): one SOA says so.
		kind, rrs = "ixfr-current", slices.Values([]dns.RR{z.SOA()})
	case udp:
		// RFC 1995 §2: over UDP, the current SOA tells the client to retry over TCP.
		kind, rrs = "ixfr-udp", slices.Values([]dns.RR{z.SOA()})
	default:
		var changes []*zonestore.Change
		if s.cfg.Journal != nil {
			changes, ok = s.cfg.Journal.Since(view, z.Origin(), clientSerial, z.Serial())
		} else {
			ok = false
		}
		if ok {
			rrs = slices.Values(ixfrRecords(z.SOA(), changes))
		} else {
			kind, rrs = "ixfr-axfr", whole
		}
	}
	n, records, err := s.streamTransfer(w, r, rrs, key, signed)
	if err != nil {
		s.xfrMetrics.transfer(qname, kind, "error")
		s.log.Warn("zone transfer failed", slog.String("zone", qname), slog.String("kind", kind), slog.String("client", addr.String()), slog.Any("err", err))
		return
	}
	s.xfrMetrics.transfer(qname, kind, "ok")
	s.log.Info("zone transfer", slog.String("zone", qname), slog.String("kind", kind), slog.Uint64("serial", uint64(z.Serial())),
		slog.String("client", addr.String()), slog.String("key", key.Name), slog.Int("messages", n), slog.Int("records", records),
		slog.Duration("took", time.Since(start)))
}

// ixfrSOA returns the client's SOA from an IXFR query's authority section.
func ixfrSOA(r *dns.Msg) (*dns.SOA, bool) {
	if len(r.Ns) != 1 {
		return nil, false
	}
	soa, ok := r.Ns[0].(*dns.SOA)
	if !ok || !strings.EqualFold(soa.Hdr.Name, r.Question[0].Name) {
		return nil, false
	}
	return soa, true
}

// ixfrRecords lays changes out as RFC 1995 §4 says: the current SOA, then
// per version the old SOA, the deleted records, the new SOA, the added
// records, and the current SOA at the end.
func ixfrRecords(cur *dns.SOA, changes []*zonestore.Change) []dns.RR {
	n := 2
	for _, c := range changes {
		n += 2 + len(c.Deleted) + len(c.Added)
	}
	out := make([]dns.RR, 0, n)
	out = append(out, cur)
	for _, c := range changes {
		out = append(out, c.From)
		out = append(out, c.Deleted...)
		out = append(out, c.To)
		out = append(out, c.Added...)
	}
	return append(out, cur)
}

// streamTransfer writes rrs in as many messages as it takes: the question
// and the OPT only in the first, AA on all, compression on, TSIG on every
// message (the later ones with timers only, RFC 8945 §5.3.1). It returns
// the number of messages and records sent.
func (s *Server) streamTransfer(w dns.ResponseWriter, r *dns.Msg, rrs iter.Seq[dns.RR], key TSIGKey, signed bool) (sent, records int, err error) {
	var t *dns.TSIG
	if signed {
		t = r.IsTsig()
	}
	var batch []dns.RR
	send := func() error {
		m := new(dns.Msg)
		m.Id, m.Response, m.Opcode, m.Authoritative = r.Id, true, r.Opcode, true
		m.Compress = true
		if sent == 0 {
			m.Question = r.Question
			if o := r.IsEdns0(); o != nil {
				m.SetEdns0(s.cfg.UDPSize, false)
			}
		}
		m.Answer = batch
		if t != nil {
			alg := key.Algorithm
			if alg == "" {
				alg = t.Algorithm
			}
			m.SetTsig(t.Hdr.Name, alg, 300, time.Now().Unix())
		}
		// WriteMsg packs before it returns: batch may be reused after.
		if err := w.WriteMsg(m); err != nil {
			return err
		}
		sent++
		records += len(batch)
		batch = batch[:0]
		if t != nil {
			w.TsigTimersOnly(true)
		}
		return nil
	}
	size := 0
	for rr := range rrs {
		l := dns.Len(rr)
		if len(batch) > 0 && size+l > xfrMaxMsg {
			if err = send(); err != nil {
				return sent, records, err
			}
			size = 0
		}
		batch = append(batch, rr)
		size += l
	}
	if len(batch) > 0 || sent == 0 {
		err = send()
	}
	return sent, records, err
}

// transferZone finds the zone qname (exactly) that a rule lets this client
// transfer, and the view of the store whose journal holds it. key is the
// request's verified TSIG key, nil when unsigned.
func (p *policy) transferZone(snap *zonestore.Snapshot, addr netip.Addr, key *TSIGKey, qname string) (*zonestore.Zone, string, bool) {
	clientView, _ := p.viewOf(addr)
	for _, rule := range p.transfer {
		if len(rule.Keys) > 0 && (key == nil || !slices.Contains(rule.Keys, key.Name)) {
			continue
		}
		if len(rule.Networks) > 0 && !contains(rule.Networks, addr) {
			continue
		}
		if rule.View == AnyView && len(rule.Keys) > 0 && key != nil {
			// The fleet feed (catalog and fleet zones) for followers.
			if z := snap.Zone(zonestore.FleetView, qname); z != nil {
				return z, zonestore.FleetView, true
			}
			if zonestore.InZone(qname, zonestore.FleetSuffix) || qname == p.catalogName {
				// A fleet zone or the fleet catalog not (yet) fed: a view's
				// catalog of the same name must not stand in for it (a
				// follower would take it, and the serials may even agree).
				continue
			}
		}
		view, ok := rule.viewFor(key, clientView)
		if !ok {
			continue
		}
		z, home := findExact(snap, view, qname)
		if z == nil {
			continue
		}
		if home != zonestore.DefaultView && (key == nil || len(rule.Keys) == 0) {
			// A private zone moves only under its view's key.
			continue
		}
		return z, home, true
	}
	return nil, "", false
}

// viewFor returns the view a transfer under r serves: the view the key is
// bound to, else the rule's, else (AnyView) the client's.
func (r *TransferRule) viewFor(key *TSIGKey, clientView string) (string, bool) {
	if key != nil && key.View != "" {
		if r.View != AnyView && r.View != key.View {
			return "", false
		}
		return key.View, true
	}
	if r.View == AnyView {
		return clientView, true
	}
	return r.View, true
}

// covers reports whether the rule hands out zone origin of storeView as
// seen in snap (for NOTIFY): the zone is visible in the rule's view.
func (r *TransferRule) covers(snap *zonestore.Snapshot, storeView, origin string) bool {
	if r.View == AnyView {
		return true // every view's zones, and the fleet feed when the rule has keys
	}
	if storeView == zonestore.FleetView {
		return false
	}
	_, home := findExact(snap, r.View, origin)
	return home == storeView && (storeView == zonestore.DefaultView || len(r.Keys) > 0)
}

// findExact returns the zone named exactly origin that view's clients see,
// and the store view that holds it (view itself for its own zones, the
// default view for public ones).
func findExact(snap *zonestore.Snapshot, view, origin string) (*zonestore.Zone, string) {
	if z := snap.Zone(view, origin); z != nil {
		return z, view
	}
	if z := snap.Zone(zonestore.DefaultView, origin); z != nil {
		return z, zonestore.DefaultView
	}
	return nil, ""
}

// fleetSOA answers a follower's refresh check — a signed SOA query for a
// zone of the hidden fleet view — under the rule that lets it transfer
// that zone; nil for any other query (the fleet view answers no one else).
func (s *Server) fleetSOA(w dns.ResponseWriter, r *dns.Msg, key TSIGKey) *dns.Msg {
	q := r.Question[0]
	if q.Qtype != dns.TypeSOA || r.IsTsig() == nil {
		return nil
	}
	qname := strings.ToLower(q.Name)
	snap := s.cfg.Store.Load()
	if snap.Zone(zonestore.FleetView, qname) == nil {
		return nil
	}
	z, view, ok := s.pol.Load().transferZone(snap, remoteIP(w), &key, qname)
	if !ok || view != zonestore.FleetView || !z.Available() {
		return nil
	}
	m := s.reply(r, dns.RcodeSuccess)
	m.Authoritative = true
	m.Answer = []dns.RR{z.SOA()}
	return m
}
