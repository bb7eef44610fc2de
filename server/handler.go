package server

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// maxCrossChase bounds how many further CNAME hops a recursive answer follows
// after leaving a zone (into other zones or the forwarder).
const maxCrossChase = 8

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if r.Opcode == dns.OpcodeUpdate {
		s.serveUpdate(w, r)
		return
	}
	if isTransfer(r) { // AXFR, IXFR (xfr.go)
		s.serveTransfer(w, r)
		return
	}
	start := time.Now()
	s.stats.Queries.Add(1)
	var m *dns.Msg
	var c client
	key, terr := s.tsigVerdict(w, r)
	if terr != dns.RcodeSuccess {
		m, c = s.replyTo(r), client{path: pathError}
		m.Rcode = dns.RcodeNotAuth
	} else {
		m, c = s.answer(w, r)
	}
	s.scrub(w, r, m)
	if r.IsTsig() != nil {
		// RFC 8945: a signed request gets a signed answer (or the TSIG
		// error, unsigned for BADKEY and BADSIG).
		signReply(m, r, key, terr)
	}
	if s.rrl != nil {
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			switch s.rrl.Check(remoteIP(w), RRLKindOf(m.Rcode), start) {
			case RRLDrop:
				s.stats.RRLLimited.Add(1)
				return
			case RRLSlip:
				s.stats.RRLLimited.Add(1)
				s.stats.RRLSlipped.Add(1)
				m.Truncated = true
				m.Answer, m.Ns, m.Extra = nil, nil, appendExtra(nil, m.Extra)
			}
		}
	}
	if c.path == pathForwarded && !r.RecursionDesired {
		c.path = pathCache
	}
	if m.Rcode == dns.RcodeRefused {
		c.path = pathRefused
	} else if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError && c.path != pathForwarded {
		c.path = pathError
	}
	d := time.Since(start)
	s.metrics.observe(c.viewIdx, c.path, m.Rcode, r.Question[0].Qtype, d)
	if s.cfg.QueryLogSample > 0 {
		if c.addr == (netip.Addr{}) {
			c.addr = remoteIP(w)
		}
		s.logQuery(c.addr, r.Question[0].Name, r.Question[0].Qtype, m.Rcode, c.path, d)
	}
	if err := w.WriteMsg(m); err != nil {
		s.stats.WriteErrors.Add(1)
		s.log.Debug("write reply", slog.String("client", w.RemoteAddr().String()), slog.Any("err", err))
	}
}

func remoteIP(w dns.ResponseWriter) netip.Addr {
	var ip netip.Addr
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	}
	return ip.Unmap()
}

// client is what the handler knows about the sender of one query.
type client struct {
	addr    netip.Addr
	view    string
	viewIdx int // for metrics: 0 is the default view
	recurse bool
	path    int     // for metrics: how the query was answered
	pol     *policy // the policy in force for this query
}

func (s *Server) client(w dns.ResponseWriter) client {
	c := client{addr: remoteIP(w), pol: s.pol.Load()}
	c.view, c.viewIdx = c.pol.viewOf(c.addr)
	c.recurse = c.pol.fwd != nil && contains(c.pol.recurse, c.addr)
	return c
}

// viewOf returns the view whose networks hold addr most specifically.
func (p *policy) viewOf(addr netip.Addr) (string, int) {
	best, idx, bits := zonestore.DefaultView, 0, -1
	for i, v := range p.views {
		for _, pfx := range v.Clients {
			if pfx.Bits() > bits && pfx.Contains(addr) {
				best, idx, bits = v.Name, p.viewIdx[i], pfx.Bits()
			}
		}
	}
	return best, idx
}

func contains(ps []netip.Prefix, addr netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// answer builds the reply to r, or returns nil to send nothing.
func (s *Server) answer(w dns.ResponseWriter, r *dns.Msg) (*dns.Msg, client) {
	c := client{path: pathError}
	m := s.replyTo(r)

	// EDNS (RFC 6891): one OPT at most, version 0 only.
	var opt *dns.OPT
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil {
				s.stats.FormErr.Add(1)
				m.Rcode = dns.RcodeFormatError
				return m, c
			}
			opt = o
		}
	}
	if opt != nil {
		m.SetEdns0(s.cfg.UDPSize, opt.Do())
		if opt.Version() != 0 {
			m.Rcode = dns.RcodeBadVers
			return m, c
		}
	}
	q := r.Question[0]
	if q.Qclass != dns.ClassINET {
		s.stats.Refused.Add(1)
		m.Rcode = dns.RcodeRefused
		return m, c
	}
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeMAILA, dns.TypeMAILB:
		// Zone transfers are not served (yet); meta types are not queries.
		s.stats.Refused.Add(1)
		m.Rcode = dns.RcodeRefused
		if q.Qtype == dns.TypeOPT {
			m.Rcode = dns.RcodeFormatError
		}
		return m, c
	}

	c = s.client(w)
	qname := strings.ToLower(q.Name)
	snap := s.cfg.Store.Load()
	z := c.pol.zoneFor(snap, c.view, qname)
	if z != nil && q.Qtype == dns.TypeDS && qname == z.Origin() && qname != "." {
		// DS belongs to the parent side of a cut (RFC 4035 §3.1.4.1): when
		// we also serve the parent, it answers.
		if off, end := dns.NextLabel(qname, 0); !end {
			if parent := c.pol.zoneFor(snap, c.view, qname[off:]); parent != nil {
				z = parent
			}
		}
	}
	if z != nil {
		s.stats.Authoritative.Add(1)
		c.path = pathAuthoritative
		s.authoritative(m, r, c, snap, z, qname, q.Qtype)
		return m, c
	}
	c.path = pathForwarded
	s.forward(m, r, c)
	return m, c
}

// replyTo starts the reply to r: its ID, opcode, RD/CD and question (the
// client's case, echoed: RFC 1035 §7.3 / 0x20), and an OPT when r had one.
func (s *Server) replyTo(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.CheckingDisabled = r.CheckingDisabled
	m.Question = r.Question
	return m
}

// zoneFor returns the zone that answers qname, or nil when a forwarding rule
// is more specific than every zone holding the name (a rule for
// onprem.corp.example. beats the zone corp.example.; the zone beats a rule
// for example.).
func (p *policy) zoneFor(snap *zonestore.Snapshot, view, qname string) *zonestore.Zone {
	z := snap.Find(view, qname)
	if z == nil || p.fwd == nil {
		return z
	}
	if suffix, ok := p.fwd.Match(qname); ok && len(suffix) > len(z.Origin()) {
		return nil
	}
	return z
}

// authoritative fills m from zone z and, for a recursive client, follows a
// CNAME chain that leaves the zone.
func (s *Server) authoritative(m, r *dns.Msg, c client, snap *zonestore.Snapshot, z *zonestore.Zone, qname string, qtype uint16) {
	cl := c.pol.routing
	cl.Addr = c.addr
	res := z.LookupFor(qname, qtype, &cl)
	if res.Alias != "" {
		s.aliasOut(m, r, c, snap, res.Alias, qname, qtype)
		return
	}
	m.RecursionAvailable = c.recurse
	// AA describes the first owner in the answer: a CNAME of ours that
	// leads into a delegation is still authoritative data.
	m.Authoritative = res.Kind != zonestore.Referral || len(res.Answer) > 0
	m.Answer, m.Ns, m.Extra = res.Answer, res.Ns, appendExtra(res.Extra, m.Extra)
	switch res.Kind {
	case zonestore.NXDomain:
		m.Rcode = dns.RcodeNameError
	case zonestore.YXDomain:
		m.Rcode = dns.RcodeYXDomain
	}
	if res.Chase == "" || !c.recurse || !r.RecursionDesired {
		return
	}
	// We are this client's resolver: finish the chain as the VPC resolver
	// would, through other zones and the forwarder.
	answer := append([]dns.RR(nil), res.Answer...)
	target := res.Chase
	for hop := 0; hop < maxCrossChase; hop++ {
		if seenName(answer, target) {
			break // a loop across zones: the chain so far is the answer
		}
		var next []dns.RR
		if z2 := c.pol.zoneFor(snap, c.view, target); z2 != nil {
			cl := c.pol.routing
			cl.Addr = c.addr
			res2 := z2.LookupFor(target, qtype, &cl)
			next, m.Ns = res2.Answer, res2.Ns
			m.Rcode = dns.RcodeSuccess
			if res2.Kind == zonestore.NXDomain {
				m.Rcode = dns.RcodeNameError
			}
			if res2.Alias != "" {
				// The chain reaches an alias to an outside resource.
				rrs, ok := s.resolveAlias(r, c, snap, res2.Alias, target, qtype)
				if !ok {
					m.Rcode = dns.RcodeServerFailure
					m.Answer = answer
					return
				}
				next, target = rrs, ""
			} else {
				target = res2.Chase
			}
		} else {
			m.Authoritative = false
			resp, ok := s.resolveTarget(c.pol.fwd, r, target, qtype)
			if !ok {
				m.Rcode = dns.RcodeServerFailure
				m.Answer = answer
				return
			}
			next, m.Ns, m.Rcode = resp.Answer, resp.Ns, resp.Rcode
			target = ""
			if n := len(next); n > 0 {
				if cn, ok := next[n-1].(*dns.CNAME); ok && qtype != dns.TypeCNAME {
					target = strings.ToLower(cn.Target)
				}
			}
			if target != "" && c.pol.zoneFor(snap, c.view, target) == nil {
				target = "" // the upstream already chased what it could
			}
		}
		answer = append(answer, next...)
		if target == "" {
			break
		}
	}
	m.Answer = answer
	m.Extra = appendExtra(nil, m.Extra)
}

// aliasOut answers an alias to a resource outside the zone (a load
// balancer, CloudFront): the target's records of the query type, resolved
// now through our zones or the forwarder, re-owned under the alias name
// with the target's TTL. It is authoritative data whoever asks: the lookup
// is ours, not the client's recursion.
func (s *Server) aliasOut(m, r *dns.Msg, c client, snap *zonestore.Snapshot, target, qname string, qtype uint16) {
	m.Authoritative = true
	m.RecursionAvailable = c.recurse
	rrs, ok := s.resolveAlias(r, c, snap, target, qname, qtype)
	if !ok {
		m.Rcode = dns.RcodeServerFailure
		return
	}
	m.Answer = rrs
	if len(m.Answer) == 0 {
		if z := snap.Find(c.view, qname); z != nil {
			m.Ns = []dns.RR{z.NegativeSOA()}
		}
	}
}

// resolveAlias resolves an alias's outside target for qtype — through our
// zones or the forwarder — and returns its records re-owned under owner.
// ok is false when the target could not be resolved.
func (s *Server) resolveAlias(r *dns.Msg, c client, snap *zonestore.Snapshot, target, owner string, qtype uint16) ([]dns.RR, bool) {
	var answer []dns.RR
	var rcode int
	if z := c.pol.zoneFor(snap, c.view, target); z != nil {
		cl := c.pol.routing
		cl.Addr = c.addr
		res := z.LookupFor(target, qtype, &cl)
		answer, rcode = res.Answer, dns.RcodeSuccess
	} else if c.pol.fwd != nil {
		resp, ok := s.resolveTarget(c.pol.fwd, r, target, qtype)
		if !ok {
			return nil, false
		}
		answer, rcode = resp.Answer, resp.Rcode
	} else {
		s.log.Warn("alias to an outside resource but no forwarder to resolve it", slog.String("name", owner), slog.String("target", target))
		return nil, false
	}
	if rcode != dns.RcodeSuccess && rcode != dns.RcodeNameError {
		return nil, false
	}
	var out []dns.RR
	for _, rr := range answer {
		if rr.Header().Rrtype != qtype {
			continue // the target's CNAME chain: only its end is ours to give
		}
		c := dns.Copy(rr)
		c.Header().Name = owner
		out = append(out, c)
	}
	return out, true
}

// resolveTarget asks the forwarder for name/qtype on behalf of r's client.
func (s *Server) resolveTarget(fwd Forwarder, r *dns.Msg, name string, qtype uint16) (*dns.Msg, bool) {
	sub := new(dns.Msg)
	sub.SetQuestion(name, qtype)
	sub.RecursionDesired = true
	sub.CheckingDisabled = r.CheckingDisabled
	if o := r.IsEdns0(); o != nil {
		sub.SetEdns0(s.cfg.UDPSize, o.Do())
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.QueryTimeout)
	defer cancel()
	resp, err := fwd.Resolve(ctx, sub)
	if err != nil {
		s.log.Debug("resolve cname target", slog.String("name", name), slog.Any("err", err))
		return nil, false
	}
	return resp, true
}

func seenName(rrs []dns.RR, name string) bool {
	for _, rr := range rrs {
		if strings.EqualFold(rr.Header().Name, name) {
			return true
		}
	}
	return false
}

// forward answers a name no zone holds: through the forwarder for clients
// allowed to recurse, from the cache for RD=0 queries, REFUSED otherwise.
func (s *Server) forward(m, r *dns.Msg, c client) {
	f := c.pol.fwd
	if f == nil || !c.recurse {
		s.stats.Refused.Add(1)
		m.Rcode = dns.RcodeRefused
		return
	}
	m.RecursionAvailable = true
	if f.IsLoop(r) {
		s.stats.Loops.Add(1)
		s.log.Error("forwarding loop: received our own forwarded query", slog.String("name", r.Question[0].Name), slog.String("client", c.addr.String()))
		m.Rcode = dns.RcodeServerFailure
		return
	}
	var resp *dns.Msg
	if !r.RecursionDesired {
		// As BIND: a non-recursive query for a forwarded name gets what the
		// cache holds, else REFUSED.
		cached, ok := f.CacheOnly(r)
		if !ok {
			s.stats.Refused.Add(1)
			m.Rcode = dns.RcodeRefused
			return
		}
		resp = cached
	} else {
		ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.QueryTimeout)
		defer cancel()
		var err error
		resp, err = f.Resolve(ctx, r)
		if err != nil {
			s.stats.ServFail.Add(1)
			s.log.Debug("forward", slog.String("name", r.Question[0].Name), slog.Any("err", err))
			m.Rcode = dns.RcodeServerFailure
			return
		}
	}
	s.stats.Forwarded.Add(1)
	m.Rcode = resp.Rcode
	m.Authoritative = false
	m.AuthenticatedData = resp.AuthenticatedData
	m.Answer, m.Ns = resp.Answer, resp.Ns
	m.Extra = appendExtra(resp.Extra, m.Extra)
}

// appendExtra returns extra (without any OPT, which is ours to set) followed
// by the OPT records of ours; it never writes into extra's backing array,
// which may belong to a zone.
func appendExtra(extra, ours []dns.RR) []dns.RR {
	var opt dns.RR
	for _, rr := range ours {
		if rr.Header().Rrtype == dns.TypeOPT {
			opt = rr
		}
	}
	n := 0
	for _, rr := range extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			n++
		}
	}
	if opt == nil && n == len(extra) {
		return extra
	}
	out := make([]dns.RR, 0, n+1)
	for _, rr := range extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	if opt != nil {
		out = append(out, opt)
	}
	return out
}

// scrub fits m to the client's buffer: over UDP at most the client's EDNS
// size (512 without EDNS) capped at ours. Additional records are dropped
// first without TC; if the answer or authority does not fit, the reply goes
// out empty with TC set so the client retries over TCP, as BIND does.
func (s *Server) scrub(w dns.ResponseWriter, r, m *dns.Msg) {
	size := dns.MaxMsgSize
	if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		size = dns.MinMsgSize
		if o := r.IsEdns0(); o != nil {
			size = max(int(o.UDPSize()), dns.MinMsgSize)
			size = min(size, s.udpSize)
		}
	}
	m.Compress = true
	if m.Len() <= size {
		return
	}
	var opt []dns.RR
	var extra []dns.RR
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			opt = append(opt, rr)
		} else {
			extra = append(extra, rr)
		}
	}
	m.Extra = opt
	if m.Len() <= size {
		// Keep as much additional data as fits.
		for i := range extra {
			m.Extra = append(append([]dns.RR(nil), extra[:i+1]...), opt...)
			if m.Len() > size {
				m.Extra = append(append([]dns.RR(nil), extra[:i]...), opt...)
				break
			}
		}
		return
	}
	s.stats.Truncated.Add(1)
	m.Truncated = true
	m.Answer, m.Ns, m.Extra = nil, nil, opt
}
