package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"hybridns/server"
	"hybridns/zonestore"
)

// testDaemon is a daemon with a server that is not listening, enough for
// the HTTP endpoint (no Route 53 zones: a passing POST /sync gets 404).
func testDaemon(t *testing.T) *daemon {
	t.Helper()
	store := zonestore.NewStore()
	srv, err := server.New(server.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	return &daemon{log: slog.New(slog.DiscardHandler), level: new(slog.LevelVar), store: store, srv: srv, cfg: &Config{}}
}

// TestControlRefusesCrossSite: POST /reload and /sync refuse what a web
// page can make a browser send (forms, other origins, rebinding names), and
// accept a plain scripted request.
func TestControlRefusesCrossSite(t *testing.T) {
	d := testDaemon(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := serveHTTP(ln, d.mux(), d.log)
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	tests := []struct {
		name    string
		host    string
		headers map[string]string
		body    string
		want    int
	}{
		{name: "scripted, no body", want: http.StatusNotFound},
		{name: "json body", headers: map[string]string{"Content-Type": "application/json"}, body: "{}", want: http.StatusNotFound},
		{name: "same origin", headers: map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"}, want: http.StatusNotFound},
		{name: "localhost", host: "localhost:1", headers: map[string]string{"Origin": "http://localhost:1"}, want: http.StatusNotFound},
		{name: "form post", headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, want: http.StatusForbidden},
		{name: "multipart form", headers: map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, body: "--x--", want: http.StatusForbidden},
		{name: "text/plain", headers: map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, body: "x", want: http.StatusForbidden},
		{name: "other origin", headers: map[string]string{"Origin": "https://evil.example"}, want: http.StatusForbidden},
		{name: "null origin", headers: map[string]string{"Origin": "null"}, want: http.StatusForbidden},
		{name: "cross-site fetch", headers: map[string]string{"Sec-Fetch-Site": "cross-site"}, want: http.StatusForbidden},
		{name: "same-site fetch", headers: map[string]string{"Sec-Fetch-Site": "same-site"}, want: http.StatusForbidden},
		{name: "rebinding name", host: "rebind.evil.example:8053", headers: map[string]string{"Origin": "http://rebind.evil.example:8053"}, want: http.StatusForbidden},
	}
	for _, tc := range tests {
		for _, path := range []string{"/sync?zone=x.example", "/reload"} {
			if path == "/reload" && tc.want != http.StatusForbidden {
				continue // a passing reload would re-read a config this test has none of
			}
			t.Run(tc.name+" "+path, func(t *testing.T) {
				req, _ := http.NewRequest("POST", base+path, strings.NewReader(tc.body))
				if tc.body == "" {
					req.Body, req.ContentLength = nil, 0
				}
				if tc.host != "" {
					req.Host = tc.host
				}
				for k, v := range tc.headers {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, b)
				}
			})
		}
	}
}

// TestHTTPIdleConnectionsClosed: a keep-alive connection left idle is
// closed by the server (old: held for ever).
func TestHTTPIdleConnectionsClosed(t *testing.T) {
	old := httpLimits
	t.Cleanup(func() { httpLimits = old })
	httpLimits.idle = 100 * time.Millisecond
	d := testDaemon(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	hs := serveHTTP(ln, d.mux(), d.log)
	defer hs.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /readyz HTTP/1.1\r\nHost: %s\r\n\r\n", ln.Addr())
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // failure deadline
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle keep-alive connection not closed by the server: %v", err)
	}
}

// TestHTTPSlowHeadersClosed: a client that never finishes its headers
// (slowloris) is cut off.
func TestHTTPSlowHeadersClosed(t *testing.T) {
	old := httpLimits
	t.Cleanup(func() { httpLimits = old })
	httpLimits.readHeader = 100 * time.Millisecond
	d := testDaemon(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	hs := serveHTTP(ln, d.mux(), d.log)
	defer hs.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /readyz HTTP/1.1\r\nHost: x\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // failure deadline
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("half-sent request not cut off: %v (read %q)", err, b)
	}
}

// TestHTTPConnectionCap: beyond the cap a new connection is not served
// while the held ones are; it is served once one of them closes.
func TestHTTPConnectionCap(t *testing.T) {
	old := httpLimits
	t.Cleanup(func() { httpLimits = old })
	httpLimits.maxConns = 4
	d := testDaemon(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	hs := serveHTTP(ln, d.mux(), d.log)
	defer hs.Close()
	get := func(c net.Conn, br *bufio.Reader) error {
		fmt.Fprintf(c, "GET /readyz HTTP/1.1\r\nHost: %s\r\n\r\n", ln.Addr())
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.ReadAll(resp.Body)
		return resp.Body.Close()
	}
	type conn struct {
		net.Conn
		br *bufio.Reader
	}
	var held []conn
	for i := 0; i < httpLimits.maxConns; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, conn{c, bufio.NewReader(c)})
		if err := get(c, held[i].br); err != nil {
			t.Fatal(err)
		}
	}
	extra, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	answered := make(chan error, 1)
	go func() { answered <- get(extra, bufio.NewReader(extra)) }()
	// The held connections keep being served; the extra one waits.
	for _, h := range held {
		if err := get(h.Conn, h.br); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-answered:
		t.Fatalf("connection beyond the cap served (%v)", err)
	default:
	}
	held[0].Close()
	if err := <-answered; err != nil {
		t.Fatalf("waiting connection not served after a slot freed: %v", err)
	}
}

// slowCloser is a forwarder whose Close waits, as one draining upstream
// exchanges does.
type slowCloser struct {
	forwarderCloser
	closing chan struct{}
	done    chan struct{}
}

func (f *slowCloser) Close() error {
	close(f.closing)
	<-f.done
	return nil
}

// TestCloseForwarderOutsideLock: the daemon lock is free while the
// forwarder closes (old: held across fwd.Close, blocking reloads).
func TestCloseForwarderOutsideLock(t *testing.T) {
	d := testDaemon(t)
	f := &slowCloser{closing: make(chan struct{}), done: make(chan struct{})}
	d.fwd = f
	closed := make(chan struct{})
	go func() { d.closeForwarder(); close(closed) }()
	<-f.closing
	if !d.mu.TryLock() {
		close(f.done)
		t.Fatal("daemon lock held while the forwarder closes")
	}
	d.mu.Unlock()
	close(f.done)
	<-closed
}

// TestHTTPPerClientCap: one address cannot take every slot: its
// connections beyond its share are closed, another address is served.
func TestHTTPPerClientCap(t *testing.T) {
	old := httpLimits
	t.Cleanup(func() { httpLimits = old })
	httpLimits.maxConns, httpLimits.maxConnsPerClient = 4, 2
	d := testDaemon(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	hs := serveHTTP(ln, d.mux(), d.log)
	defer hs.Close()
	get := func(src string) (net.Conn, error) {
		dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := dl.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second)) // failure deadline
		fmt.Fprintf(c, "GET /readyz HTTP/1.1\r\nHost: %s\r\n\r\n", ln.Addr())
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		return c, err
	}
	for i := 0; i < 2; i++ {
		c, err := get("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	c, err := get("127.0.0.1")
	c.Close()
	if err == nil {
		t.Fatal("a third connection from one address was served")
	}
	for i := 0; i < 2; i++ {
		c, err := get("127.0.0.2")
		if err != nil {
			t.Fatalf("another address locked out: %v", err)
		}
		defer c.Close()
	}
}
