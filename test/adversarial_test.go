package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	proxyproto "github.com/pires/go-proxyproto"

	"hybridns/test/refserver"
)

// The adversarial suite attacks a running binary the way issue 8 did and
// checks that the healthy path keeps answering throughout. It counts
// answers; it has no timing or throughput thresholds (deadlines only turn
// a hang into a failure). Other attacks (malicious upstream, zone
// directory) have their own files.

// healthyClient queries from its own loopback address over UDP and over
// fresh TCP connections until stopped, counting answers and failures.
type healthyClient struct {
	src                  string
	addr                 string
	udpOK, tcpOK, failed atomic.Int64
	lastErr              atomic.Value
	stop                 chan struct{}
	wg                   sync.WaitGroup
}

func startHealthy(t *testing.T, src, addr string) *healthyClient {
	h := &healthyClient{src: src, addr: addr, stop: make(chan struct{})}
	for _, netw := range []string{"udp", "tcp"} {
		h.wg.Add(1)
		go func(netw string) {
			defer h.wg.Done()
			var local net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
			if netw == "tcp" {
				local = &net.TCPAddr{IP: net.ParseIP(src)}
			}
			c := &dns.Client{Net: netw, Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}}
			for {
				select {
				case <-h.stop:
					return
				case <-time.After(2 * time.Millisecond): // pacing on a shared machine, not synchronization
				}
				m := new(dns.Msg)
				m.SetQuestion("www.e2e.test.", dns.TypeA)
				r, _, err := c.Exchange(m, addr) // a new TCP connection every time
				switch {
				case err == nil && firstA(r) == "192.0.2.1" && netw == "udp":
					h.udpOK.Add(1)
				case err == nil && firstA(r) == "192.0.2.1":
					h.tcpOK.Add(1)
				default:
					h.failed.Add(1)
					h.lastErr.Store(fmt.Sprintf("%s: %v %v", netw, err, r))
				}
			}
		}(netw)
	}
	return h
}

// answered returns how many queries have been answered over both transports.
func (h *healthyClient) answered() int64 { return h.udpOK.Load() + h.tcpOK.Load() }

// more waits until both transports have answered n more queries.
func (h *healthyClient) more(t *testing.T, what string, n int64) {
	t.Helper()
	u, c := h.udpOK.Load(), h.tcpOK.Load()
	eventually(t, 60*time.Second, fmt.Sprintf("%d more healthy answers over UDP and TCP (%s)", n, what), func() bool {
		return h.udpOK.Load() >= u+n && h.tcpOK.Load() >= c+n
	})
}

func (h *healthyClient) finish(t *testing.T) {
	t.Helper()
	close(h.stop)
	h.wg.Wait()
	t.Logf("healthy client %s: %d UDP and %d TCP answers, %d failures", h.src, h.udpOK.Load(), h.tcpOK.Load(), h.failed.Load())
	if h.failed.Load() != 0 {
		t.Errorf("the healthy path failed %d times; last: %v", h.failed.Load(), h.lastErr.Load())
	}
}

// tcpFlood keeps up to n connections open from src, replacing the oldest
// with a new one without pause, until stopped: a connection flood from one
// address. It sends nothing.
type tcpFlood struct {
	dialed atomic.Int64
	stop   chan struct{}
	done   chan struct{}
}

func startTCPFlood(src, addr string, n int) *tcpFlood {
	f := &tcpFlood{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		ring := make([]net.Conn, n)
		defer func() {
			for _, c := range ring {
				if c != nil {
					c.Close()
				}
			}
		}()
		for i := 0; ; i = (i + 1) % n {
			select {
			case <-f.stop:
				return
			default:
			}
			if ring[i] != nil {
				ring[i].Close()
			}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				ring[i] = nil
				continue
			}
			ring[i] = c
			f.dialed.Add(1)
		}
	}()
	return f
}

func (f *tcpFlood) end() { close(f.stop); <-f.done }

// proxiedAsk sends a PROXY v2 header naming client from src, then a
// recursive query; it returns the reply or the error (connection closed).
func proxiedAsk(t *testing.T, src, addr, client, name string) (*dns.Msg, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
		SourceAddr:      &net.TCPAddr{IP: net.ParseIP(client), Port: 40000},
		DestinationAddr: &net.TCPAddr{IP: net.ParseIP("10.9.0.53"), Port: 53}}
	if _, err := h.WriteTo(c); err != nil {
		return nil, err
	}
	co := &dns.Conn{Conn: c}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	return co.ReadMsg()
}

// TestAdversarial: while a healthy client on 127.0.0.2 queries over UDP
// and fresh TCP connections, attackers flood TCP from one address (more
// connections than the global cap), forge PROXY headers from an untrusted
// address, flood through the trusted balancer as one client, hold the
// HTTP endpoint's connections, and send cross-site control requests. The
// healthy client must never fail, and each attack must get nothing.
func TestAdversarial(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	dir, zones := writeZoneDir(t)
	up := upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 203.0.113.9")
		m.Answer = append(m.Answer, rr)
		w.WriteMsg(m)
	})
	const (
		globalCap = 300
		perClient = 16
		flood     = 1000
	)
	hyb, httpAddr := opsInstance(t, bin, fmt.Sprintf(`lame_duck: 0s
zone_dir: %s
forward_default: [%s]
allow_recursion: [10.9.0.0/16]
aws: {builtin_rules: false}
proxy_protocol: {enabled: true, trusted: [127.0.0.3/32]}
tcp: {max_connections: %d, max_connections_per_client: %d, idle_timeout: 60s}
`, dir, up, globalCap, perClient), zones)
	healthy := startHealthy(t, "127.0.0.2", hyb.Addr)
	healthy.more(t, "before any attack", 20)

	t.Run("TCP flood from one address", func(t *testing.T) {
		rejected0 := metric(t, httpAddr, `hybridns_server_events_total{event="tcp_rejected"}`)
		f := startTCPFlood("127.0.0.1", hyb.Addr, flood)
		defer f.end()
		// The flood has offered more connections than the global cap many
		// times over, and the server has turned them away...
		eventually(t, 60*time.Second, "the flood to be turned away", func() bool {
			return metric(t, httpAddr, `hybridns_server_events_total{event="tcp_rejected"}`)-rejected0 >= 3*flood
		})
		// ...while the healthy client keeps getting fresh TCP connections.
		healthy.more(t, "during the TCP flood", 200)
		rejected := metric(t, httpAddr, `hybridns_server_events_total{event="tcp_rejected"}`) - rejected0
		t.Logf("TCP flood: %d connections dialed from 127.0.0.1, %.0f turned away (per-client cap %d, global cap %d)", f.dialed.Load(), rejected, perClient, globalCap)
	})

	t.Run("forged PROXY headers", func(t *testing.T) {
		// Control: the trusted balancer's header is believed.
		if r, err := proxiedAsk(t, "127.0.0.3", hyb.Addr, "10.9.4.4", "www.example.net."); err != nil || firstA(r) != "203.0.113.9" {
			t.Fatalf("trusted balancer's client not served: %v %v", r, err)
		}
		refused := 0
		for i := 0; i < 50; i++ {
			r, err := proxiedAsk(t, "127.0.0.4", hyb.Addr, "10.9.4.4", "www.example.net.")
			if err == nil {
				t.Fatalf("a forged PROXY header from an untrusted address was answered: %v", r)
			}
			refused++
		}
		t.Logf("forged PROXY headers: %d of 50 refused", refused)
		healthy.more(t, "after forged headers", 20)
	})

	t.Run("flood through the balancer as one client", func(t *testing.T) {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		closed := 0
		for i := 0; i < 5*perClient; i++ {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
			c, err := d.Dial("tcp", hyb.Addr)
			if err != nil {
				t.Fatal(err)
			}
			h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
				SourceAddr: &net.TCPAddr{IP: net.ParseIP("10.9.9.9"), Port: 40000 + i}, DestinationAddr: &net.TCPAddr{IP: net.ParseIP("10.9.0.53"), Port: 53}}
			h.WriteTo(c)
			// Ask on it: within the client's share it is answered and
			// kept open; beyond, the server closes it.
			co := &dns.Conn{Conn: c}
			m := new(dns.Msg)
			m.SetQuestion("www.e2e.test.", dns.TypeA)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			co.WriteMsg(m)
			if _, err := co.ReadMsg(); err != nil {
				closed++
				c.Close()
				continue
			}
			held = append(held, c)
		}
		t.Logf("one client behind the balancer: %d connections held, %d closed", len(held), closed)
		if len(held) != perClient {
			t.Errorf("%d connections held for one client behind the balancer, want %d", len(held), perClient)
		}
		// Another client behind the same balancer is served.
		if r, err := proxiedAsk(t, "127.0.0.3", hyb.Addr, "10.9.4.5", "www.example.net."); err != nil || firstA(r) != "203.0.113.9" {
			t.Fatalf("another client behind the balancer: %v %v", r, err)
		}
		healthy.more(t, "during the proxied flood", 20)
	})

	t.Run("HTTP endpoint held and forged", func(t *testing.T) {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		// 300 keep-alive connections from one address, each after one
		// request: it keeps its share (16), the rest are closed.
		for i := 0; i < 300; i++ {
			c, err := net.Dial("tcp", httpAddr)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
			fmt.Fprintf(c, "GET /readyz HTTP/1.1\r\nHost: %s\r\n\r\n", httpAddr)
		}
		for _, c := range held {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				io.ReadAll(resp.Body)
				resp.Body.Close()
			}
		}
		// Health checks from elsewhere still answer.
		cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
		for i := 0; i < 5; i++ {
			resp, err := cl.Get("http://" + httpAddr + "/healthz")
			if err != nil {
				t.Fatalf("/healthz while the endpoint is flooded: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("/healthz: %d", resp.StatusCode)
			}
		}
		// A page on another site cannot make a browser reload us.
		for _, hdr := range []map[string]string{
			{"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"},
			{"Origin": "null"},
			{"Sec-Fetch-Site": "cross-site"},
		} {
			req, _ := http.NewRequest("POST", "http://"+httpAddr+"/reload", strings.NewReader(""))
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := cl.Do(req) // from 127.0.0.2: 127.0.0.1 has used its share
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("cross-site POST /reload %v: %d, want 403", hdr, resp.StatusCode)
			}
		}
		healthy.more(t, "during the HTTP flood", 20)
	})

	healthy.finish(t)
}
