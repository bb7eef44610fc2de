package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// maxCrossChase bounds how many further CNAME hops a recursive answer follows
// after leaving a zone (into other zones or the forwarder).
const maxCrossChase = 8

// ServeDNS implements dns.Handler. Every way a query reaches the handler —
// miekg's TCP server, the UDP slow path, tests — passes through here, and a
// panic anywhere below is recovered: logged, counted
// (hybridns_panics_total) and answered SERVFAIL, never fatal to the process.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	start := time.Now()
	wrote := false
	defer func() {
		if p := recover(); p != nil {
			s.panicked(p, "handler")
			if !wrote && r != nil {
				wrote = true
				s.writeError(w, r, dns.RcodeServerFailure)
			}
		}
	}()
	if r == nil {
		return
	}
	// The message's shape is checked here too, not only by the listeners'
	// parser: the handler must never index past what it was given.
	switch rc := msgShape(r); rc {
	case rcodeAccept:
	case rcodeDrop:
		return
	default:
		wrote = true
		s.writeError(w, r, rc)
		return
	}
	if isTransfer(r) { // AXFR, IXFR (xfr.go)
		wrote = true
		s.serveTransfer(w, r)
		return
	}
	if r.Opcode == dns.OpcodeQuery && isHealthProbe(r) {
		wrote = true
		_ = w.WriteMsg(s.reply(r, dns.RcodeSuccess)) // alive; not a client query
		return
	}
	s.stats.Queries.Add(1)
	var m *dns.Msg
	var c client
	switch r.Opcode {
	case dns.OpcodeQuery:
	case dns.OpcodeUpdate:
		wrote = true
		s.serveUpdate(w, r)
		return
	case dns.OpcodeNotify:
		wrote = true
		s.serveNotify(w, r)
		return
	default: // msgShape lets through only the opcodes routed here
		wrote = true
		s.writeError(w, r, dns.RcodeNotImplemented)
		return
	}
	key, terr := s.tsigVerdict(w, r)
	if terr != dns.RcodeSuccess {
		m, c = s.reply(r, dns.RcodeNotAuth), client{path: pathError}
	} else if fm := s.fleetSOA(w, r, key); fm != nil {
		m, c = fm, client{path: pathAuthoritative}
	} else {
		m, c = s.answer(w, r)
	}
	s.scrub(w, r, m)
	signed := r.IsTsig() != nil
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
	if signed {
		// RFC 8945: a signed request gets a signed answer (or the TSIG
		// error, unsigned for BADKEY and BADSIG); scrub left room for it.
		signReply(m, r, key, terr)
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
	if s.queryLogSample() > 0 {
		if c.addr == (netip.Addr{}) {
			c.addr = remoteIP(w)
		}
		s.logQuery(c.addr, r.Question[0].Name, r.Question[0].Qtype, m.Rcode, c.path, d)
	}
	wrote = true
	if err := w.WriteMsg(m); err != nil {
		s.stats.WriteErrors.Add(1)
		s.log.Debug("write reply", slog.String("client", w.RemoteAddr().String()), slog.Any("err", err))
	}
}

// writeError sends the error reply rcode to r, built by reply like every
// other reply of ours.
func (s *Server) writeError(w dns.ResponseWriter, r *dns.Msg, rcode int) {
	switch rcode {
	case dns.RcodeFormatError, dns.RcodeNotImplemented:
		s.stats.FormErr.Add(1)
	case dns.RcodeServerFailure:
		s.stats.ServFail.Add(1)
	}
	if err := w.WriteMsg(s.reply(r, rcode)); err != nil {
		s.stats.WriteErrors.Add(1)
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
	path    int        // for metrics: how the query was answered
	pol     *policy    // the policy in force for this query
	miss    *missState // the fetch the UDP path started for this query, if any
	tcp     bool       // the query came over TCP (or TLS): no TC retry after this
}

func (s *Server) client(w dns.ResponseWriter) client {
	c := client{addr: remoteIP(w), pol: s.pol.Load()}
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	c.tcp = !udp
	c.view, c.viewIdx = c.pol.viewOf(c.addr)
	c.recurse = c.pol.fwd != nil && contains(c.pol.recurse, c.addr)
	return c
}

// keyView puts c in the view its request's TSIG key is bound to, if any
// (BIND's match-clients { key …; }); the caller has verified the TSIG.
func (c *client) keyView(r *dns.Msg) {
	t := r.IsTsig()
	if t == nil {
		return
	}
	k, ok := c.pol.keys[dns.CanonicalName(t.Hdr.Name)]
	if !ok || k.View == "" {
		return
	}
	for i, v := range c.pol.views {
		if v.Name == k.View {
			c.view, c.viewIdx = v.Name, c.pol.viewIdx[i]
			return
		}
	}
	c.view = k.View
}

// viewOf returns the view whose networks hold addr most specifically.
func (p *policy) viewOf(addr netip.Addr) (string, int) {
	if i := p.viewPos(addr); i >= 0 {
		return p.views[i].Name, p.viewIdx[i]
	}
	return zonestore.DefaultView, 0
}

// viewPos is the position in p.views of addr's view, -1 for the default.
// As BIND's match-clients: the first view, in config order, one of whose
// networks holds addr.
func (p *policy) viewPos(addr netip.Addr) int {
	for i, v := range p.views {
		if contains(v.Clients, addr) {
			return i
		}
	}
	return -1
}

// queryRefused: addr's view has an allow_query that does not hold it.
func (p *policy) queryRefused(addr netip.Addr) bool {
	i := p.viewPos(addr)
	return i >= 0 && p.views[i].AllowQuery != nil && !contains(p.views[i].AllowQuery, addr)
}

func contains(ps []netip.Prefix, addr netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// answer builds the reply to a QUERY whose shape msgShape accepted.
func (s *Server) answer(w dns.ResponseWriter, r *dns.Msg) (*dns.Msg, client) {
	c := client{path: pathError}
	m := s.reply(r, dns.RcodeSuccess)
	// EDNS (RFC 6891): version 0 only.
	if opt := soleOPT(r); opt != nil && opt.Version() != 0 {
		m.Rcode = dns.RcodeBadVers
		return m, c
	}
	q := r.Question[0]
	switch q.Qclass {
	case dns.ClassINET:
	case 0, dns.ClassNONE, dns.ClassANY:
		// Not a class a query asks in (0 is reserved; UPDATE uses NONE
		// and ANY): FORMERR, as BIND.
		m.Rcode = dns.RcodeFormatError
		return m, c
	default:
		s.stats.Refused.Add(1)
		m.Rcode = dns.RcodeRefused
		return m, c
	}
	c = s.client(w)
	if uw, ok := w.(*udpWriter); ok {
		c.miss = uw.miss
	}
	c.keyView(r)
	c.path = pathError
	if c.pol.queryRefused(c.addr) {
		s.stats.Refused.Add(1)
		m.Rcode = dns.RcodeRefused
		return m, c
	}
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeMAILA, dns.TypeMAILB:
		// Zone transfers are not served (yet); meta types are not
		// queries (FORMERR); MAILA/MAILB are obsolete (NOTIMP), as BIND.
		m.RecursionAvailable = c.recurse
		switch q.Qtype {
		case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY:
			m.Rcode = dns.RcodeFormatError
		case dns.TypeMAILA, dns.TypeMAILB:
			m.Rcode = dns.RcodeNotImplemented
		default:
			s.stats.Refused.Add(1)
			m.Rcode = dns.RcodeRefused
		}
		return m, c
	}
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
	s.forward(m, r, c, snap, qname, q.Qtype)
	return m, c
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

// decide is the one place that maps a lookup in one of our zones to the
// reply header — rcode, AA, RA — for the fast path, the handler and the
// cross-zone chase alike. AA describes the first owner in the answer: a
// CNAME of ours that leads into a delegation is still authoritative data,
// a bare referral is not. RA tells whether this client may recurse.
func decide(kind zonestore.Kind, answers int, recurse bool) (rcode int, aa, ra bool) {
	switch kind {
	case zonestore.NXDomain:
		rcode = dns.RcodeNameError
	case zonestore.YXDomain:
		rcode = dns.RcodeYXDomain
	case zonestore.ServFail:
		// A zone of ours without data (never loaded, expired): claimed,
		// so SERVFAIL, never someone else's answer; not authoritative.
		return dns.RcodeServerFailure, false, recurse
	}
	return rcode, kind != zonestore.Referral || answers > 0, recurse
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
	m.Rcode, m.Authoritative, m.RecursionAvailable = decide(res.Kind, len(res.Answer), c.recurse)
	m.Answer, m.Ns, m.Extra = res.Answer, res.Ns, appendExtra(res.Extra, m.Extra)
	if res.Chase == "" || !c.recurse || !r.RecursionDesired {
		return
	}
	// We are this client's resolver: finish the chain as the VPC resolver
	// would, through other zones and the forwarder.
	s.chase(m, r, c, snap, append([]dns.RR(nil), res.Answer...), res.Chase, qtype, true)
}

// chase continues a CNAME chain whose records so far are answer, from
// target, through our zones and (when mayForward) the forwarder, and fills
// m's sections and rcode with the outcome. Each hop into one of our zones
// is decided by decide, so its rcode (NXDOMAIN, YXDOMAIN) and a referral's
// NS and glue reach the client; upstream data never stands for a name we
// serve (cutAtOurs). m.Authoritative keeps describing the first owner,
// cleared once the forwarder contributes.
func (s *Server) chase(m, r *dns.Msg, c client, snap *zonestore.Snapshot, answer []dns.RR, target string, qtype uint16, mayForward bool) {
	var extra []dns.RR
	for hop := 0; hop < maxCrossChase && target != ""; hop++ {
		if seenName(answer, target) {
			break // a loop across zones: the chain so far is the answer
		}
		var next []dns.RR
		if z2 := c.pol.zoneFor(snap, c.view, target); z2 != nil {
			cl := c.pol.routing
			cl.Addr = c.addr
			res2 := z2.LookupFor(target, qtype, &cl)
			next, m.Ns, extra = res2.Answer, res2.Ns, res2.Extra
			m.Rcode, _, _ = decide(res2.Kind, len(res2.Answer), c.recurse)
			if res2.Alias != "" {
				// The chain reaches an alias to an outside resource.
				rrs, ok := s.resolveAlias(r, c, snap, res2.Alias, target, qtype)
				if !ok {
					m.Rcode = dns.RcodeServerFailure
					m.Answer, m.Ns = answer, nil
					m.Extra = appendExtra(nil, m.Extra)
					return
				}
				next, target, m.Ns, extra = rrs, "", nil, nil
			} else {
				target = res2.Chase
			}
		} else {
			if !mayForward || c.pol.fwd == nil {
				break // the chain ends at a name we cannot resolve for this client
			}
			m.Authoritative = false
			resp, ok := s.resolveTarget(c.pol.fwd, r, target, qtype)
			if !ok {
				m.Rcode = dns.RcodeServerFailure
				m.Answer, m.Ns = answer, nil
				m.Extra = appendExtra(nil, m.Extra)
				return
			}
			next, m.Ns, m.Rcode, extra = resp.Answer, resp.Ns, resp.Rcode, nil
			asked := target
			target = ""
			if kept, cut := s.cutAtOurs(c, snap, asked, qtype, next); cut != "" {
				// The upstream's chain enters a zone of ours: its data
				// stops there and, for an answer, ours takes over (a
				// failure stays one).
				next, m.Ns = kept, nil
				if okRcode(resp.Rcode) {
					target, m.Rcode = cut, dns.RcodeSuccess
				}
			}
		}
		answer = append(answer, next...)
	}
	m.Answer = answer
	m.Extra = appendExtra(extra, m.Extra)
}

// okRcode: an upstream rcode that carries an answer (NOERROR, NXDOMAIN).
func okRcode(rcode int) bool {
	return rcode == dns.RcodeSuccess || rcode == dns.RcodeNameError
}

// cutAtOurs follows the CNAME chain of an upstream answer from name and,
// at the first CNAME whose target is a name we serve for this client,
// cuts it: it returns the chain's records up to that CNAME (with the DNAMEs
// that synthesized them) and the target, for the caller to continue from
// our own zone. An upstream's records for our names are never relayed
// (the bailiwick rule: we are the authority for them). When the chain never
// enters our zones, answer comes back unchanged with target "".
func (s *Server) cutAtOurs(c client, snap *zonestore.Snapshot, name string, qtype uint16, answer []dns.RR) ([]dns.RR, string) {
	if qtype == dns.TypeCNAME || name == "" {
		return answer, ""
	}
	cur := strings.ToLower(name)
	visited := []string{cur}
	for range len(answer) {
		var cn *dns.CNAME
		for _, rr := range answer {
			if x, ok := rr.(*dns.CNAME); ok && strings.EqualFold(x.Hdr.Name, cur) {
				cn = x
				break
			}
		}
		if cn == nil {
			return answer, ""
		}
		next := strings.ToLower(dns.Fqdn(cn.Target))
		if c.pol.zoneFor(snap, c.view, next) != nil {
			var kept []dns.RR
			for _, rr := range answer {
				owner := strings.ToLower(rr.Header().Name)
				switch rr.Header().Rrtype {
				case dns.TypeCNAME, dns.TypeRRSIG:
					if slices.Contains(visited, owner) {
						kept = append(kept, rr)
					}
				case dns.TypeDNAME:
					for _, v := range visited {
						if v != owner && dns.IsSubDomain(owner, v) {
							kept = append(kept, rr)
							break
						}
					}
				}
			}
			return kept, next
		}
		if slices.Contains(visited, next) {
			return answer, "" // a loop in the upstream's data: not ours to fix
		}
		visited = append(visited, next)
		cur = next
	}
	return answer, ""
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
		if z := snap.Find(c.view, qname); z != nil && z.Available() {
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
// The sub-query carries r's loop markers (the EDNS option forwarders add),
// so a chain that runs through another instance and back is recognized as
// a loop at once instead of waiting out the timeout.
func (s *Server) resolveTarget(fwd Forwarder, r *dns.Msg, name string, qtype uint16) (*dns.Msg, bool) {
	sub := new(dns.Msg)
	sub.SetQuestion(name, qtype)
	sub.RecursionDesired = true
	sub.CheckingDisabled = r.CheckingDisabled
	if o := soleOPT(r); o != nil {
		sub.SetEdns0(s.cfg.UDPSize, o.Do())
		so := sub.IsEdns0()
		for _, e := range o.Option {
			if e.Option() == loopOptionCode {
				so.Option = append(so.Option, e)
			}
		}
	}
	if fwd.IsLoop(sub) {
		s.stats.Loops.Add(1)
		s.log.Error("forwarding loop: a CNAME chain came back to us", slog.String("name", name))
		return nil, false
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
// allowed to recurse, from the cache for RD=0 queries, REFUSED otherwise —
// also for a client that may recurse when no forwarding rule covers the
// name (as BIND with forward zones and no general recursion).
func (s *Server) forward(m, r *dns.Msg, c client, snap *zonestore.Snapshot, qname string, qtype uint16) {
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
	if _, ok := f.Match(qname); !ok {
		s.stats.Refused.Add(1)
		m.Rcode = dns.RcodeRefused
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
		var err error
		if mw, ok := f.(MissWire); ok && c.miss != nil && c.miss.miss != nil {
			// serveMiss started this query's fetch: finish it (with the
			// deadline it had from arrival) rather than fetch again.
			ctx, cancel := context.WithDeadline(s.baseCtx, c.miss.deadline)
			defer cancel()
			resp, err = mw.ResolveMiss(ctx, r, c.miss.miss)
		} else {
			ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.QueryTimeout)
			defer cancel()
			resp, err = f.Resolve(ctx, r)
		}
		if err != nil {
			s.stats.ServFail.Add(1)
			s.log.Debug("forward", slog.String("name", r.Question[0].Name), slog.Any("err", err))
			m.Rcode = dns.RcodeServerFailure
			return
		}
	}
	s.stats.Forwarded.Add(1)
	m.Authoritative = false
	if kept, cut := s.cutAtOurs(c, snap, qname, qtype, resp.Answer); cut != "" {
		// The upstream's chain enters a zone we serve for this client:
		// its records for our names are dropped and, for an answer, the
		// chain goes on from our own data (a failure stays one).
		m.Rcode = resp.Rcode
		m.Answer = kept
		m.Extra = appendExtra(nil, m.Extra)
		if okRcode(resp.Rcode) {
			m.Rcode = dns.RcodeSuccess
			s.chase(m, r, c, snap, kept, cut, qtype, r.RecursionDesired)
		}
		return
	}
	if resp.Truncated {
		// The upstream's answer did not fit in UDP and the forwarder's TCP
		// retry failed. A UDP client is told so (TC) and retries over TCP,
		// which tries the upstream over TCP again; over TCP nothing bigger
		// can come, so it is a failure, as Unbound answers.
		if c.tcp {
			s.stats.ServFail.Add(1)
			m.Rcode = dns.RcodeServerFailure
			return
		}
		m.Truncated = true
	}
	m.Rcode = resp.Rcode
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
	if t := r.IsTsig(); t != nil {
		// Our TSIG goes on after this: the request's, with room for a
		// longer MAC and BADTIME's other data.
		size -= dns.Len(t) + 64
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

// Verdicts of msgShape and checkQuery besides an error rcode.
const (
	rcodeAccept = -1 // serve it
	rcodeDrop   = -2 // send nothing (a response, or not even a header)
)

// msgShape is the handler's check of an unpacked message: what it may
// serve, what gets an error rcode, what is dropped. It is the one place
// that routes opcodes: to serve another one (UPDATE), add its case here
// and in ServeDNS's switch.
func msgShape(r *dns.Msg) int {
	if r.Response {
		return rcodeDrop // never answer a response: no reflection
	}
	switch r.Opcode {
	case dns.OpcodeQuery:
		if len(r.Question) != 1 || len(r.Answer) > 0 || len(r.Ns) > 1 || len(r.Extra) > 2 {
			return dns.RcodeFormatError
		}
		if len(r.Ns) == 1 && r.Question[0].Qtype != dns.TypeIXFR {
			return dns.RcodeFormatError // only an IXFR carries an authority record
		}
		if !ednsShapeOK(r) {
			return dns.RcodeFormatError
		}
		return rcodeAccept
	case dns.OpcodeUpdate, dns.OpcodeNotify:
		// RFC 2136 §3.1.1 / RFC 1996 §3.7: one zone (question); the other
		// sections in any number (prerequisites, updates, TSIG).
		if len(r.Question) != 1 || !ednsShapeOK(r) {
			return dns.RcodeFormatError
		}
		return rcodeAccept
	}
	return dns.RcodeNotImplemented
}

// ednsShapeOK: at most one OPT, owned by the root (RFC 6891 §6.1.1).
func ednsShapeOK(r *dns.Msg) bool {
	n := 0
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			n++
			if n > 1 || o.Hdr.Name != "." {
				return false
			}
		}
	}
	return true
}

// soleOPT returns r's OPT when it has exactly one well-formed OPT (only
// then does a reply carry ours).
func soleOPT(r *dns.Msg) *dns.OPT {
	var opt *dns.OPT
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil || o.Hdr.Name != "." {
				return nil
			}
			opt = o
		}
	}
	return opt
}

// reply starts every reply the full handler sends, whatever the transport
// and rcode, so error replies are never the request rewritten in place:
// the id and opcode of r, QR; for QUERY the RD and CD bits and the question
// as asked (the client's spelling, RFC 1035 §7.3); never TC, RA, AD or Z
// from the request (other opcodes get QR alone, as BIND answers them); and
// our OPT, DO echoed, whenever r carried a well-formed one (RFC 6891 §7),
// errors included.
func (s *Server) reply(r *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.Rcode = rcode
	switch r.Opcode {
	case dns.OpcodeQuery:
		m.RecursionDesired = r.RecursionDesired
		m.CheckingDisabled = r.CheckingDisabled
		if len(r.Question) == 1 {
			m.Question = r.Question
		}
	case dns.OpcodeUpdate, dns.OpcodeNotify:
		// The zone section is echoed (RFC 2136 §3.8, RFC 1996 §4.7), as
		// BIND does.
		if len(r.Question) == 1 {
			m.Question = r.Question
		}
	}
	if o := soleOPT(r); o != nil {
		m.SetEdns0(s.cfg.UDPSize, o.Do())
		s.addNSID(m, o)
	}
	return m
}

// checkQuery is the one parser verdict for UDP and TCP alike (the UDP fast
// path answers only packets it accepts; FuzzFastPath holds it to that). It
// returns the request and rcodeAccept, rcodeDrop, or an error rcode with
// what of the request an error reply may echo: the header, the question
// when it was read whole, the OPT when it was well-formed. As BIND: a
// missing or cut question, a question without type or class, counts that
// disagree with the sections, a cut or overlong EDNS option, a second OPT
// or one not owned by the root all get FORMERR; an opcode we do not
// implement gets NOTIMP; a response gets nothing.
func checkQuery(pkt []byte) (*dns.Msg, int) {
	if len(pkt) < 12 {
		return nil, rcodeDrop // not even a header: any reply could amplify
	}
	hdr := dns.Header{
		Id:      binary.BigEndian.Uint16(pkt),
		Bits:    binary.BigEndian.Uint16(pkt[2:]),
		Qdcount: binary.BigEndian.Uint16(pkt[4:]),
		Ancount: binary.BigEndian.Uint16(pkt[6:]),
		Nscount: binary.BigEndian.Uint16(pkt[8:]),
		Arcount: binary.BigEndian.Uint16(pkt[10:]),
	}
	action := acceptQuery(hdr)
	if action == dns.MsgIgnore {
		return nil, rcodeDrop
	}
	// What an error reply may echo.
	echo := new(dns.Msg)
	echo.Id = hdr.Id
	echo.Opcode = int(hdr.Bits>>11) & 0xF
	echo.RecursionDesired = hdr.Bits&(1<<8) != 0
	echo.CheckingDisabled = hdr.Bits&(1<<4) != 0

	req := new(dns.Msg)
	err := req.Unpack(pkt)
	// The question is read first: an error further on still echoes it.
	qok := hdr.Qdcount == 1 && len(req.Question) == 1 && questionComplete(pkt)
	countsOK := err == nil && int(hdr.Qdcount) == len(req.Question) && int(hdr.Ancount) == len(req.Answer) &&
		int(hdr.Nscount) == len(req.Ns) && int(hdr.Arcount) == len(req.Extra)
	if qok {
		echo.Question = req.Question
	}
	if countsOK {
		if o := soleOPT(req); o != nil {
			echo.Extra = []dns.RR{o}
		}
	}
	switch {
	case action == dns.MsgRejectNotImplemented:
		echo.Question = nil // as BIND: NOTIMP echoes no question
		return echo, dns.RcodeNotImplemented
	case action != dns.MsgAccept, err != nil, !countsOK, !qok:
		return echo, dns.RcodeFormatError
	}
	if rc := msgShape(req); rc != rcodeAccept {
		return echo, rc
	}
	return req, rcodeAccept
}

// questionComplete reports whether pkt's first question has its name,
// type and class (miekg's Unpack accepts one cut after the name).
func questionComplete(pkt []byte) bool {
	off := 12
	for off < len(pkt) {
		l := int(pkt[off])
		switch {
		case l == 0:
			return off+5 <= len(pkt)
		case l&0xC0 == 0xC0:
			return off+6 <= len(pkt)
		case l&0xC0 != 0:
			return false
		}
		off += 1 + l
	}
	return false
}

// packetReply is the error reply to a raw packet that could not be served
// (a panic while reading it): nil when nothing may be sent.
func (s *Server) packetReply(pkt []byte, rcode int) []byte {
	if len(pkt) < 12 || pkt[2]&0x80 != 0 {
		return nil
	}
	r := new(dns.Msg)
	r.Id = binary.BigEndian.Uint16(pkt)
	r.Opcode = int(pkt[2]>>3) & 0xF
	r.RecursionDesired = pkt[2]&1 != 0
	r.CheckingDisabled = pkt[3]&0x10 != 0
	b, err := s.reply(r, rcode).Pack()
	if err != nil {
		return nil
	}
	return b
}

// panicked records a recovered panic: counted always, logged with its stack
// at most once a second so a packet of death cannot flood the log.
func (s *Server) panicked(p any, where string) {
	s.metrics.panics.Add(1)
	now := time.Now().UnixNano()
	last := s.metrics.panicLogged.Load()
	if now-last < int64(time.Second) || !s.metrics.panicLogged.CompareAndSwap(last, now) {
		return
	}
	s.log.Error("recovered from a panic; the query was answered SERVFAIL or dropped",
		slog.String("where", where), slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
}

// tcpReader screens every TCP message with checkQuery before miekg sees
// it: what is to be refused is answered here, by reply like every other
// reply (miekg's own reject path would echo the request's flags), what the
// fast path can answer is answered here too, and only the rest goes on to
// miekg and ServeDNS. miekg makes one per connection and reads it one
// message at a time, so replies keep the order of the queries.
//
// Reads are buffered and the replies answered here are written in batches:
// a client pipelining queries costs one read and one write system call per
// batch, not three per query. Pending replies go out before a read that
// could wait on the client and before a query is handed to miekg (whose
// reply must follow them).
type tcpReader struct {
	dns.Reader
	s   *Server
	bc  *bufConn // conn with buffered reads, made on the first read
	out []byte   // length-prefixed replies answered here, not yet written
	// ans and scratch are the fast path's working space, kept for the
	// connection (queue copies each reply out before the next query).
	ans     []byte
	scratch [512]byte
}

// tcpReadBuffer holds about a hundred pipelined queries.
const tcpReadBuffer = 4096

// tcpWriteBatch is the most replies' bytes held back before writing.
const tcpWriteBatch = 16 << 10

// bufConn is a connection whose reads come through a buffer; deadlines and
// writes are the connection's own.
type bufConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufConn) Read(b []byte) (int, error) { return c.br.Read(b) }

// whole reports whether a complete message is already buffered.
func (c *bufConn) whole() bool {
	n := c.br.Buffered()
	if n < 2 {
		return false
	}
	h, _ := c.br.Peek(2)
	return n >= 2+int(binary.BigEndian.Uint16(h))
}

func (t *tcpReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	if t.bc == nil || t.bc.Conn != conn {
		t.bc = &bufConn{Conn: conn, br: bufio.NewReaderSize(conn, tcpReadBuffer)}
	}
	for {
		if !t.bc.whole() {
			if err := t.flush(); err != nil {
				return nil, err
			}
		}
		// miekg's reader sets the deadlines (and leaves a shutdown's
		// alone) and reads the message through the buffer.
		pkt, err := t.Reader.ReadTCP(t.bc, timeout)
		if err != nil {
			return nil, err
		}
		if t.ans == nil {
			t.ans = make([]byte, 0, 512)
		}
		pass, err := t.s.screenTCP(pkt, addrOf(conn.RemoteAddr()), t.queue, t.ans[:0], &t.scratch)
		if err != nil {
			return nil, err
		}
		if pass {
			return pkt, t.flush()
		}
		if len(t.out) >= tcpWriteBatch {
			if err := t.flush(); err != nil {
				return nil, err
			}
		}
	}
}

// queue adds one reply to the pending batch.
func (t *tcpReader) queue(b []byte) error {
	if len(b) > dns.MaxMsgSize {
		return fmt.Errorf("tcp reply of %d bytes", len(b))
	}
	t.out = binary.BigEndian.AppendUint16(t.out, uint16(len(b)))
	t.out = append(t.out, b...)
	return nil
}

// flush writes the pending replies.
func (t *tcpReader) flush() error {
	if len(t.out) == 0 {
		return nil
	}
	conn := t.bc.Conn
	conn.SetWriteDeadline(time.Now().Add(t.s.cfg.WriteTimeout))
	defer conn.SetWriteDeadline(time.Time{}) // miekg's own writes set none
	_, err := conn.Write(t.out)
	if err != nil {
		t.s.stats.WriteErrors.Add(1)
	}
	if cap(t.out) > 4*tcpWriteBatch {
		t.out = nil // one huge reply: do not keep its buffer for the connection's life
	} else {
		t.out = t.out[:0]
	}
	return err
}

// screenTCP answers pkt itself through write when checkQuery does not
// accept it or the fast path can answer it (building the reply in buf,
// with scratch); pass reports that it is a query for the handler.
func (s *Server) screenTCP(pkt []byte, ip netip.Addr, write func([]byte) error, buf []byte, scratch *[512]byte) (pass bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.panicked(p, "tcp reader")
			pass = false
			if b := s.packetReply(pkt, dns.RcodeServerFailure); b != nil {
				err = write(b)
			}
		}
	}()
	req, rc := checkQuery(pkt)
	switch rc {
	case rcodeAccept:
		if b, ok := s.fastTCP(pkt, ip, buf, scratch); ok {
			return false, write(b)
		}
		return true, nil
	case rcodeDrop:
		return false, nil
	}
	s.stats.FormErr.Add(1)
	b, err := s.reply(req, rc).Pack()
	if err != nil {
		return false, err
	}
	return false, write(b)
}

// fastTCP answers an authoritative query over TCP from the zone's wire
// form, as the UDP fast path does (same checks, counters, metrics and query
// log; no rate limiting, which is for UDP); ok false leaves it to the
// handler.
func (s *Server) fastTCP(pkt []byte, ip netip.Addr, buf []byte, scratch *[512]byte) ([]byte, bool) {
	resp, act := s.fastAnswer(pkt, ip, buf, scratch, time.Now(), nil, true)
	return resp, act == fastReply
}

// Panics returns how many panics the server recovered from.
func (s *Server) Panics() uint64 { return s.metrics.panics.Load() }
