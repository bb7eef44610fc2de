// Package reverse synthesizes reverse (PTR) zones from the A and AAAA
// records of forward zones in the store. It is a zone source like the
// others: it builds an immutable zonestore.Zone whenever a forward zone it
// reads changes and swaps it in, so the query path knows nothing of it.
//
// One PTR per address. When several names hold the same address the PTR
// names the first of them in DNS canonical order (RFC 4034 §6.1: compared
// label by label from the root, case-insensitively), so the choice is
// stable across restarts and instances. The PTR's TTL is that A/AAAA
// record's TTL.
//
// When the reverse zone is also served from another source (a zone file, a
// Route 53 zone, a transfer), that zone's data is kept as it is and wins:
// an address whose reverse name holds any record there, or lies at or
// below a delegation there, gets no synthesized PTR. The synthesized zone
// then carries the explicit zone's SOA (with a serial that moves) and NS.
package reverse

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// Source is the Source() of every zone this package builds.
const Source = "reverse:synthesized"

// Spec is one synthesized reverse zone.
type Spec struct {
	Zone string   // e.g. 2.0.192.in-addr.arpa.
	From []string // forward zones whose addresses it maps
	View string   // the view it is served in (and reads forward zones from)
}

// Synth keeps the configured reverse zones in step with the store.
type Synth struct {
	store *zonestore.Store
	specs []Spec
	log   *slog.Logger

	mu   sync.Mutex
	last []inputs // per spec: what the published zone was built from
	// explicit is the zone of another source each of our zones stands
	// over ("view/origin" → zone).
	explicit map[string]*zonestore.Zone
}

// inputs identifies what a synthesized zone was built from: zones never
// change, so pointer identity is version identity.
type inputs struct {
	base    *zonestore.Zone // the explicit zone, if any
	fwd     []*zonestore.Zone
	serial  uint32
	built   *zonestore.Zone
	present bool
}

// New returns a synthesizer; specs are canonicalized.
func New(store *zonestore.Store, specs []Spec, log *slog.Logger) *Synth {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Synth{store: store, log: log, explicit: map[string]*zonestore.Zone{}}
	for _, sp := range specs {
		c := Spec{Zone: zonestore.Canonical(sp.Zone), View: sp.View}
		for _, f := range sp.From {
			c.From = append(c.From, zonestore.Canonical(f))
		}
		s.specs = append(s.specs, c)
	}
	s.last = make([]inputs, len(s.specs))
	return s
}

// Run keeps the zones current until stop is closed: a rebuild after every
// publish that changed a forward zone.
func (s *Synth) Run(stop <-chan struct{}) {
	for {
		ch := s.store.Changed()
		s.Sync()
		select {
		case <-ch:
		case <-stop:
			return
		}
	}
}

var errStale = errors.New("the reverse zone changed while it was built")

// Sync rebuilds every reverse zone whose inputs changed and publishes it.
// Writers call it before they answer, so a change they made is in the
// reverse answers at once.
func (s *Synth) Sync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.specs {
		for try := 0; try < 5; try++ {
			err := s.syncOne(i)
			if err == nil {
				break
			}
			if !errors.Is(err, errStale) {
				s.log.Error("reverse zone not built", slog.String("zone", s.specs[i].Zone), slog.String("view", s.specs[i].View), slog.Any("err", err))
				break
			}
		}
	}
}

func (s *Synth) syncOne(i int) error {
	sp := s.specs[i]
	snap := s.store.Load()
	own := snap.Zone(sp.View, sp.Zone)
	prev := s.last[i]
	// The explicit zone: the view's own, else the default view's (which
	// the view sees unless it has its own). Where one of ours stands in
	// a table, the explicit zone it replaced is remembered; an empty
	// table means the explicit zone is gone.
	observe := func(view string) *zonestore.Zone {
		key := view + "/" + sp.Zone
		switch z := snap.Zone(view, sp.Zone); {
		case z == nil:
			delete(s.explicit, key)
		case z.Source() != Source:
			s.explicit[key] = z
		}
		return s.explicit[key]
	}
	base := observe(zonestore.DefaultView)
	if sp.View != zonestore.DefaultView {
		if b := observe(sp.View); b != nil {
			base = b
		}
	}
	in := inputs{base: base, present: true}
	for _, f := range sp.From {
		if z := snap.Find(sp.View, f); z != nil && z.Origin() == f {
			in.fwd = append(in.fwd, z)
		} else {
			in.fwd = append(in.fwd, nil)
		}
	}
	if prev.present && prev.base == in.base && slices.Equal(prev.fwd, in.fwd) && own == prev.built && own != nil {
		return nil
	}
	serial := nextSerial(prev.serial, base)
	built, err := build(sp, base, in.fwd, serial)
	if err != nil {
		return err
	}
	err = s.store.Update(func(cur *zonestore.Snapshot) (*zonestore.Snapshot, error) {
		if cur.Zone(sp.View, sp.Zone) != own {
			return nil, errStale
		}
		return cur.WithZone(sp.View, built), nil
	})
	if err != nil {
		return err
	}
	in.serial, in.built = serial, built
	s.last[i] = in
	s.log.Debug("reverse zone built", slog.String("zone", sp.Zone), slog.String("view", sp.View), slog.Int("records", built.Records()), slog.Uint64("serial", uint64(serial)))
	return nil
}

func nextSerial(prev uint32, base *zonestore.Zone) uint32 {
	cand := uint32(time.Now().Unix())
	if base != nil && int32(base.Serial()-cand) > 0 {
		cand = base.Serial()
	}
	if prev == 0 || int32(cand-prev) > 0 {
		return cand
	}
	return prev + 1
}

// candidate is one forward name holding an address.
type candidate struct {
	name string
	ttl  uint32
}

// build makes the reverse zone: the explicit zone's records (if any), then
// one PTR per address of the forward zones that falls in the zone and is
// not covered by explicit data.
func build(sp Spec, base *zonestore.Zone, fwd []*zonestore.Zone, serial uint32) (*zonestore.Zone, error) {
	b := zonestore.NewBuilder(sp.Zone)
	b.SetSource(Source)
	explicit := map[string]bool{}
	var cuts []string
	if base != nil {
		for _, rr := range base.RRs() {
			rr = dns.Copy(rr)
			h := rr.Header()
			if soa, ok := rr.(*dns.SOA); ok {
				soa.Serial = serial
			}
			explicit[h.Name] = true
			if h.Rrtype == dns.TypeNS && h.Name != sp.Zone {
				cuts = append(cuts, h.Name)
			}
			if err := b.Add(rr); err != nil {
				return nil, err
			}
		}
	} else {
		ns := []string{}
		for _, z := range fwd {
			if z == nil {
				continue
			}
			for _, rr := range z.RRs() {
				if n, ok := rr.(*dns.NS); ok && n.Hdr.Name == z.Origin() {
					ns = append(ns, n.Ns)
				}
			}
			if len(ns) > 0 {
				break
			}
		}
		if len(ns) == 0 {
			ns = []string{"localhost."}
		}
		soa := &dns.SOA{Hdr: dns.RR_Header{Name: sp.Zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
			Ns: ns[0], Mbox: "hostmaster." + sp.Zone, Serial: serial, Refresh: 3600, Retry: 600, Expire: 1209600, Minttl: 60}
		if err := b.Add(soa); err != nil {
			return nil, err
		}
		for _, n := range ns {
			if err := b.Add(&dns.NS{Hdr: dns.RR_Header{Name: sp.Zone, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600}, Ns: n}); err != nil {
				return nil, err
			}
		}
	}
	ptrs := map[string]candidate{}
	for _, z := range fwd {
		if z == nil {
			continue
		}
		var fcuts []string
		var addrs []dns.RR
		for _, rr := range z.RRs() {
			h := rr.Header()
			switch h.Rrtype {
			case dns.TypeNS:
				if h.Name != z.Origin() {
					fcuts = append(fcuts, h.Name)
				}
			case dns.TypeA, dns.TypeAAAA:
				addrs = append(addrs, rr)
			}
		}
		for _, rr := range addrs {
			h := rr.Header()
			if strings.HasPrefix(h.Name, "*.") || below(h.Name, fcuts) {
				continue // wildcards name no host; glue is another zone's data
			}
			var ip net.IP
			switch v := rr.(type) {
			case *dns.A:
				ip = v.A
			case *dns.AAAA:
				ip = v.AAAA
			}
			rev, err := dns.ReverseAddr(ip.String())
			if err != nil {
				continue
			}
			rev = strings.ToLower(rev)
			if rev == sp.Zone || !zonestore.InZone(rev, sp.Zone) || explicit[rev] || below(rev, cuts) {
				continue
			}
			if c, ok := ptrs[rev]; !ok || zonestore.CanonicalLess(h.Name, c.name) {
				ptrs[rev] = candidate{name: h.Name, ttl: h.Ttl}
			}
		}
	}
	for rev, c := range ptrs {
		if err := b.Add(&dns.PTR{Hdr: dns.RR_Header{Name: rev, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: c.ttl}, Ptr: c.name}); err != nil {
			return nil, fmt.Errorf("PTR %s: %w", rev, err)
		}
	}
	return b.Build()
}

// below reports whether name is at or below one of cuts.
func below(name string, cuts []string) bool {
	for _, c := range cuts {
		if zonestore.InZone(name, c) {
			return true
		}
	}
	return false
}
