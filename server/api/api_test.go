package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/server"
	"hybridns/zonestore"
	"hybridns/zonestore/dynupdate"
)

const testZone = `$ORIGIN corp.example.
@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@ 3600 IN NS ns1
ns1 300 IN A 192.0.2.53
www 300 IN A 192.0.2.1
www 300 IN A 192.0.2.2
mail 300 IN MX 10 mx1
txt 300 IN TXT "hello world"
cname 300 IN CNAME www
`

// memSource is a zone's data as a dynupdate.Source, like the writer's.
type memSource struct{ sets map[dynupdate.Key][]dns.RR }

func (m memSource) RRset(name string, t uint16) ([]dns.RR, bool) {
	s, ok := m.sets[dynupdate.Key{Name: name, Type: t}]
	return s, ok
}

func (m memSource) Types(name string) []uint16 {
	var out []uint16
	for k := range m.sets {
		if k.Name == name {
			out = append(out, k.Type)
		}
	}
	return out
}

// checkWriter runs plans against the test zone and checks that every
// change it would send is well-formed: one set per change, inside the
// zone, one name, type and TTL per set, each record printing and reading
// back as itself.
type checkWriter struct {
	t    testing.TB
	src  memSource
	sent [][]dynupdate.Change
}

func (w *checkWriter) Write(_ context.Context, wr Write) (WriteResult, error) {
	rc, changes, err := wr.Plan(w.src)
	if err != nil || rc != dns.RcodeSuccess {
		return WriteResult{Rcode: rc}, err
	}
	for _, c := range changes {
		if !zonestore.InZone(c.Name, wr.Zone) {
			w.t.Fatalf("change outside the zone: %s in %s", c.Name, wr.Zone)
		}
		for _, rr := range c.New {
			h := rr.Header()
			if h.Name != c.Name || h.Rrtype != c.Type || h.Ttl != c.New[0].Header().Ttl || h.Ttl > 1<<31-1 {
				w.t.Fatalf("change %s %s: record %s does not fit its set", c.Name, dns.TypeToString[c.Type], rr)
			}
			back, err := dns.NewRR(rr.String())
			if err != nil || !dns.IsDuplicate(back, rr) {
				w.t.Fatalf("record %q does not read back (%v)", rr.String(), err)
			}
		}
	}
	w.sent = append(w.sent, changes)
	if len(changes) == 0 {
		return WriteResult{Rcode: rc, Serial: 1}, nil
	}
	return WriteResult{Rcode: rc, Serial: 2, ChangeID: "C1"}, nil
}

func newTestHandler(t testing.TB) (*Handler, *checkWriter) {
	zp := zonestore.NewBuilder("corp.example.")
	zp.SetSource("route53:Z1")
	src := memSource{sets: map[dynupdate.Key][]dns.RR{}}
	p := dns.NewZoneParser(strings.NewReader(testZone), "corp.example.", "")
	for rr, ok := p.Next(); ok; rr, ok = p.Next() {
		if err := zp.Add(rr); err != nil {
			t.Fatal(err)
		}
		k := dynupdate.Key{Name: rr.Header().Name, Type: rr.Header().Rrtype}
		src.sets[k] = append(src.sets[k], rr)
	}
	if p.Err() != nil {
		t.Fatal(p.Err())
	}
	z, err := zp.Build()
	if err != nil {
		t.Fatal(err)
	}
	store := zonestore.NewStore()
	store.PutZone(zonestore.DefaultView, z)
	rule, err := server.ParseUpdateRule("grant admin zonesub ANY")
	if err != nil {
		t.Fatal(err)
	}
	w := &checkWriter{t: t, src: src}
	h := New(context.Background(), Config{Store: store, Writer: w,
		Tokens:         []Token{{Name: "admin.", SHA256: mustHash(t, HashToken("secret")), Policy: []server.UpdateRule{rule}}},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.200/32")}})
	return h, w
}

func mustHash(t testing.TB, s string) [32]byte {
	h, err := ParseTokenHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// FuzzAPI sends arbitrary methods, paths, query strings, bodies and
// precondition headers to the API (the mux itself, so a panic is not
// hidden by the handler's recover): every reply must be well-formed — JSON
// errors with a code and a message, dyndns2 answers from the protocol's
// list — and every change the writer is handed must be well-formed.
func FuzzAPI(f *testing.F) {
	f.Add("PUT", "/api/v1/zones/corp.example./records/www/A", `{"ttl":60,"values":["192.0.2.9"]}`, "")
	f.Add("PATCH", "/api/v1/zones/corp.example./records/www/A", `{"add":["192.0.2.9"],"remove":["192.0.2.1"]}`, `"x"`)
	f.Add("DELETE", "/api/v1/zones/corp.example./records/mail/MX", "", "*")
	f.Add("PUT", "/api/v1/zones/corp.example./records/txt/TXT", `{"values":["\"a\\\"b\" \"c\""]}`, "")
	f.Add("PUT", "/api/v1/zones/corp.example./records/@/MX", `{"ttl":4294967295,"values":["10 mx."]}`, "")
	f.Add("PUT", "/api/v1/zones/corp.example./records/x/CAA", `{"values":["0 issue \"ca.example\""]}`, "")
	f.Add("GET", "/api/v1/zones/corp.example./records?prefix=w&type=A&limit=1&cursor=AA", "", "")
	f.Add("GET", "/api/v1/zones/corp.example./records?glob=*.corp.example.&name=www", "", "")
	f.Add("GET", "/nic/update?hostname=www.corp.example,txt.corp.example&myip=192.0.2.5,2001:db8::5", "", "")
	f.Add("PUT", "/api/v1/zones/corp.example./records/www/A", `{"values":["192.0.2.9\n$INCLUDE /etc/passwd"]}`, "")
	f.Fuzz(func(t *testing.T, method, target, body, ifMatch string) {
		h, _ := newTestHandler(t)
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		req, err := http.NewRequest(method, "http://api"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.RemoteAddr = "192.0.2.200:1234"
		req.Header.Set("X-Forwarded-For", ifMatch)
		req.Header.Set("If-Match", ifMatch)
		req.Header.Set("Authorization", "Bearer secret")
		if strings.HasPrefix(req.URL.Path, "/nic/") {
			req.Header.Del("Authorization")
			req.SetBasicAuth("admin", "secret")
		}
		rec := httptest.NewRecorder()
		h.mux.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode >= 300 && res.StatusCode < 400 || res.StatusCode == http.StatusMethodNotAllowed && !strings.HasPrefix(req.URL.Path, "/api/") {
			return // the mux's own answers: an unclean path, /nic/update with another method
		}
		if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			var v map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatalf("%s %s: reply is not JSON: %q", method, target, rec.Body.String())
			}
			if res.StatusCode >= 400 && (v["code"] == "" || v["code"] == nil || v["message"] == "" || v["message"] == nil) {
				t.Fatalf("%s %s: error without code and message: %q", method, target, rec.Body.String())
			}
			return
		}
		if strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain; charset=utf-8") && (strings.HasPrefix(req.URL.Path, "/nic/update") || strings.HasPrefix(req.URL.Path, "/v3/update")) {
			for _, line := range strings.Split(strings.TrimSpace(rec.Body.String()), "\n") {
				word, _, _ := strings.Cut(line, " ")
				switch word {
				case "good", "nochg", "badauth", "notfqdn", "nohost", "numhost", "abuse", "dnserr", "911":
				default:
					t.Fatalf("dyndns2 answer %q is not in the protocol", line)
				}
			}
			return
		}
		// Anything else: the mux's own 405 for a known path, or a 404
		// outside the API's paths.
		// (and its redirect of an unclean path).
		switch {
		case res.StatusCode == http.StatusMethodNotAllowed, res.StatusCode == http.StatusNotFound && !strings.HasPrefix(req.URL.Path, "/api/"),
			res.StatusCode >= 300 && res.StatusCode < 400:
		default:
			t.Fatalf("%s %s: status %d with Content-Type %q: %q", method, target, res.StatusCode, res.Header.Get("Content-Type"), rec.Body.String())
		}
	})
}

func TestAuthLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newAuthLimiter(3, 30*time.Second)
	l.now = func() time.Time { return now }
	a := netip.MustParseAddr("2001:db8::1")
	b := netip.MustParseAddr("2001:db8::2") // same /64
	c := netip.MustParseAddr("2001:db8:1::1")
	for i := 0; i < 3; i++ {
		if l.blocked(a) {
			t.Fatalf("blocked after %d failures", i)
		}
		l.fail(a)
	}
	if !l.blocked(a) || !l.blocked(b) || l.blocked(c) {
		t.Fatalf("after 3 failures: a %v, same /64 %v, other /64 %v", l.blocked(a), l.blocked(b), l.blocked(c))
	}
	now = now.Add(10 * time.Second) // one failure forgiven
	if l.blocked(a) {
		t.Fatal("still blocked after one failure leaked out")
	}
	l.fail(a)
	if !l.blocked(a) {
		t.Fatal("not blocked again after another failure")
	}
}

func TestCaller(t *testing.T) {
	h, _ := newTestHandler(t)
	for _, c := range []struct{ peer, xff, want string }{
		{"192.0.2.7:1", "198.51.100.1", "192.0.2.7"},                   // untrusted peer: header ignored
		{"192.0.2.200:1", "198.51.100.1", "198.51.100.1"},              // trusted proxy
		{"192.0.2.200:1", "203.0.113.9, 198.51.100.1", "198.51.100.1"}, // only the hop the proxy added
		{"192.0.2.200:1", "198.51.100.1, 192.0.2.200", "198.51.100.1"}, // chained trusted proxies
		{"192.0.2.200:1", "garbage", "192.0.2.200"},
		{"[2001:db8::9]:1", "", "2001:db8::9"},
	} {
		r := httptest.NewRequest("GET", "/nic/update", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := h.caller(r).String(); got != c.want {
			t.Errorf("peer %s XFF %q: caller %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
}

func TestOwnerName(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{"@", "corp.example."}, {"www", "www.corp.example."}, {"WWW.corp.example", "www.corp.example."},
		{"www.corp.example.", "www.corp.example."}, {"a.b", "a.b.corp.example."}, {"www.other.example.", "error"},
		{"bad..name", "error"}, {"x y", "error"},
	} {
		got, err := ownerName(c.raw, "corp.example.")
		if err != nil {
			got = "error"
		}
		if got != c.want {
			t.Errorf("ownerName(%q) = %s, want %s", c.raw, got, c.want)
		}
	}
}

func TestPagingCoversEverySetOnce(t *testing.T) {
	h, _ := newTestHandler(t)
	seen := map[string]int{}
	cursor := ""
	for page := 0; page < 20; page++ {
		r := httptest.NewRequest("GET", "/api/v1/zones/corp.example./records?limit=2&cursor="+cursor, nil)
		r.Header.Set("Authorization", "Bearer secret")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var v struct {
			Records []RecordSet
			Next    string `json:"next_cursor"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || rec.Code != 200 {
			t.Fatalf("page %d: %d %s", page, rec.Code, rec.Body)
		}
		for _, s := range v.Records {
			seen[s.Name+" "+s.Type]++
		}
		if v.Next == "" {
			break
		}
		cursor = v.Next
	}
	want := []string{"corp.example. SOA", "corp.example. NS", "ns1.corp.example. A", "www.corp.example. A", "mail.corp.example. MX", "txt.corp.example. TXT", "cname.corp.example. CNAME"}
	if len(seen) != len(want) {
		t.Errorf("sets seen: %v", seen)
	}
	for _, k := range want {
		if seen[k] != 1 {
			t.Errorf("%s seen %d times: %v", k, seen[k], seen)
		}
	}
	_ = fmt.Sprint()
}

// TestLimitBehindProxy: behind a trusted proxy, failures count against the
// client the proxy names, not against the proxy (one guesser must not
// lock out every client behind it).
func TestLimitBehindProxy(t *testing.T) {
	h, _ := newTestHandler(t)
	call := func(xff, token string) int {
		r := httptest.NewRequest("GET", "/api/v1/zones", nil)
		r.RemoteAddr = "192.0.2.200:1234"
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	for i := 0; i < 10; i++ {
		if code := call("198.51.100.1", "guess"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	if code := call("198.51.100.1", "secret"); code != http.StatusTooManyRequests {
		t.Errorf("the guesser: %d, want 429", code)
	}
	if code := call("198.51.100.2", "secret"); code != http.StatusOK {
		t.Errorf("another client behind the same proxy: %d, want 200", code)
	}
}
