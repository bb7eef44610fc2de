package fwdtest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Upstream starts a miekg UDP server (no TCP) on 127.0.0.1 running h and
// counts the queries other than health probes (". NS"); it stops when the
// test ends.
func Upstream(tb testing.TB, h dns.HandlerFunc) (addr string, queries *atomic.Int64) {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	n := new(atomic.Int64)
	var started sync.WaitGroup
	started.Add(1)
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: started.Done, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if r.Question[0].Name != "." {
			n.Add(1)
		}
		h(w, r)
	})}
	go srv.ActivateAndServe()
	started.Wait()
	tb.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String(), n
}

// WaitFor polls cond until it holds, failing the test after 10 s (a
// failure deadline, not a timing threshold).
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
