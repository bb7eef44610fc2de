package server

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	proxyproto "github.com/pires/go-proxyproto"

	"hybridns/zonestore"
)

// waitFor polls cond until it holds or the deadline passes (a failure
// deadline, not a timing threshold).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// dialFrom opens a TCP connection from a chosen loopback address.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	return c
}

// tcpAsk sends m on c and reads one reply (err: the connection was closed).
func tcpAsk(c net.Conn, m *dns.Msg) (*dns.Msg, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	co := &dns.Conn{Conn: c}
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	return co.ReadMsg()
}

func writeProxyHeader(t *testing.T, c net.Conn, client string) {
	t.Helper()
	h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
		SourceAddr:      &net.TCPAddr{IP: net.ParseIP(client), Port: 40000},
		DestinationAddr: &net.TCPAddr{IP: net.ParseIP("10.9.0.53"), Port: 53}}
	if _, err := h.WriteTo(c); err != nil {
		t.Fatal(err)
	}
}

// TestProxyProtocolNeedsTrusted: PROXY protocol without trusted networks
// would let any client pick its address; it is a configuration error.
func TestProxyProtocolNeedsTrusted(t *testing.T) {
	_, err := New(Config{Store: zonestore.NewStore(), ProxyProtocol: true})
	if err == nil || !strings.Contains(err.Error(), "ProxyTrusted") {
		t.Fatalf("PROXY protocol without trusted networks accepted: %v", err)
	}
	if _, err := New(Config{Store: zonestore.NewStore(), ProxyProtocol: true, ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}); err != nil {
		t.Fatal(err)
	}
}

// TestProxyHeaderFromUntrustedRefused: a header from a trusted balancer
// sets the client (the view sees it); a header from anyone else closes the
// connection without an answer; a plain client from anywhere is served.
func TestProxyHeaderFromUntrustedRefused(t *testing.T) {
	store := zonestore.NewStore()
	store.PutZone(zonestore.DefaultView, parse(t, "$ORIGIN shop.example.\n@ 60 IN SOA ns hm 1 2 3 4 5\n@ 60 IN NS ns\nns 60 IN A 192.0.2.1\nwww 60 IN A 198.51.100.1\n", "shop.example."))
	store.PutZone("inside", parse(t, "$ORIGIN shop.example.\n@ 60 IN SOA ns hm 1 2 3 4 5\n@ 60 IN NS ns\nns 60 IN A 10.0.0.1\nwww 60 IN A 10.0.0.9\n", "shop.example."))
	ts := startServer(t, Config{Store: store, ProxyProtocol: true,
		ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Views:        []View{{Name: "inside", Clients: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}}})
	q := query("www.shop.example.", dns.TypeA, false)
	firstA := func(r *dns.Msg) string {
		if r == nil || len(r.Answer) == 0 {
			return ""
		}
		return r.Answer[0].(*dns.A).A.String()
	}

	c := dialFrom(t, "127.0.0.1", ts.tcp)
	writeProxyHeader(t, c, "10.9.4.4")
	r, err := tcpAsk(c, q)
	c.Close()
	if err != nil || firstA(r) != "10.0.0.9" {
		t.Fatalf("trusted balancer's client did not get its view: %v %v", r, err)
	}

	c = dialFrom(t, "127.0.0.2", ts.tcp)
	writeProxyHeader(t, c, "10.9.4.4")
	r, err = tcpAsk(c, q)
	c.Close()
	if err == nil {
		t.Fatalf("header from an untrusted peer was not refused; answer %s", firstA(r))
	}

	c = dialFrom(t, "127.0.0.2", ts.tcp)
	r, err = tcpAsk(c, q)
	c.Close()
	if err != nil || firstA(r) != "198.51.100.1" {
		t.Fatalf("plain client from an untrusted address: %v %v", r, err)
	}
}

// TestTCPPerClientCap: connections beyond the per-client cap from one
// address are closed at once, so a client from another address still gets
// a slot and an answer although the flood is larger than the global cap.
func TestTCPPerClientCap(t *testing.T) {
	const global, perClient, flood = 40, 8, 60
	ts := startServer(t, Config{MaxTCPConns: global, MaxTCPConnsPerClient: perClient, TCPIdleTimeout: time.Minute, ReadTimeout: time.Minute})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < flood; i++ {
		conns = append(conns, dialFrom(t, "127.0.0.1", ts.tcp))
	}
	// Every connection beyond the cap has been accepted and closed.
	waitFor(t, "the flood beyond the per-client cap to be closed", func() bool {
		return ts.Stats().TCPClientRejected.Load() >= flood-perClient
	})
	if got := ts.Stats().TCPClientRejected.Load(); got != flood-perClient {
		t.Fatalf("%d connections closed at the per-client cap, want %d", got, flood-perClient)
	}
	// The flooding address's first connections are served.
	if r, err := tcpAsk(conns[0], query("www.example.org.", dns.TypeA, false)); err != nil || len(r.Answer) != 1 {
		t.Fatalf("a connection within the cap: %v %v", r, err)
	}
	// Another address is served.
	for i := 0; i < 3; i++ {
		c := dialFrom(t, "127.0.0.2", ts.tcp)
		r, err := tcpAsk(c, query("www.example.org.", dns.TypeA, false))
		c.Close()
		if err != nil || len(r.Answer) != 1 {
			t.Fatalf("client from 127.0.0.2 locked out by a flood from 127.0.0.1: %v %v", r, err)
		}
	}
	// Closing a connection frees a slot for its client.
	for _, c := range conns[:perClient] {
		c.Close()
	}
	waitFor(t, "a slot for 127.0.0.1 again", func() bool {
		c := dialFrom(t, "127.0.0.1", ts.tcp)
		defer c.Close()
		r, err := tcpAsk(c, query("www.example.org.", dns.TypeA, false))
		return err == nil && len(r.Answer) == 1
	})
}

// TestTCPPerClientCapBehindProxy: behind a trusted balancer the cap counts
// the client its PROXY header names, not the balancer.
func TestTCPPerClientCapBehindProxy(t *testing.T) {
	const perClient = 4
	ts := startServer(t, Config{MaxTCPConnsPerClient: perClient, TCPIdleTimeout: time.Minute, ReadTimeout: time.Minute,
		ProxyProtocol: true, ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	ask := func(client string) error {
		c := dialFrom(t, "127.0.0.1", ts.tcp)
		conns = append(conns, c)
		writeProxyHeader(t, c, client)
		r, err := tcpAsk(c, query("www.example.org.", dns.TypeA, false))
		if err == nil && len(r.Answer) != 1 {
			err = errors.New(r.String())
		}
		return err
	}
	for i := 0; i < perClient; i++ {
		if err := ask("10.1.1.1"); err != nil {
			t.Fatalf("connection %d of 10.1.1.1 within the cap: %v", i, err)
		}
	}
	for i := 0; i < 3; i++ {
		if err := ask("10.1.1.1"); err == nil {
			t.Fatalf("connection beyond the cap of 10.1.1.1 served: %v", err)
		}
	}
	for i := 0; i < perClient; i++ {
		if err := ask("10.1.1.2"); err != nil {
			t.Fatalf("another client behind the same balancer: %v", err)
		}
	}
	if got := ts.Stats().TCPClientRejected.Load(); got != 3 {
		t.Fatalf("TCPClientRejected = %d, want 3", got)
	}
}

// blockingForwarder holds every Resolve until release is closed, as a
// slow upstream does.
type blockingForwarder struct {
	fakeForwarder
	entered chan struct{}
	release chan struct{}
}

func (f *blockingForwarder) Resolve(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	f.entered <- struct{}{}
	<-f.release
	return f.fakeForwarder.Resolve(ctx, req)
}

// TestShutdownDoesNotBlockAddrs: while Shutdown waits for a forwarded
// query stuck on a slow upstream, Addrs (which /healthz uses) answers.
func TestShutdownDoesNotBlockAddrs(t *testing.T) {
	fwd := &blockingForwarder{fakeForwarder: fakeForwarder{rules: map[string]bool{".": true}},
		entered: make(chan struct{}, 1), release: make(chan struct{})}
	s, err := New(Config{Store: zonestore.NewStore(), Forwarder: fwd, Listen: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, tcp := s.Addrs()
	replied := make(chan error, 1)
	go func() {
		m := query("slow.elsewhere.net.", dns.TypeA, false)
		m.RecursionDesired = true
		c := &dns.Client{Net: "tcp", Timeout: 30 * time.Second}
		_, _, err := c.Exchange(m, tcp[0].String())
		replied <- err
	}()
	<-fwd.entered
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// Shutdown has begun once the TCP listener is closed.
	waitFor(t, "the TCP listener to close", func() bool {
		c, err := net.DialTimeout("tcp", tcp[0].String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	addrs := make(chan int, 1)
	go func() {
		u, _ := s.Addrs()
		addrs <- len(u)
	}()
	select {
	case n := <-addrs:
		if n != 1 {
			t.Errorf("Addrs during shutdown: %d UDP addresses", n)
		}
	case <-time.After(10 * time.Second):
		close(fwd.release)
		t.Fatal("Addrs blocked while Shutdown waits for an in-flight query")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) before the in-flight query finished", err)
	default:
	}
	close(fwd.release)
	if err := <-replied; err != nil {
		t.Errorf("in-flight query not answered: %v", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestDefaultsAreFresh: the exported defaults are new slices on every call,
// so one caller's edit cannot change another server's ACL.
func TestDefaultsAreFresh(t *testing.T) {
	a := DefaultRecursionClients()
	a[0] = netip.MustParsePrefix("0.0.0.0/0")
	if b := DefaultRecursionClients(); b[0] == a[0] {
		t.Fatal("DefaultRecursionClients shares its backing array")
	}
	e := DefaultRRLExempt()
	e[0] = netip.MustParsePrefix("0.0.0.0/0")
	if slices.Contains(DefaultRRLExempt(), e[0]) {
		t.Fatal("DefaultRRLExempt shares its backing array")
	}
}
