package server

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

const (
	xfrKeyName   = "xfr-key."
	xfrSecret    = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAxMjM="
	vpcKeyName   = "vpc-a-key."
	vpcKeySecret = "dnBjLWEtc2VjcmV0LXZwYy1hLXNlY3JldC0wMTIzNDU="
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// numberedZone is origin with n A records and the given serial; every
// record's address encodes the serial so a copy mixing versions shows.
func numberedZone(t testing.TB, origin string, serial uint32, n int) *zonestore.Zone {
	t.Helper()
	b := zonestore.NewBuilder(origin)
	add := func(s string) {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Add(rr); err != nil {
			t.Fatal(err)
		}
	}
	add(fmt.Sprintf("%s 300 IN SOA ns.%s hm.%s %d 3600 600 86400 60", origin, origin, origin, serial))
	add(fmt.Sprintf("%s 300 IN NS ns.%s", origin, origin))
	add(fmt.Sprintf("ns.%s 300 IN A 192.0.2.1", origin))
	for i := 0; i < n; i++ {
		add(fmt.Sprintf("h%d.%s 300 IN TXT \"v%d\"", i, origin, serial))
	}
	z, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func xfrKeys() []TSIGKey {
	return []TSIGKey{
		{Name: xfrKeyName, Algorithm: dns.HmacSHA256, Secret: xfrSecret},
		{Name: vpcKeyName, Algorithm: dns.HmacSHA256, Secret: vpcKeySecret, View: "vpc-a"},
	}
}

// transfer runs AXFR/IXFR over TCP and returns every record received and
// the number of envelopes; the client verifies TSIG on every message.
func transfer(t testing.TB, addr string, m *dns.Msg) ([]dns.RR, int, error) {
	t.Helper()
	tr := &dns.Transfer{ReadTimeout: 20 * time.Second}
	if m.IsTsig() != nil {
		tr.TsigSecret = map[string]string{xfrKeyName: xfrSecret, vpcKeyName: vpcKeySecret}
	}
	ch, err := tr.In(m, addr)
	if err != nil {
		return nil, 0, err
	}
	var rrs []dns.RR
	n := 0
	for env := range ch {
		if env.Error != nil {
			return rrs, n, env.Error
		}
		n++
		rrs = append(rrs, env.RR...)
	}
	return rrs, n, nil
}

func axfrMsg(zone, key string) *dns.Msg {
	m := new(dns.Msg)
	m.SetAxfr(zone)
	if key != "" {
		m.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
	}
	return m
}

func ixfrMsg(zone string, serial uint32, key string) *dns.Msg {
	m := new(dns.Msg)
	m.SetIxfr(zone, serial, "ns."+zone, "hm."+zone)
	if key != "" {
		m.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
	}
	return m
}

func TestAXFRNeedsARule(t *testing.T) {
	ts := startServer(t, Config{TSIGKeys: xfrKeys()})
	m := new(dns.Msg)
	m.SetAxfr("example.org.")
	r := exchange(t, "tcp", ts.tcp, m)
	if r.Rcode != dns.RcodeRefused {
		t.Fatalf("AXFR without any transfer rule: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	// A rule for other networks, and one that needs a key, do not match.
	if err := ts.Reconfigure(Policy{TSIGKeys: xfrKeys(), Transfer: []TransferRule{
		{Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{Keys: []string{xfrKeyName}, Networks: loopback},
	}}); err != nil {
		t.Fatal(err)
	}
	if r := exchange(t, "tcp", ts.tcp, m); r.Rcode != dns.RcodeRefused {
		t.Fatalf("AXFR unsigned with a keyed rule: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if _, _, err := transfer(t, ts.tcp, axfrMsg("example.org.", xfrKeyName)); err != nil {
		t.Fatalf("signed AXFR with the rule's key: %v", err)
	}
	eventually(t, func() bool { return ts.TransferCount("example.org.", "axfr", "refused") == 2 }, "two refused transfers are counted")
}

func TestAXFRStreamsWholeZone(t *testing.T) {
	store := zonestore.NewStore()
	z := numberedZone(t, "big.example.", 7, 5000)
	store.PutZone(zonestore.DefaultView, z)
	ts := startServer(t, Config{Store: store, TSIGKeys: xfrKeys()})
	if err := ts.Reconfigure(Policy{TSIGKeys: xfrKeys(), Transfer: []TransferRule{{Keys: []string{xfrKeyName}}}}); err != nil {
		t.Fatal(err)
	}
	rrs, msgs, err := transfer(t, ts.tcp, axfrMsg("big.example.", xfrKeyName))
	if err != nil {
		t.Fatal(err)
	}
	if msgs < 2 {
		t.Errorf("5000 records in %d message(s): want several", msgs)
	}
	want := append(z.RRs(), z.SOA())
	if len(rrs) != len(want) {
		t.Fatalf("got %d records, want %d", len(rrs), len(want))
	}
	for i := range want {
		if rrs[i].String() != want[i].String() {
			t.Fatalf("record %d: %s, want %s", i, rrs[i], want[i])
		}
	}
	// Over UDP AXFR is refused.
	u := axfrMsg("big.example.", "")
	if r := exchange(t, "udp", ts.udp, u); r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR over UDP: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	// A query with an authority section that is not IXFR is malformed.
	bad := query("big.example.", dns.TypeA, false)
	bad.Ns = []dns.RR{z.SOA()}
	if r := exchange(t, "tcp", ts.tcp, bad); r.Rcode != dns.RcodeFormatError {
		t.Errorf("A query with authority: %s, want FORMERR", dns.RcodeToString[r.Rcode])
	}
}

func TestAXFRPrivateZoneOnlyWithItsViewsKey(t *testing.T) {
	store := zonestore.NewStore()
	pub := numberedZone(t, "corp.example.", 1, 2)
	priv := numberedZone(t, "corp.example.", 2, 3)
	store.PutZone(zonestore.DefaultView, pub)
	store.PutZone("vpc-a", priv)
	views := []View{{Name: "vpc-a", Clients: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}}
	ts := startServer(t, Config{Store: store, TSIGKeys: xfrKeys(), Views: views})
	if err := ts.Reconfigure(Policy{TSIGKeys: xfrKeys(), Views: views, Transfer: []TransferRule{
		{Keys: []string{xfrKeyName}, Networks: loopback},
		{Keys: []string{vpcKeyName}, Networks: loopback, View: "vpc-a"},
		{Networks: loopback, View: "vpc-a"}, // no key: never private zones
	}}); err != nil {
		t.Fatal(err)
	}
	serialOf := func(key string) (uint32, int) {
		rrs, _, err := transfer(t, ts.tcp, axfrMsg("corp.example.", key))
		if err != nil {
			if strings.Contains(err.Error(), "REFUSED") || strings.Contains(err.Error(), "bad xfr rcode: 5") {
				return 0, dns.RcodeRefused
			}
			t.Fatalf("key %q: %v", key, err)
		}
		return rrs[0].(*dns.SOA).Serial, dns.RcodeSuccess
	}
	if s, _ := serialOf(vpcKeyName); s != 2 {
		t.Errorf("with the view's key: serial %d, want the private zone's 2", s)
	}
	if s, _ := serialOf(xfrKeyName); s != 1 {
		t.Errorf("with the default key: serial %d, want the public zone's 1", s)
	}
	// Unsigned: the keyless vpc-a rule must not hand out the private zone,
	// and no rule gives the public one to an unsigned client.
	if _, rc := serialOf(""); rc != dns.RcodeRefused {
		t.Errorf("unsigned: rcode %d, want REFUSED", rc)
	}
}

func TestIXFRFromJournal(t *testing.T) {
	store := zonestore.NewStore()
	j := store.EnableJournal(zonestore.JournalConfig{Versions: 3})
	v := func(serial uint32, extra ...string) *zonestore.Zone {
		z := numberedZone(t, "ix.example.", 1, 3) // the same TXT data each time
		b := zonestore.NewBuilder("ix.example.")
		for _, rr := range z.RRs() {
			if soa, ok := rr.(*dns.SOA); ok {
				c := *soa
				c.Serial = serial
				rr = &c
			}
			if err := b.Add(dns.Copy(rr)); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range extra {
			rr, _ := dns.NewRR(s)
			if err := b.Add(rr); err != nil {
				t.Fatal(err)
			}
		}
		out, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	store.PutZone(zonestore.DefaultView, v(10))
	ts := startServer(t, Config{Store: store, TSIGKeys: xfrKeys(), Journal: j})
	if err := ts.Reconfigure(Policy{TSIGKeys: xfrKeys(), Transfer: []TransferRule{{Keys: []string{xfrKeyName}}}}); err != nil {
		t.Fatal(err)
	}
	store.PutZone(zonestore.DefaultView, v(11, "new.ix.example. 60 IN A 192.0.2.5"))
	store.PutZone(zonestore.DefaultView, v(12, "new.ix.example. 60 IN A 192.0.2.6"))

	rrs, _, err := transfer(t, ts.tcp, ixfrMsg("ix.example.", 10, xfrKeyName))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rr := range rrs {
		got = append(got, strings.Join(strings.Fields(rr.String()), " "))
	}
	want := []string{
		"ix.example. 300 IN SOA ns.ix.example. hm.ix.example. 12 3600 600 86400 60",
		"ix.example. 300 IN SOA ns.ix.example. hm.ix.example. 10 3600 600 86400 60",
		"ix.example. 300 IN SOA ns.ix.example. hm.ix.example. 11 3600 600 86400 60",
		"new.ix.example. 60 IN A 192.0.2.5",
		"ix.example. 300 IN SOA ns.ix.example. hm.ix.example. 11 3600 600 86400 60",
		"new.ix.example. 60 IN A 192.0.2.5",
		"ix.example. 300 IN SOA ns.ix.example. hm.ix.example. 12 3600 600 86400 60",
		"new.ix.example. 60 IN A 192.0.2.6",
		"ix.example. 300 IN SOA ns.ix.example. hm.ix.example. 12 3600 600 86400 60",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("IXFR from 10:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Current: one SOA.
	rrs, _, err = transfer(t, ts.tcp, ixfrMsg("ix.example.", 12, xfrKeyName))
	if err != nil || len(rrs) != 1 || rrs[0].(*dns.SOA).Serial != 12 {
		t.Fatalf("IXFR from the current serial: %v %v, want one SOA 12", rrs, err)
	}
	// Unknown to the journal: the whole zone, AXFR-style.
	rrs, _, err = transfer(t, ts.tcp, ixfrMsg("ix.example.", 3, xfrKeyName))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rrs); n != 3+3+1+1 || rrs[0].(*dns.SOA).Serial != 12 || rrs[n-1].(*dns.SOA).Serial != 12 {
		t.Fatalf("IXFR from an unknown serial: %d records %v", n, rrs)
	}
	// The server counts a transfer after its last message: wait for it.
	eventually(t, func() bool {
		return ts.TransferCount("ix.example.", "ixfr-axfr", "ok") == 1 && ts.TransferCount("ix.example.", "ixfr", "ok") == 1 &&
			ts.TransferCount("ix.example.", "ixfr-current", "ok") == 1
	}, "transfer metrics tell the kinds apart")
	// Over UDP: just the current SOA.
	u := ixfrMsg("ix.example.", 10, xfrKeyName)
	c := &dns.Client{Net: "udp", TsigSecret: map[string]string{xfrKeyName: xfrSecret}, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(u, ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != 12 || !r.Authoritative {
		t.Fatalf("IXFR over UDP: %v, want the current SOA", r)
	}
	// The journal is bounded by versions: after 3 more changes, 10 is gone.
	for s := uint32(13); s <= 15; s++ {
		store.PutZone(zonestore.DefaultView, v(s))
	}
	if vers, _ := j.Stats(); vers != 3 {
		t.Errorf("journal holds %d versions, want 3", vers)
	}
	if _, ok := j.Since("", "ix.example.", 10, 15); ok {
		t.Errorf("the journal still bridges 10 → 15 beyond its depth")
	}
	if ch, ok := j.Since("", "ix.example.", 12, 15); !ok || len(ch) != 3 {
		t.Errorf("journal 12 → 15: %d changes, %v", len(ch), ok)
	}
}

// TestTransferIsOneVersion swaps the zone while transfers run: every copy
// must hold exactly one version (every record says which).
func TestTransferIsOneVersion(t *testing.T) {
	store := zonestore.NewStore()
	store.PutZone(zonestore.DefaultView, numberedZone(t, "swap.example.", 1, 20000))
	ts := startServer(t, Config{Store: store})
	if err := ts.Reconfigure(Policy{Transfer: []TransferRule{{Networks: loopback}}}); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for s := uint32(2); !stop.Load(); s++ {
			store.PutZone(zonestore.DefaultView, numberedZone(t, "swap.example.", s, 20000))
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	seen := map[uint32]bool{}
	for i := 0; i < 5; i++ {
		rrs, _, err := transfer(t, ts.tcp, axfrMsg("swap.example.", ""))
		if err != nil {
			t.Fatal(err)
		}
		serial := rrs[0].(*dns.SOA).Serial
		seen[serial] = true
		want := fmt.Sprintf("\"v%d\"", serial)
		n := 0
		for _, rr := range rrs {
			if txt, ok := rr.(*dns.TXT); ok {
				n++
				if !strings.HasSuffix(txt.String(), want) {
					t.Fatalf("copy of serial %d holds %s", serial, txt)
				}
			}
		}
		if n != 20000 || rrs[len(rrs)-1].(*dns.SOA).Serial != serial {
			t.Fatalf("copy of serial %d: %d TXT records, last SOA %v", serial, n, rrs[len(rrs)-1])
		}
	}
	t.Logf("versions transferred: %d", len(seen))
}

// notifySink is a secondary's NOTIFY port: it answers with the rcodes
// given in turn (then NOERROR) and records what it got.
type notifySink struct {
	addr   string
	mu     sync.Mutex
	got    []*dns.Msg
	signed []bool
	rcodes []int
	recv   chan struct{}
}

func startNotifySink(t *testing.T, rcodes ...int) *notifySink {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ns := &notifySink{addr: pc.LocalAddr().String(), rcodes: rcodes, recv: make(chan struct{}, 100)}
	srv := &dns.Server{PacketConn: pc, TsigSecret: map[string]string{xfrKeyName: xfrSecret},
		MsgAcceptFunc: func(dns.Header) dns.MsgAcceptAction { return dns.MsgAccept },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			ns.mu.Lock()
			ns.got = append(ns.got, r)
			ns.signed = append(ns.signed, r.IsTsig() != nil && w.TsigStatus() == nil)
			if len(ns.rcodes) > 0 {
				m.Rcode, ns.rcodes = ns.rcodes[0], ns.rcodes[1:]
			}
			ns.mu.Unlock()
			if t := r.IsTsig(); t != nil {
				m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
			}
			w.WriteMsg(m)
			ns.recv <- struct{}{}
		})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return ns
}

func (ns *notifySink) wait(t *testing.T, n int) []*dns.Msg {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		ns.mu.Lock()
		if len(ns.got) >= n {
			out := append([]*dns.Msg(nil), ns.got...)
			ns.mu.Unlock()
			return out
		}
		ns.mu.Unlock()
		select {
		case <-ns.recv:
		case <-deadline:
			t.Fatalf("only %d NOTIFY received, want %d", len(ns.got), n)
		}
	}
}

func TestNotifySignedAndRetried(t *testing.T) {
	sink := startNotifySink(t, dns.RcodeServerFailure) // the first one fails
	store := zonestore.NewStore()
	cfg := Config{Store: store, TSIGKeys: xfrKeys()}
	cfg.Listen = []string{"127.0.0.1:0"}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reconfigure(Policy{TSIGKeys: xfrKeys(), Transfer: []TransferRule{{Keys: []string{xfrKeyName}, Notify: []string{sink.addr}}}}); err != nil {
		t.Fatal(err)
	}
	ts := startServerFrom(t, s, store)
	store.PutZone(zonestore.DefaultView, numberedZone(t, "n.example.", 5, 1))
	got := sink.wait(t, 2) // the failed one and its retry
	for i, m := range got[:2] {
		if m.Opcode != dns.OpcodeNotify || m.Question[0].Name != "n.example." || !sink.signed[i] {
			t.Fatalf("NOTIFY %d: opcode %d %v signed=%v", i, m.Opcode, m.Question, sink.signed[i])
		}
		if soa, ok := m.Answer[0].(*dns.SOA); !ok || soa.Serial != 5 {
			t.Fatalf("NOTIFY %d carries %v, want SOA 5", i, m.Answer)
		}
	}
	eventually(t, func() bool { return ts.NotifyCount("n.example.", "acked") == 1 }, "the NOTIFY is counted as acknowledged")
	if f := ts.NotifyCount("n.example.", "failed"); f != 1 {
		t.Errorf("failed NOTIFYs: %d, want 1", f)
	}
}

// startServerFrom starts an already configured server.
func startServerFrom(t *testing.T, s *Server, store *zonestore.Store) *testServer {
	t.Helper()
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	u, tc := s.Addrs()
	return &testServer{Server: s, store: store, udp: u[0].String(), tcp: tc[0].String()}
}

func TestCatalogZonePerView(t *testing.T) {
	store := zonestore.NewStore()
	store.PutZone(zonestore.DefaultView, numberedZone(t, "pub.example.", 1, 1))
	store.PutZone("vpc-a", numberedZone(t, "priv.example.", 1, 1))
	views := []View{{Name: "vpc-a", Clients: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}}
	cfg := Config{Store: store, TSIGKeys: xfrKeys(), Views: views, CatalogZone: "catalog.hybridns."}
	cfg.Listen = []string{"127.0.0.1:0"}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reconfigure(Policy{TSIGKeys: xfrKeys(), Views: views, Transfer: []TransferRule{
		{Keys: []string{xfrKeyName}}, {Keys: []string{vpcKeyName}, View: "vpc-a"}}}); err != nil {
		t.Fatal(err)
	}
	ts := startServerFrom(t, s, store)
	members := func(key string, want int) (map[string]string, uint32) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			rrs, _, err := transfer(t, ts.tcp, axfrMsg("catalog.hybridns.", key))
			out := map[string]string{}
			var serial uint32
			if err == nil {
				serial = rrs[0].(*dns.SOA).Serial
				for _, rr := range rrs {
					if p, ok := rr.(*dns.PTR); ok {
						out[p.Ptr] = p.Hdr.Name
					}
				}
			}
			if err == nil && len(out) == want {
				return out, serial
			}
			if time.Now().After(deadline) {
				t.Fatalf("catalog with %s: %v %v, want %d members", key, out, err, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	pub, s1 := members(xfrKeyName, 1)
	if pub["pub.example."] != zonestore.CatalogMemberLabel("pub.example.")+".zones.catalog.hybridns." {
		t.Errorf("default catalog: %v", pub)
	}
	priv, _ := members(vpcKeyName, 2)
	if priv["priv.example."] == "" || priv["pub.example."] == "" {
		t.Errorf("vpc-a catalog: %v", priv)
	}
	store.PutZone(zonestore.DefaultView, numberedZone(t, "new.example.", 1, 1))
	after, s2 := members(xfrKeyName, 2)
	if after["new.example."] == "" || !zonestore.SerialLess(s1, s2) {
		t.Errorf("after adding a zone: %v serial %d → %d", after, s1, s2)
	}
	if after["pub.example."] != pub["pub.example."] {
		t.Errorf("member label changed: %s → %s", pub["pub.example."], after["pub.example."])
	}
	store.DeleteZone(zonestore.DefaultView, "pub.example.")
	members(xfrKeyName, 1)
}

// eventually polls cond until it holds or 10 seconds pass.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTransferToStalledClient: a client that asks for a zone and stops
// reading must not hold the transfer (and the zone version) forever.
func TestTransferToStalledClient(t *testing.T) {
	store := zonestore.NewStore()
	// More than the kernel buffers both sides (4 MiB send at most here).
	store.PutZone(zonestore.DefaultView, numberedZone(t, "stall.example.", 1, 250000))
	ts := startServer(t, Config{Store: store})
	if err := ts.Reconfigure(Policy{Transfer: []TransferRule{{Networks: loopback}}}); err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dc := &dns.Conn{Conn: conn}
	if err := dc.WriteMsg(axfrMsg("stall.example.", "")); err != nil {
		t.Fatal(err)
	}
	// Never read. The server's write deadline ends the transfer.
	deadline := time.Now().Add(60 * time.Second)
	for ts.TransferCount("stall.example.", "axfr", "error") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the transfer to a client that stopped reading never ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNotifyNSTargets(t *testing.T) {
	store := zonestore.NewStore()
	z := parse(t, `$ORIGIN n.example.
@    300 IN SOA ns1 hm 1 1 1 1 1
@    300 IN NS  ns1
@    300 IN NS  ns-1.awsdns-01.org.
@    300 IN NS  ns.other.example.
@    300 IN NS  ns.unknown.test.
ns1  300 IN A   127.0.0.9
ns1  300 IN AAAA ::1
`, "n.example.")
	store.PutZone(zonestore.DefaultView, z)
	store.PutZone(zonestore.DefaultView, parse(t, "$ORIGIN other.example.\n@ 300 IN SOA ns hm 1 1 1 1 1\n@ 300 IN NS ns\nns 300 IN A 127.0.0.10\n", "other.example."))
	got := nsTargets(store.Load(), zonestore.DefaultView, z)
	slices.Sort(got)
	if want := []string{"127.0.0.10:53", "127.0.0.9:53", "[::1]:53"}; !slices.Equal(got, want) {
		t.Errorf("NS targets %v, want %v (awsdns and unresolvable hosts left out)", got, want)
	}
}

// A client pipelining a query, an AXFR and another query on one
// connection (written at once, so the reader buffers past the AXFR) gets
// the first answer, the whole transfer, then the last answer, in order.
func TestPipelinedQueriesAroundAXFR(t *testing.T) {
	store := zonestore.NewStore()
	z := numberedZone(t, "pipe.example.", 3, 2000)
	store.PutZone(zonestore.DefaultView, z)
	ts := startServer(t, Config{Store: store})
	if err := ts.Reconfigure(Policy{Transfer: []TransferRule{{Networks: loopback}}}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []byte
	for i, m := range []*dns.Msg{query("h1.pipe.example.", dns.TypeTXT, false), axfrMsg("pipe.example.", ""), query("h7.pipe.example.", dns.TypeTXT, false)} {
		m.Id = uint16(100 + i)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
		out = append(out, b...)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	co := &dns.Conn{Conn: c}
	first, err := co.ReadMsg()
	if err != nil || first.Id != 100 || len(first.Answer) != 1 || first.Answer[0].(*dns.TXT).Txt[0] != "v3" {
		t.Fatalf("first reply: %v %v", first, err)
	}
	var rrs []dns.RR
	soas := 0
	for soas < 2 {
		r, err := co.ReadMsg()
		if err != nil {
			t.Fatalf("AXFR after %d records: %v", len(rrs), err)
		}
		if r.Id != 101 || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("AXFR message: id %d rcode %s", r.Id, dns.RcodeToString[r.Rcode])
		}
		for _, rr := range r.Answer {
			if rr.Header().Rrtype == dns.TypeSOA {
				soas++
			}
		}
		rrs = append(rrs, r.Answer...)
	}
	if want := len(z.RRs()) + 1; len(rrs) != want {
		t.Fatalf("AXFR: %d records, want %d", len(rrs), want)
	}
	last, err := co.ReadMsg()
	if err != nil || last.Id != 102 || len(last.Answer) != 1 || last.Answer[0].Header().Name != "h7.pipe.example." {
		t.Fatalf("reply after the AXFR: %v %v", last, err)
	}
}

// BenchmarkAXFR is the server's side of a 200,000-record AXFR: records
// streamed from the zone and packed into messages (no socket).
func BenchmarkAXFR(b *testing.B) {
	z := numberedZone(b, "bench.example.", 1, 200000)
	s := &Server{}
	r := axfrMsg("bench.example.", "")
	w := &recorder{remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
	z.RRs() // the canonical order is computed once per zone version
	b.ReportAllocs()
	for b.Loop() {
		if _, n, err := s.streamTransfer(w, r, z.All(), TSIGKey{}, false); err != nil || n != z.Records() {
			b.Fatalf("%d records, %v", n, err)
		}
	}
}
