package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestWriteMissQueriesUnique(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteMissQueries(&a, "bench.example.", "hybridns1measured", 5000, 1); err != nil {
		t.Fatal(err)
	}
	if err := WriteMissQueries(&b, "bench.example.", "unbound1measured", 5000, 1); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, buf := range []*bytes.Buffer{&a, &b} {
		sc := bufio.NewScanner(buf)
		n := 0
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 || f[1] != "A" || !dns.IsSubDomain("miss.bench.example.", f[0]) {
				t.Fatalf("bad line %q", sc.Text())
			}
			if seen[f[0]] {
				t.Fatalf("name %s repeated (within or across tags)", f[0])
			}
			seen[f[0]] = true
			n++
		}
		if n != 5000 {
			t.Fatalf("%d lines, want 5000", n)
		}
	}
	for _, tag := range []string{"", "a.b", "a b"} {
		if err := WriteMissQueries(&a, "bench.example.", tag, 1, 1); err == nil {
			t.Errorf("tag %q accepted", tag)
		}
	}
}

func TestWriteScaleZone(t *testing.T) {
	for _, records := range []int{10, 11, 12, 1000, 20001} {
		var buf bytes.Buffer
		last, err := WriteScaleZone(&buf, "bench.example.", records, 7)
		if err != nil {
			t.Fatal(err)
		}
		idx := parseZone(t, buf.Bytes(), "bench.example.")
		n := 0
		zp := dns.NewZoneParser(bytes.NewReader(buf.Bytes()), "bench.example.", "scale.zone")
		var final dns.RR
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			n++
			final = rr
		}
		if err := zp.Err(); err != nil {
			t.Fatal(err)
		}
		if n != records {
			t.Errorf("records=%d: zone has %d records", records, n)
		}
		if final.Header().Name != last || final.Header().Rrtype != dns.TypeA {
			t.Errorf("records=%d: last record %s, want an A for %s", records, final, last)
		}
		if !idx.types["bench.example."][dns.TypeSOA] || !idx.types["bench.example."][dns.TypeNS] {
			t.Errorf("records=%d: apex without SOA/NS", records)
		}
	}
}

// TestWaitAnswer runs the poller against a server that first refuses,
// then answers: it must keep asking and return only the real answer.
func TestWaitAnswer(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The first query is refused; miekg serves each datagram on its own
	// goroutine, so who is first is decided by one CompareAndSwap.
	var refused atomic.Bool
	var queries atomic.Int64
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(q)
		if refused.CompareAndSwap(false, true) {
			m.Rcode = dns.RcodeServerFailure // "still loading"
		} else {
			rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.1")
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	defer srv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := time.Now()
	at, err := WaitAnswer(ctx, pc.LocalAddr().String(), "last.bench.example.", dns.TypeA, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if at.Before(before) {
		t.Errorf("answer time %v before the start %v", at, before)
	}
	if n := queries.Load(); n < 2 {
		t.Errorf("%d queries: the SERVFAIL was taken for the answer", n)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	dead, _ := net.ListenPacket("udp", "127.0.0.1:0") // bound, never answers
	defer dead.Close()
	if _, err := WaitAnswer(ctx2, dead.LocalAddr().String(), "x.bench.example.", dns.TypeA, 5*time.Millisecond); err == nil {
		t.Error("WaitAnswer returned without an answer")
	}
}
