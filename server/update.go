package server

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"hybridns/zonestore/dynupdate"
)

// Updater changes a zone at its source (Route 53 for a mirrored zone). It
// is satisfied in cmd by the Route 53 writer; server knows nothing of AWS.
type Updater interface {
	// Update evaluates u's prerequisites against the zone's current data
	// and applies its update section as one atomic change; it returns
	// only once the source accepted it (or refused). Result.Rcode is the
	// answer; err, when set, says why for the log.
	Update(ctx context.Context, u Update) (UpdateResult, error)
}

// Update is one RFC 2136 UPDATE that passed the shape and policy checks.
type Update struct {
	Zone       string // canonical zone name
	ZoneSource string // the served zone's Source(): which copy to change
	View       string
	Signer     string // TSIG key name
	Prereqs    []dns.RR
	Updates    []dns.RR
	// Permit is the zone's update policy for this signer, asked for every
	// RRset the update would change.
	Permit func(name string, t uint16) bool
}

// UpdateResult is what came of an Update.
type UpdateResult struct {
	Rcode int
}

// updateStats count UPDATE replies by rcode.
type updateStats struct {
	byRcode [24]atomic.Uint64
}

func (u *updateStats) add(rcode int) {
	if rcode >= 0 && rcode < len(u.byRcode) {
		u.byRcode[rcode].Add(1)
	}
}

// serveUpdate answers an RFC 2136 UPDATE: TSIG first, then the zone
// section, the zone's policy, the sections' shape, and finally the zone's
// source, which is asked only when all of that holds. The reply goes out
// only after the source accepted (or refused) the change.
func (s *Server) serveUpdate(w dns.ResponseWriter, r *dns.Msg) {
	m := s.reply(r, dns.RcodeSuccess) // the one reply builder
	key, terr := s.tsigVerdict(w, r)
	var rcode int
	if terr != dns.RcodeSuccess {
		rcode = dns.RcodeNotAuth
	} else {
		rcode = s.update(w, r, key)
	}
	m.Rcode = rcode
	s.updates.add(rcode)
	if r.IsTsig() != nil {
		signReply(m, r, key, terr)
	}
	if err := w.WriteMsg(m); err != nil {
		s.stats.WriteErrors.Add(1)
		s.log.Debug("write update reply", slog.String("client", w.RemoteAddr().String()), slog.Any("err", err))
	}
}

func (s *Server) update(w dns.ResponseWriter, r *dns.Msg, key TSIGKey) int {
	if len(r.Question) != 1 || r.Question[0].Qtype != dns.TypeSOA {
		return dns.RcodeFormatError
	}
	if r.Question[0].Qclass != dns.ClassINET {
		return dns.RcodeNotAuth
	}
	c := s.client(w)
	view := c.view
	if key.View != "" {
		view = key.View
	}
	zone := strings.ToLower(dns.Fqdn(r.Question[0].Name))
	snap := s.cfg.Store.Load()
	z := snap.Find(view, zone)
	if z == nil || z.Origin() != zone {
		return dns.RcodeNotAuth
	}
	log := s.log.With(slog.String("zone", zone), slog.String("client", c.addr.String()), slog.String("key", key.Name))
	rules, ok := c.pol.updatePolicy[zone]
	if !ok || s.cfg.Updater == nil {
		log.Info("update refused: no update policy for the zone")
		return dns.RcodeRefused
	}
	if rc := dynupdate.CheckShape(zone, r.Answer, r.Ns); rc != dns.RcodeSuccess {
		return rc
	}
	if key.Name == "" {
		log.Info("update refused: not signed")
		return dns.RcodeRefused
	}
	permit := func(name string, t uint16) bool { return allowUpdate(rules, zone, key.Name, name, t) }
	// Each record is checked as BIND does before anything is applied; a
	// delete of every set at a name is checked per set the writer finds.
	for _, rr := range r.Ns {
		h := rr.Header()
		if h.Rrtype == dns.TypeANY {
			continue
		}
		if !permit(strings.ToLower(h.Name), h.Rrtype) {
			log.Info("update refused by policy", slog.String("name", h.Name), slog.String("type", dns.TypeToString[h.Rrtype]))
			return dns.RcodeRefused
		}
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.UpdateTimeout)
	defer cancel()
	start := time.Now()
	res, err := s.cfg.Updater.Update(ctx, Update{Zone: zone, ZoneSource: z.Source(), View: view, Signer: key.Name,
		Prereqs: r.Answer, Updates: r.Ns, Permit: permit})
	if err != nil {
		if res.Rcode == dns.RcodeSuccess {
			res.Rcode = dns.RcodeServerFailure
		}
		log.Warn("update not applied", slog.String("rcode", dns.RcodeToString[res.Rcode]), slog.Any("err", err))
		return res.Rcode
	}
	log.Info("update", slog.String("rcode", dns.RcodeToString[res.Rcode]), slog.Int("prereqs", len(r.Answer)),
		slog.Int("updates", len(r.Ns)), slog.Duration("took", time.Since(start)))
	return res.Rcode
}

// NotifyReceiver takes NOTIFY (RFC 1996) for zones this server is a
// secondary of; wired in cmd to the secondary zones.
type NotifyReceiver interface {
	// Notify reports whether zone is a secondary here (known) and whether
	// the NOTIFY from addr, signed with key ("" unsigned), was taken
	// (accepted: a primary of the zone, with the zone's key if it has one).
	Notify(zone string, from netip.Addr, key string) (known, accepted bool)
}

// serveNotify answers a NOTIFY: NOERROR (AA) when a secondary zone took it,
// REFUSED from anyone but its primaries, NOTAUTH for zones we do not
// follow.
func (s *Server) serveNotify(w dns.ResponseWriter, r *dns.Msg) {
	m := s.reply(r, dns.RcodeSuccess) // the one reply builder
	key, terr := s.tsigVerdict(w, r)
	switch {
	case terr != dns.RcodeSuccess:
		m.Rcode = dns.RcodeNotAuth
	case len(r.Question) != 1 || r.Question[0].Qtype != dns.TypeSOA:
		m.Rcode = dns.RcodeFormatError
	case s.cfg.Notify == nil:
		m.Rcode = dns.RcodeNotAuth
	default:
		zone := strings.ToLower(dns.Fqdn(r.Question[0].Name))
		known, accepted := s.cfg.Notify.Notify(zone, remoteIP(w), key.Name)
		switch {
		case !known:
			m.Rcode = dns.RcodeNotAuth
		case !accepted:
			m.Rcode = dns.RcodeRefused
			s.log.Info("NOTIFY refused: not from a primary of the zone (or not signed with its key)", slog.String("zone", zone), slog.String("client", w.RemoteAddr().String()))
		default:
			m.Authoritative = true
			s.log.Debug("NOTIFY", slog.String("zone", zone), slog.String("client", w.RemoteAddr().String()))
		}
	}
	if r.IsTsig() != nil {
		signReply(m, r, key, terr)
	}
	if err := w.WriteMsg(m); err != nil {
		s.stats.WriteErrors.Add(1)
	}
}
