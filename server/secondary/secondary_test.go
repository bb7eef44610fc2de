package secondary

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// fakePrimary answers SOA queries and AXFR/IXFR over TCP with whatever the
// test sets, counting what it was asked.
type fakePrimary struct {
	addr string
	mu   sync.Mutex
	soa  uint32
	axfr []dns.RR // nil: refuse
	ixfr []dns.RR // nil: refuse IXFR (NOTIMP), so the secondary falls back
	asks map[uint16]int
}

func rr(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func rrs(t *testing.T, lines ...string) []dns.RR {
	var out []dns.RR
	for _, l := range lines {
		out = append(out, rr(t, l))
	}
	return out
}

func soa(serial int) string {
	return "z.test. 60 IN SOA ns.z.test. h.z.test. " + strconv.Itoa(serial) + " 60 30 600 60"
}

func startPrimary(t *testing.T) *fakePrimary {
	t.Helper()
	p := &fakePrimary{asks: map[uint16]int{}}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		p.mu.Lock()
		defer p.mu.Unlock()
		q := r.Question[0]
		p.asks[q.Qtype]++
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		switch q.Qtype {
		case dns.TypeSOA:
			m.Answer = []dns.RR{rr(t, soa(int(p.soa)))}
		case dns.TypeAXFR, dns.TypeIXFR:
			body := p.axfr
			if q.Qtype == dns.TypeIXFR {
				body = p.ixfr
			}
			if body == nil {
				m.Rcode = dns.RcodeNotImplemented
				w.WriteMsg(m)
				return
			}
			tr := new(dns.Transfer)
			ch := make(chan *dns.Envelope, 1)
			ch <- &dns.Envelope{RR: body}
			close(ch)
			tr.Out(w, r, ch)
			return
		}
		w.WriteMsg(m)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{Listener: ln, Handler: h}, {PacketConn: pc, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	p.addr = ln.Addr().String()
	return p
}

func (p *fakePrimary) set(serial uint32, axfr, ixfr []dns.RR) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.soa, p.axfr, p.ixfr = serial, axfr, ixfr
}

func lookup(store *zonestore.Store, name string) (zonestore.Kind, string) {
	z := store.Load().Find("", name)
	if z == nil {
		return zonestore.NXDomain, "no zone"
	}
	res := z.Lookup(name, dns.TypeA)
	if len(res.Answer) > 0 {
		return res.Kind, res.Answer[0].(*dns.A).A.String()
	}
	return res.Kind, ""
}

func TestTransfers(t *testing.T) {
	p := startPrimary(t)
	store := zonestore.NewStore()
	z, err := New(store, Config{Zone: "z.test.", Primaries: []string{"127.0.0.1:1", p.addr}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	z.Load()
	if k, _ := lookup(store, "www.z.test."); k != zonestore.ServFail {
		t.Fatalf("before any transfer: %v, want ServFail (claimed)", k)
	}
	ctx := context.Background()
	v1 := rrs(t, soa(1), "z.test. 60 IN NS ns.z.test.", "ns.z.test. 60 IN A 192.0.2.1", "www.z.test. 60 IN A 192.0.2.10", soa(1))

	// AXFR; the first primary is down and the second one answers.
	p.set(1, v1, nil)
	if err := z.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, a := lookup(store, "www.z.test."); a != "192.0.2.10" {
		t.Fatalf("after AXFR: %q", a)
	}
	if st := z.Status(); st.LastKind != "AXFR" || !strings.HasPrefix(st.Primaries["127.0.0.1:1"], "error") || st.Primaries[p.addr] != "ok" {
		t.Errorf("status %+v", st)
	}

	// IXFR: one version's difference.
	ixfr := rrs(t, soa(2), soa(1), "www.z.test. 60 IN A 192.0.2.10", soa(2), "www.z.test. 60 IN A 192.0.2.20", "new.z.test. 60 IN A 192.0.2.30", soa(2))
	p.set(2, nil, ixfr)
	if err := z.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, a := lookup(store, "www.z.test."); a != "192.0.2.20" {
		t.Fatalf("after IXFR: %q", a)
	}
	if _, a := lookup(store, "new.z.test."); a != "192.0.2.30" || z.Status().LastKind != "IXFR" {
		t.Fatalf("after IXFR: new = %q, kind %s", a, z.Status().LastKind)
	}

	// Up to date: no transfer at all.
	p.mu.Lock()
	asked := p.asks[dns.TypeIXFR] + p.asks[dns.TypeAXFR]
	p.mu.Unlock()
	if err := z.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	if p.asks[dns.TypeIXFR]+p.asks[dns.TypeAXFR] != asked {
		t.Error("transferred a zone that was current")
	}
	p.mu.Unlock()

	// A broken IXFR (a sequence that does not start at our serial) falls
	// back to AXFR.
	bad := rrs(t, soa(3), soa(7), soa(3), "x.z.test. 60 IN A 192.0.2.99", soa(3))
	v3 := rrs(t, soa(3), "z.test. 60 IN NS ns.z.test.", "ns.z.test. 60 IN A 192.0.2.1", "www.z.test. 60 IN A 192.0.2.33", soa(3))
	p.set(3, v3, bad)
	if err := z.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, a := lookup(store, "www.z.test."); a != "192.0.2.33" {
		t.Fatalf("after IXFR→AXFR fallback: %q", a)
	}
	if k, _ := lookup(store, "x.z.test."); k != zonestore.NXDomain {
		t.Error("data of the broken IXFR was applied")
	}

	// A partial AXFR (no closing SOA) and a zone that does not validate
	// (no NS) both keep the last good version.
	for _, broken := range [][]dns.RR{
		rrs(t, soa(4), "z.test. 60 IN NS ns.z.test.", "www.z.test. 60 IN A 192.0.2.44"),
		rrs(t, soa(4), "www.z.test. 60 IN A 192.0.2.44", soa(4)),
	} {
		p.set(4, broken, nil)
		if err := z.Refresh(ctx); err == nil {
			t.Error("a broken transfer succeeded")
		}
		if _, a := lookup(store, "www.z.test."); a != "192.0.2.33" {
			t.Fatalf("a broken transfer replaced the zone: %q", a)
		}
	}
}

func TestNotifyOnlyFromPrimaries(t *testing.T) {
	store := zonestore.NewStore()
	z, err := New(store, Config{Zone: "z.test.", Primaries: []string{"192.0.2.53"}, Key: &Key{Name: "k.", Algorithm: dns.HmacSHA256, Secret: "c2VjcmV0"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, key string
		want      bool
	}{
		{"192.0.2.53", "k.", true},
		{"192.0.2.53", "", false},         // the zone has a key: unsigned is ignored
		{"192.0.2.53", "other.", false},   // signed with another key
		{"192.0.2.54", "k.", false},       // not a primary
		{"::ffff:192.0.2.53", "k.", true}, // mapped address
	} {
		if got := z.Notify(netip.MustParseAddr(tc.from), tc.key); got != tc.want {
			t.Errorf("NOTIFY from %s key %q: %v, want %v", tc.from, tc.key, got, tc.want)
		}
	}
}

func TestExpire(t *testing.T) {
	p := startPrimary(t)
	store := zonestore.NewStore()
	z, err := New(store, Config{Zone: "z.test.", Primaries: []string{p.addr}})
	if err != nil {
		t.Fatal(err)
	}
	// Expire 1 s: refresh once, then no primary.
	expiring := "z.test. 60 IN SOA ns.z.test. h.z.test. 5 60 30 1 60"
	p.set(5, rrs(t, expiring, "z.test. 60 IN NS ns.z.test.", "www.z.test. 60 IN A 192.0.2.5", expiring), nil)
	if err := z.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	z.mu.Lock()
	z.lastOK = z.lastOK.Add(-2 * time.Second) // as if the last refresh were 2 s ago
	z.mu.Unlock()
	z.checkExpire()
	if k, _ := lookup(store, "www.z.test."); k != zonestore.ServFail || z.Ready() {
		t.Fatalf("after expire: %v (ready %v), want ServFail", k, z.Ready())
	}
	// A successful refresh brings it back.
	if err := z.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, a := lookup(store, "www.z.test."); a != "192.0.2.5" || !z.Ready() {
		t.Fatalf("after a refresh: %q", a)
	}
}

// Review findings, pinned: an IXFR deletion spelled in another case still
// deletes; a transfer older than what we hold is refused; with a key, an
// unsigned SOA reply is no refresh.
func TestTransferEdgeCases(t *testing.T) {
	p := startPrimary(t)
	store := zonestore.NewStore()
	z, err := New(store, Config{Zone: "z.test.", Primaries: []string{p.addr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p.set(1, rrs(t, soa(1), "z.test. 60 IN NS ns.z.test.", "ns.z.test. 60 IN A 192.0.2.1", "z.test. 60 IN MX 10 mail.z.test.", soa(1)), nil)
	if err := z.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	p.set(2, nil, rrs(t, soa(2), soa(1), "Z.TEST. 60 IN MX 10 Mail.Z.Test.", soa(2), "z.test. 60 IN MX 20 mx2.z.test.", soa(2)))
	if err := z.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if res := store.Load().Find("", "z.test.").Lookup("z.test.", dns.TypeMX); len(res.Answer) != 1 || res.Answer[0].(*dns.MX).Mx != "mx2.z.test." {
		t.Fatalf("MX after a mixed-case IXFR deletion: %v", res.Answer)
	}
	// The SOA says 10, the transfer (another backend) brings 1.
	p.set(10, rrs(t, soa(1), "z.test. 60 IN NS ns.z.test.", "ns.z.test. 60 IN A 192.0.2.1", soa(1)), nil)
	if err := z.Refresh(ctx); err == nil {
		t.Error("a transfer older than ours was taken")
	}
	if got := store.Load().Find("", "z.test.").Serial(); got != 2 {
		t.Errorf("serial went from 2 to %d", got)
	}

	keyed, err := New(zonestore.NewStore(), Config{Zone: "z.test.", Primaries: []string{p.addr}, Key: &Key{Name: "k.", Algorithm: dns.HmacSHA256, Secret: "c2VjcmV0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := keyed.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("an unsigned SOA reply counted: %v", err)
	}
}
