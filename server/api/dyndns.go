package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"hybridns/server"
	"hybridns/zonestore"
	"hybridns/zonestore/dynupdate"
)

// dyndns2 (the protocol of DynDNS/Dyn, spoken by ddclient, inadyn and home
// routers): GET /nic/update?hostname=a,b&myip=ADDR[,ADDR] with Basic auth
// (user = token name, password = token). One answer line per hostname, in
// order: "good ADDR", "nochg ADDR", "nohost", "notfqdn", "dnserr", "911";
// or a single "badauth", "numhost", "abuse". A nochg reaches no API.

const (
	maxHosts   = 20 // as Dyn
	dyndnsTTL  = 60 // TTL of a record dyndns2 creates
	dyndnsRelm = `Basic realm="hybridns dyndns2"`
)

func dyndnsReply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body + "\n"))
}

// hostJob is one hostname of a request.
type hostJob struct {
	name   string
	zone   *zonestore.Zone
	view   string
	answer string // set once decided
	addrs  []netip.Addr
}

func (h *Handler) dyndns(w http.ResponseWriter, r *http.Request) {
	peer := h.caller(r) // see authed
	if h.limiter.blocked(peer) {
		dyndnsReply(w, http.StatusOK, "abuse")
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		w.Header().Set("WWW-Authenticate", dyndnsRelm)
		dyndnsReply(w, http.StatusUnauthorized, "badauth")
		return
	}
	tok, ok := h.lookup(user, pass)
	if !ok || user == "" {
		h.limiter.fail(peer)
		h.log.Info("dyndns2 authentication failed", slog.String("client", peer.String()), slog.String("user", user))
		dyndnsReply(w, http.StatusOK, "badauth")
		return
	}
	q := r.URL.Query()
	var names []string
	for _, v := range q["hostname"] {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		dyndnsReply(w, http.StatusOK, "notfqdn")
		return
	}
	if len(names) > maxHosts {
		dyndnsReply(w, http.StatusOK, "numhost")
		return
	}
	addrs := h.dyndnsAddrs(r)
	snap := h.cfg.Store.Load()
	jobs := make([]*hostJob, len(names))
	byZone := map[*zonestore.Zone][]*hostJob{}
	var zoneOrder []*zonestore.Zone
	for i, raw := range names {
		j := &hostJob{addrs: addrs}
		jobs[i] = j
		if _, ok := dns.IsDomainName(raw); !ok || dns.CountLabel(raw) < 2 || strings.ContainsAny(raw, " \t\"();*\\") {
			j.answer = "notfqdn"
			continue
		}
		j.name = zonestore.Canonical(raw)
		j.zone, j.view = findServing(snap, q.Get("view"), j.name)
		if j.zone == nil || h.cfg.Writer == nil || !strings.HasPrefix(j.zone.Source(), "route53:") {
			j.answer = "nohost"
			continue
		}
		for _, a := range addrs {
			if !server.AllowUpdate(tok.Policy, j.zone.Origin(), tok.Name, j.name, addrType(a)) {
				j.answer = "nohost"
			}
		}
		if j.answer != "" {
			h.log.Info("dyndns2 refused by policy", slog.String("token", tok.Name), slog.String("host", j.name))
			continue
		}
		if byZone[j.zone] == nil {
			zoneOrder = append(zoneOrder, j.zone)
		}
		byZone[j.zone] = append(byZone[j.zone], j)
	}
	if len(addrs) == 0 {
		for _, j := range jobs {
			if j.answer == "" {
				j.answer = "911"
			}
		}
	}
	wrote := false
	for _, z := range zoneOrder {
		if h.dyndnsZone(z, byZone[z], tok) {
			wrote = true
		}
	}
	if wrote && h.cfg.AfterWrite != nil {
		h.cfg.AfterWrite()
	}
	lines := make([]string, len(jobs))
	for i, j := range jobs {
		lines[i] = j.answer
	}
	dyndnsReply(w, http.StatusOK, strings.Join(lines, "\n"))
}

// dyndnsZone updates the jobs of one zone in one write: every host's A
// (and/or AAAA) set becomes exactly the given address; a host whose sets
// already are that is nochg. It reports whether Route 53 took a change.
func (h *Handler) dyndnsZone(z *zonestore.Zone, jobs []*hostJob, tok Token) bool {
	changed := map[*hostJob]bool{}
	blocked := map[*hostJob]bool{}
	plan := func(src dynupdate.Source) (int, []dynupdate.Change, error) {
		clear(changed)
		clear(blocked)
		var out []dynupdate.Change
		for _, j := range jobs {
			types := src.Types(j.name)
			if slices.Contains(types, dns.TypeCNAME) {
				blocked[j] = true
				continue
			}
			var mine []dynupdate.Change
			for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
				var want []netip.Addr
				for _, a := range j.addrs {
					if addrType(a) == t {
						want = append(want, a)
					}
				}
				if len(want) == 0 {
					continue
				}
				cur, exists := src.RRset(j.name, t)
				if exists && cur == nil {
					blocked[j] = true // alias or routing policy: not ours to overwrite
					mine = nil
					break
				}
				ttl := uint32(dyndnsTTL)
				if len(cur) > 0 {
					ttl = cur[0].Header().Ttl
				}
				next := make([]dns.RR, 0, len(want))
				for _, a := range want {
					next = append(next, addrRR(j.name, ttl, a))
				}
				if !sameSet(cur, next) {
					mine = append(mine, dynupdate.Change{Key: dynupdate.Key{Name: j.name, Type: t}, Old: cur, New: next})
				}
			}
			if len(mine) > 0 {
				changed[j] = true
				out = append(out, mine...)
			}
		}
		return dns.RcodeSuccess, out, nil
	}
	ctx, cancel := context.WithTimeout(h.base, h.cfg.WriteTimeout)
	defer cancel()
	res, err := h.cfg.Writer.Write(ctx, Write{Zone: z.Origin(), ZoneSource: z.Source(), View: jobs[0].view, Identity: tok.Name, Plan: plan})
	failed := err != nil || res.Rcode != dns.RcodeSuccess
	for _, j := range jobs {
		switch {
		case blocked[j]:
			j.answer = "dnserr"
		case failed && changed[j]:
			// Route 53 unreachable or not ready: our problem, retry later.
			j.answer = "dnserr"
			if res.Rcode == dns.RcodeServerFailure && !errors.Is(err, context.Canceled) {
				j.answer = "911"
			}
		case failed && len(changed) == 0:
			j.answer = "911"
		case changed[j]:
			j.answer = "good " + addrList(j.addrs)
		default:
			j.answer = "nochg " + addrList(j.addrs)
		}
	}
	if failed {
		h.log.Warn("dyndns2 update not applied", slog.String("zone", z.Origin()), slog.String("token", tok.Name),
			slog.String("rcode", dns.RcodeToString[res.Rcode]), slog.Any("err", err))
		return false
	}
	if res.ChangeID != "" {
		h.log.Info("dyndns2 update", slog.String("zone", z.Origin()), slog.String("token", tok.Name), slog.Int("hosts", len(changed)),
			slog.String("change_id", res.ChangeID), slog.Uint64("serial", uint64(res.Serial)))
	}
	return res.ChangeID != ""
}

// dyndnsAddrs is the request's myip (and myipv6): one address per family,
// the last given wins; none valid → the caller's address.
func (h *Handler) dyndnsAddrs(r *http.Request) []netip.Addr {
	var v4, v6 netip.Addr
	q := r.URL.Query()
	for _, key := range []string{"myip", "myipv6"} {
		for _, v := range q[key] {
			for _, s := range strings.Split(v, ",") {
				a, err := netip.ParseAddr(strings.TrimSpace(s))
				if err != nil || a.Zone() != "" {
					continue // Dyn: a malformed address is ignored
				}
				a = a.Unmap()
				if a.Is4() {
					v4 = a
				} else {
					v6 = a
				}
			}
		}
	}
	var out []netip.Addr
	if v4.IsValid() {
		out = append(out, v4)
	}
	if v6.IsValid() {
		out = append(out, v6)
	}
	if len(out) == 0 {
		if c := h.caller(r); c.IsValid() {
			out = append(out, c)
		}
	}
	return out
}

func addrType(a netip.Addr) uint16 {
	if a.Is4() {
		return dns.TypeA
	}
	return dns.TypeAAAA
}

func addrRR(name string, ttl uint32, a netip.Addr) dns.RR {
	if a.Is4() {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: a.AsSlice()}
	}
	return &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: a.AsSlice()}
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// findServing is the zone that holds name: in view when given, else the
// default view's, else the only view's that has one.
func findServing(snap *zonestore.Snapshot, view, name string) (*zonestore.Zone, string) {
	if view != "" {
		return snap.Find(view, name), view
	}
	if z := snap.Find(zonestore.DefaultView, name); z != nil {
		return z, zonestore.DefaultView
	}
	var found *zonestore.Zone
	var fview string
	for _, v := range snap.Views() {
		if z := snap.Find(v, name); z != nil {
			if found != nil && z != found {
				return nil, "" // ambiguous: several views have one
			}
			found, fview = z, v
		}
	}
	return found, fview
}
