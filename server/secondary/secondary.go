// Package secondary keeps zones that are transferred in from primaries
// (on-prem BIND, Knot, another hybridns): IXFR with AXFR fallback, TSIG,
// the SOA's refresh, retry and expire timers, NOTIFY from a listed primary
// refreshing at once, and a copy on disk so a restart serves before the
// first transfer. Each version is built and validated like any zone and
// swapped into the store; a broken or partial transfer keeps the last good
// version. It is a zone source like the zone directory and the Route 53
// syncer: the query path does not know it exists.
package secondary

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// Key is a TSIG key for transfers and refresh queries.
type Key struct {
	Name, Algorithm, Secret string // canonical name and algorithm, base64 secret
}

// Config is one secondary zone.
type Config struct {
	Zone      string   // canonical origin
	Primaries []string // host or host:port, tried in order
	Key       *Key     // nil: unsigned
	View      string   // where the zone is served (default view: "")
	// Dir keeps the last good version ("<zone>zone"); empty: none.
	Dir string
	// MinRefresh floors the SOA refresh and retry intervals (a primary
	// with refresh 1 must not make us hammer it); default 1s.
	MinRefresh time.Duration
	// OnVersion, when set, is called (in the zone's loop, never
	// concurrently for one zone) after a new version is published, with
	// the previous one (nil at the first) — to push it on to Route 53.
	OnVersion func(ctx context.Context, prev, next *zonestore.Zone)
	Logger    *slog.Logger
}

// Zone is one secondary zone's state and loop.
type Zone struct {
	cfg    Config
	store  *zonestore.Store
	log    *slog.Logger
	notify chan struct{}

	mu        sync.Mutex
	cur       *zonestore.Zone // nil until data arrives
	lastOK    time.Time       // last successful refresh (or file time)
	lastTry   time.Time
	lastErr   error
	expired   bool
	primaries map[string]string // primary → last outcome
	lastKind  string            // IXFR, AXFR, up to date
}

// Status is a secondary zone's state for /status and logs.
type Status struct {
	Zone        string            `json:"zone"`
	View        string            `json:"view"`
	Serial      uint32            `json:"serial"`
	Records     int               `json:"records"`
	LastRefresh time.Time         `json:"last_refresh"`
	LastTry     time.Time         `json:"last_try"`
	LastError   string            `json:"last_error,omitempty"`
	LastKind    string            `json:"last_transfer,omitempty"`
	Expired     bool              `json:"expired"`
	Primaries   map[string]string `json:"primaries"`
}

// New returns a secondary zone serving into store. Nothing is fetched yet.
func New(store *zonestore.Store, cfg Config) (*Zone, error) {
	if len(cfg.Primaries) == 0 {
		return nil, fmt.Errorf("secondary %s: no primaries", cfg.Zone)
	}
	cfg.Zone = zonestore.Canonical(cfg.Zone)
	for i, p := range cfg.Primaries {
		if _, _, err := net.SplitHostPort(p); err != nil {
			p = net.JoinHostPort(p, "53")
		}
		if _, err := netip.ParseAddrPort(p); err != nil {
			return nil, fmt.Errorf("secondary %s: primary %q: want IP or IP:port", cfg.Zone, cfg.Primaries[i])
		}
		cfg.Primaries[i] = p
	}
	if cfg.MinRefresh <= 0 {
		cfg.MinRefresh = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Zone{cfg: cfg, store: store, notify: make(chan struct{}, 1), primaries: map[string]string{},
		log: cfg.Logger.With(slog.String("component", "secondary"), slog.String("zone", cfg.Zone))}, nil
}

// Origin returns the zone's name.
func (z *Zone) Origin() string { return z.cfg.Zone }

// View returns the view the zone is served in.
func (z *Zone) View() string { return z.cfg.View }

func (z *Zone) source() string { return "secondary:" + strings.Join(z.cfg.Primaries, ",") }

// Load publishes the copy on disk, if any, before the first transfer; with
// none the zone is claimed (SERVFAIL) until data arrives, never forwarded.
func (z *Zone) Load() error {
	path := z.file()
	if path != "" {
		if f, err := os.Open(path); err == nil {
			defer f.Close()
			st, _ := f.Stat()
			zone, err := zonestore.ParseZone(f, z.cfg.Zone, path)
			if err == nil {
				z.mu.Lock()
				z.cur, z.lastOK = zone, st.ModTime()
				z.mu.Unlock()
				z.store.PutZone(z.cfg.View, z.cur)
				z.log.Info("serving the copy on disk until the first refresh", slog.Uint64("serial", uint64(zone.Serial())), slog.Int("records", zone.Records()))
				return nil
			}
			z.log.Error("copy on disk does not load; waiting for a transfer", slog.String("file", path), slog.Any("err", err))
		}
	}
	z.store.PutZone(z.cfg.View, zonestore.Unavailable(z.cfg.Zone, z.source()))
	return nil
}

func (z *Zone) file() string {
	if z.cfg.Dir == "" {
		return ""
	}
	name := strings.TrimSuffix(z.cfg.Zone, ".")
	if name == "" {
		name = "root"
	}
	return filepath.Join(z.cfg.Dir, name+".zone")
}

// Ready reports whether the zone has data.
func (z *Zone) Ready() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.cur != nil && !z.expired
}

// Notify is a NOTIFY for this zone from addr, signed with key ("" if
// unsigned): it refreshes at once when addr is one of the primaries and,
// when the zone has a key, the NOTIFY was signed with it (true); anything
// else is ignored (false).
func (z *Zone) Notify(addr netip.Addr, key string) bool {
	if z.cfg.Key != nil && !strings.EqualFold(key, z.cfg.Key.Name) {
		return false
	}
	for _, p := range z.cfg.Primaries {
		if ap, err := netip.ParseAddrPort(p); err == nil && ap.Addr().Unmap() == addr.Unmap() {
			select {
			case z.notify <- struct{}{}:
			default: // a refresh is already due
			}
			return true
		}
	}
	return false
}

// Status returns the zone's state.
func (z *Zone) Status() Status {
	z.mu.Lock()
	defer z.mu.Unlock()
	st := Status{Zone: z.cfg.Zone, View: z.cfg.View, LastRefresh: z.lastOK, LastTry: z.lastTry, Expired: z.expired,
		LastKind: z.lastKind, Primaries: map[string]string{}}
	for k, v := range z.primaries {
		st.Primaries[k] = v
	}
	if z.cur != nil {
		st.Serial, st.Records = z.cur.Serial(), z.cur.Records()
	}
	if z.lastErr != nil {
		st.LastError = z.lastErr.Error()
	}
	return st
}

// Run refreshes the zone until ctx ends: at once, then every SOA refresh
// (retry after a failure, at once on NOTIFY); past the SOA expire without a
// successful refresh the zone answers SERVFAIL until one succeeds.
func (z *Zone) Run(ctx context.Context) {
	next := time.Now()
	for {
		wake := next
		z.mu.Lock()
		if z.cur != nil && !z.expired {
			if exp := z.lastOK.Add(time.Duration(z.cur.SOA().Expire) * time.Second); exp.Before(wake) {
				wake = exp
			}
		}
		z.mu.Unlock()
		t := time.NewTimer(time.Until(wake))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-z.notify:
			t.Stop()
			next = time.Now()
		case <-t.C:
		}
		if time.Now().Before(next) {
			z.checkExpire()
			continue
		}
		refresh, retry := z.timers()
		if err := z.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			z.log.Warn("refresh failed; retrying", slog.Duration("retry", retry), slog.Any("err", err))
			next = time.Now().Add(retry)
		} else {
			next = time.Now().Add(refresh)
		}
		z.checkExpire()
	}
}

func (z *Zone) timers() (refresh, retry time.Duration) {
	refresh, retry = time.Hour, 5*time.Minute
	z.mu.Lock()
	if z.cur != nil {
		soa := z.cur.SOA()
		refresh, retry = time.Duration(soa.Refresh)*time.Second, time.Duration(soa.Retry)*time.Second
	} else {
		retry = 10 * time.Second
	}
	z.mu.Unlock()
	return max(refresh, z.cfg.MinRefresh), max(retry, z.cfg.MinRefresh)
}

// checkExpire withdraws the data of a zone not refreshed within its SOA
// expire, as BIND and Knot do: SERVFAIL, not stale answers.
func (z *Zone) checkExpire() {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.cur == nil || z.expired {
		return
	}
	if time.Since(z.lastOK) < time.Duration(z.cur.SOA().Expire)*time.Second {
		return
	}
	z.expired = true
	z.store.PutZone(z.cfg.View, zonestore.Unavailable(z.cfg.Zone, z.source()))
	z.log.Error("zone expired: no successful refresh within the SOA expire; answering SERVFAIL", slog.Time("last_refresh", z.lastOK))
}

// Refresh asks the primaries in order for the SOA and, when theirs is
// newer, transfers the zone (IXFR, else AXFR). It returns nil once one
// primary answered, changed or not.
func (z *Zone) Refresh(ctx context.Context) error {
	var errs []error
	for _, p := range z.cfg.Primaries {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		kind, err := z.refreshFrom(ctx, p)
		z.mu.Lock()
		z.lastTry = time.Now()
		if err != nil {
			z.primaries[p] = "error: " + err.Error()
		} else {
			z.primaries[p] = "ok"
			z.lastKind = kind
		}
		z.mu.Unlock()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("primary %s: %w", p, err))
	}
	err := errors.Join(errs...)
	z.mu.Lock()
	z.lastErr = err
	z.mu.Unlock()
	return err
}

func (z *Zone) refreshFrom(ctx context.Context, primary string) (string, error) {
	z.mu.Lock()
	cur, expired := z.cur, z.expired
	z.mu.Unlock()
	serial, err := z.primarySerial(ctx, primary)
	if err != nil {
		return "", err
	}
	if cur != nil && !newer(serial, cur.Serial()) {
		z.succeeded(cur, expired)
		return "up to date", nil
	}
	next, kind, err := z.transfer(ctx, primary, cur)
	if err != nil {
		return "", err
	}
	if cur != nil && next != cur && !newer(next.Serial(), cur.Serial()) {
		// Primaries behind a balancer may answer the SOA query and the
		// transfer from different backends: never go back (RFC 1982).
		return "", fmt.Errorf("transfer brought serial %d, not newer than ours (%d)", next.Serial(), cur.Serial())
	}
	if next == cur {
		z.succeeded(cur, expired)
		return kind, nil
	}
	z.publish(ctx, cur, next, kind)
	return kind, nil
}

// succeeded records a refresh that found the zone current.
func (z *Zone) succeeded(cur *zonestore.Zone, wasExpired bool) {
	now := time.Now()
	z.mu.Lock()
	z.lastOK, z.lastErr = now, nil
	z.expired = false
	z.mu.Unlock()
	if path := z.file(); path != "" {
		// The copy's time is the last refresh a restart counts expiry
		// from: a zone confirmed current is as fresh as a transferred one.
		_ = os.Chtimes(path, now, now)
	}
	if wasExpired {
		z.store.PutZone(z.cfg.View, cur)
		z.log.Info("zone back from expiry", slog.Uint64("serial", uint64(cur.Serial())))
	}
}

func (z *Zone) publish(ctx context.Context, prev, next *zonestore.Zone, kind string) {
	z.store.PutZone(z.cfg.View, next)
	z.mu.Lock()
	z.cur, z.lastOK, z.lastErr, z.expired = next, time.Now(), nil, false
	z.mu.Unlock()
	z.log.Info("zone transferred", slog.String("kind", kind), slog.Uint64("serial", uint64(next.Serial())), slog.Int("records", next.Records()))
	if err := z.save(next); err != nil {
		z.log.Error("copy on disk not written", slog.Any("err", err))
	}
	if z.cfg.OnVersion != nil {
		z.cfg.OnVersion(ctx, prev, next)
	}
}

// save writes the zone atomically: temporary file, fsync, rename.
func (z *Zone) save(zone *zonestore.Zone) error {
	path := z.file()
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secondary-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := zone.WriteTo(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// newer reports whether a is newer than b in RFC 1982 serial arithmetic.
func newer(a, b uint32) bool { return a != b && int32(a-b) > 0 }

func (z *Zone) sign(m *dns.Msg) map[string]string {
	if z.cfg.Key == nil {
		return nil
	}
	m.SetTsig(z.cfg.Key.Name, z.cfg.Key.Algorithm, 300, time.Now().Unix())
	return map[string]string{z.cfg.Key.Name: z.cfg.Key.Secret}
}

// primarySerial asks primary for the zone's SOA (UDP, TCP on truncation).
func (z *Zone) primarySerial(ctx context.Context, primary string) (uint32, error) {
	m := new(dns.Msg)
	m.SetQuestion(z.cfg.Zone, dns.TypeSOA)
	m.RecursionDesired = false
	c := &dns.Client{Net: "udp", Timeout: 3 * time.Second, TsigSecret: z.sign(m)}
	r, _, err := c.ExchangeContext(ctx, m, primary)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, primary)
	}
	if err != nil {
		return 0, fmt.Errorf("SOA query: %w", err)
	}
	if z.cfg.Key != nil && r.IsTsig() == nil {
		// miekg checks a reply's TSIG only when there is one: an unsigned
		// (or spoofed) reply must not count as a refresh.
		return 0, errors.New("SOA query: the reply is not signed with the zone's key")
	}
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		return 0, fmt.Errorf("SOA query: %s (aa=%v): the primary does not serve the zone", dns.RcodeToString[r.Rcode], r.Authoritative)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, z.cfg.Zone) {
			return soa.Serial, nil
		}
	}
	return 0, errors.New("SOA query: no SOA in the answer")
}

// transfer fetches the zone from primary: IXFR from cur's serial when there
// is a cur, AXFR otherwise or when the IXFR fails; the result is built and
// validated before anyone sees it.
func (z *Zone) transfer(ctx context.Context, primary string, cur *zonestore.Zone) (*zonestore.Zone, string, error) {
	if cur != nil {
		next, kind, err := z.xfr(ctx, primary, cur)
		if err == nil {
			return next, kind, nil
		}
		z.log.Warn("IXFR failed; trying AXFR", slog.String("primary", primary), slog.Any("err", err))
	}
	return z.xfr(ctx, primary, nil)
}

func (z *Zone) xfr(ctx context.Context, primary string, cur *zonestore.Zone) (*zonestore.Zone, string, error) {
	m := new(dns.Msg)
	kind := "AXFR"
	if cur != nil {
		soa := cur.SOA()
		m.SetIxfr(z.cfg.Zone, soa.Serial, soa.Ns, soa.Mbox)
		kind = "IXFR"
	} else {
		m.SetAxfr(z.cfg.Zone)
	}
	tr := &dns.Transfer{DialTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, TsigSecret: z.sign(m)}
	ch, err := tr.In(m, primary)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", kind, err)
	}
	var rrs []dns.RR
	for env := range ch {
		if env.Error != nil {
			// Drain what is left so the reader goroutine ends.
			for range ch {
			}
			return nil, "", fmt.Errorf("%s: %w", kind, env.Error)
		}
		rrs = append(rrs, env.RR...)
		if ctx.Err() != nil {
			for range ch {
			}
			return nil, "", ctx.Err()
		}
	}
	if len(rrs) == 0 {
		return nil, "", fmt.Errorf("%s: empty transfer", kind)
	}
	first, ok := rrs[0].(*dns.SOA)
	if !ok {
		return nil, "", fmt.Errorf("%s: does not start with the SOA", kind)
	}
	var next *zonestore.Zone
	switch {
	case cur != nil && len(rrs) == 1:
		return cur, "up to date", nil
	case cur != nil && len(rrs) > 1 && rrs[1].Header().Rrtype == dns.TypeSOA:
		next, err = z.applyIXFR(cur, rrs)
	default:
		if cur != nil {
			kind = "IXFR (full zone)"
		}
		last, ok := rrs[len(rrs)-1].(*dns.SOA)
		if len(rrs) < 2 || !ok || last.Serial != first.Serial {
			return nil, "", fmt.Errorf("%s: does not end with the SOA (partial transfer?)", kind)
		}
		next, err = z.build(rrs[:len(rrs)-1])
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", kind, err)
	}
	if next.Serial() != first.Serial {
		return nil, "", fmt.Errorf("%s: built serial %d, transfer said %d", kind, next.Serial(), first.Serial)
	}
	return next, kind, nil
}

// applyIXFR applies the difference sequences of an IXFR reply (RFC 1995
// §4: SOA_new, then per version SOA_old deletions SOA_new additions, then
// SOA_new) to cur.
func (z *Zone) applyIXFR(cur *zonestore.Zone, rrs []dns.RR) (*zonestore.Zone, error) {
	final := rrs[0].(*dns.SOA)
	if last, ok := rrs[len(rrs)-1].(*dns.SOA); !ok || last.Serial != final.Serial {
		return nil, errors.New("does not end with the new SOA (partial transfer?)")
	}
	set := map[string]dns.RR{}
	for _, rr := range cur.RRs() {
		set[rrKey(rr)] = rr
	}
	body := rrs[1 : len(rrs)-1]
	serial := cur.Serial()
	for i := 0; i < len(body); {
		old, ok := body[i].(*dns.SOA)
		if !ok || old.Serial != serial {
			return nil, fmt.Errorf("difference sequence does not start at our serial %d", serial)
		}
		i++
		for ; i < len(body) && body[i].Header().Rrtype != dns.TypeSOA; i++ {
			delete(set, rrKey(body[i]))
		}
		if i >= len(body) {
			return nil, errors.New("difference sequence without its new SOA")
		}
		nsoa := body[i].(*dns.SOA)
		delete(set, rrKey(old))
		set[rrKey(nsoa)] = nsoa
		i++
		for ; i < len(body) && body[i].Header().Rrtype != dns.TypeSOA; i++ {
			set[rrKey(body[i])] = body[i]
		}
		serial = nsoa.Serial
	}
	if serial != final.Serial {
		return nil, fmt.Errorf("differences end at serial %d, not %d", serial, final.Serial)
	}
	all := make([]dns.RR, 0, len(set))
	for _, rr := range set {
		all = append(all, rr)
	}
	return z.build(all)
}

// rrKey identifies a record by owner, type and data, not TTL: what IXFR
// deletions name. SOAs are keyed by owner alone (one per zone).
func rrKey(rr dns.RR) string {
	h := rr.Header()
	if h.Rrtype == dns.TypeSOA {
		return strings.ToLower(h.Name) + "/SOA"
	}
	c := dns.Copy(rr)
	c.Header().Ttl = 0
	c.Header().Name = strings.ToLower(h.Name)
	zonestore.CanonicalRdata(c) // the primary may spell names in the data its own way
	return c.String()
}

func (z *Zone) build(rrs []dns.RR) (*zonestore.Zone, error) {
	b := zonestore.NewBuilder(z.cfg.Zone)
	b.SetSource(z.source())
	var soas int
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeSOA {
			soas++
		}
		if err := b.Add(rr); err != nil {
			return nil, err
		}
	}
	if soas != 1 {
		return nil, fmt.Errorf("%d SOA records", soas)
	}
	return b.Build()
}
