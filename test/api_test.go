package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"
	proxyproto "github.com/pires/go-proxyproto"

	"hybridns/test/r53fake"
	"hybridns/test/refserver"
)

// Fixed test tokens (the config holds only their SHA-256).
const (
	dhcpToken = "dhcp-token-0123456789abcdef"
	homeToken = "home-router-token-fedcba9876543210"
)

func sha(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

type apiEnv struct {
	f                    *r53fake.Fake
	pub, priv, rev, rev2 string // hosted zone IDs
	hyb                  *refserver.Server
	api, http            string // base URLs
	admin                string // token printed by `hybridns token`
	bin, cfg             string
}

// startAPIEnv runs the binary with the config shape: api_listen,
// api_tokens with update-policy rules, both reverse modes, two views.
func startAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	e := &apiEnv{bin: refserver.BuildHybridns(t), f: r53fake.New()}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETFAKE")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	fakeURL := e.f.Start(t)
	e.pub = e.f.CreateZone("corp.example", false)
	e.priv = e.f.CreateZone("corp.example", true, r53fake.VPC{ID: "vpc-prod", Region: "us-east-1"})
	e.rev = e.f.CreateZone("10.in-addr.arpa", false)
	e.rev2 = e.f.CreateZone("2.0.192.in-addr.arpa", false) // explicit data in a synthesized zone
	seed(t, e.f, e.pub,
		r53set("www.corp.example", "A", 300, "192.0.2.1"),
		r53set("web.corp.example", "A", 300, "192.0.2.10"),
		r53set("alias-b.corp.example", "A", 300, "192.0.2.11"),
		r53set("alias-a.corp.example", "A", 300, "192.0.2.11"), // same address: canonical order picks alias-a
		r53set("printer.corp.example", "A", 300, "192.0.2.20"),
		r53set("sub.corp.example", "A", 300, "192.0.2.64"),
		r53set("mail.corp.example", "MX", 3600, "10 mx1.corp.example."),
		r53set("txt.corp.example", "TXT", 300, `"v=spf1 -all"`),
		r53set("cname.corp.example", "CNAME", 300, "www.corp.example."),
		r53set("app.corp.example", "A", 300, "10.1.2.3"),
		r53set("old.corp.example", "TXT", 300, `"remove me"`),
		types.ResourceRecordSet{Name: aws.String("lb.corp.example"), Type: "A",
			AliasTarget: &types.AliasTarget{DNSName: aws.String("www.corp.example."), HostedZoneId: aws.String(e.pub)}},
	)
	seed(t, e.f, e.priv,
		r53set("intranet.corp.example", "A", 60, "192.0.2.10"),
	)
	seed(t, e.f, e.rev,
		r53set("3.2.1.10.in-addr.arpa", "PTR", 300, "app.corp.example."),
		r53set("9.9.9.10.in-addr.arpa", "PTR", 300, "ext.other.example."),
	)
	seed(t, e.f, e.rev2,
		r53set("20.2.0.192.in-addr.arpa", "PTR", 300, "printer.floor3.other.example."),
		r53set("64.2.0.192.in-addr.arpa", "NS", 300, "ns.delegated.example."),
	)
	out, code := runCmd(t, "", e.bin, "token", "admin")
	m := regexp.MustCompile(`(?m)^token: (\S+)\ntoken_sha256: ([0-9a-f]{64})$`).FindStringSubmatch(out)
	if code != 0 || m == nil || sha(m[1]) != m[2] {
		t.Fatalf("hybridns token: exit %d, output %q: want a token and its SHA-256", code, out)
	}
	e.admin = m[1]
	dir := t.TempDir()
	apiPort, _ := refserver.FreePort()
	httpPort, _ := refserver.FreePort()
	e.api = fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	e.http = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	e.cfg = filepath.Join(dir, "hybridns.yaml")
	os.WriteFile(e.cfg, []byte(fmt.Sprintf(`
http_listen: 127.0.0.1:%d
lame_duck: 0s
api_listen: 127.0.0.1:%d
api_tokens:
  - {name: admin, token_sha256: "%s", policy: ["grant admin zonesub ANY"]}
  - {name: dhcp, token_sha256: "%s", policy: ["grant dhcp subdomain dyn.corp.example. A AAAA PTR"]}
  - name: home-router
    token_sha256: "%s"
    policy: ["grant home-router name home.dyn.corp.example. A AAAA"]
api_trusted_proxies: [127.0.0.3/32]
api_proxy_protocol: true
tsig_keys: [{name: ddns-key, algorithm: hmac-sha256, secret: "%s"}]
update_policy: {corp.example.: ["grant ddns-key zonesub ANY"]}
views:
  - name: prod
    clients: [127.0.0.2/32]
    vpcs: [vpc-prod]
reverse:
  - {zone: 2.0.192.in-addr.arpa., from: [corp.example.]}                   # synthesized
  - {zone: 2.0.192.in-addr.arpa., from: [corp.example.], view: prod}
  - {zone: 10.in-addr.arpa., from: [corp.example.], mode: route53, route53_zone: %s}
route53:
  zones: [%s, %s, %s, %s]
  endpoint: %s
  interval: 1h
  rps: 50
  burst: 20
`, httpPort, apiPort, sha(e.admin), sha(dhcpToken), sha(homeToken), ddnsSecret, e.rev, e.pub, e.priv, e.rev, e.rev2, fakeURL)), 0o644)
	e.hyb = refserver.StartHybridnsArgs(t, e.bin, []refserver.Zone{{Origin: "corp.example."}}, "--config", e.cfg)
	eventually(t, 10*time.Second, "ready and API up", func() bool {
		code, _ := httpStatus(t, "GET", e.http+"/readyz")
		c2, _, _ := e.do(t, "GET", "/api/v1/zones", e.admin, "", nil)
		return code == 200 && c2 == 200
	})
	return e
}

// do sends one API request; body "" sends none. It returns the status,
// headers and the decoded JSON body.
func (e *apiEnv) do(t *testing.T, method, path, token, body string, hdr map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	return doFrom(t, "", method, e.api+path, token, body, hdr)
}

func doFrom(t *testing.T, src, method, u, token, body string, hdr map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, u, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := clientFrom(src).Do(req)
	if err != nil {
		return 0, nil, map[string]any{"error": err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil && len(raw) > 0 {
		out["raw"] = string(raw)
	}
	return resp.StatusCode, resp.Header, out
}

// clientFrom is an HTTP client whose connections come from src (a
// loopback address; "" for the default).
func clientFrom(src string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func changes(f *r53fake.Fake) int { return f.Calls("ChangeResourceRecordSets") }

// settled waits until no accepted change is waiting for INSYNC, so no
// GetChange poll is due.
func (e *apiEnv) settled(t *testing.T) {
	t.Helper()
	eventually(t, 10*time.Second, "no pending changes", func() bool {
		code, body := httpStatus(t, "GET", e.http+"/changes")
		return code == 200 && strings.Contains(body, `"pending":[]`)
	})
}

// ptr asks for the PTR of addr from src and returns the target, or the
// rcode (with "ref" for a referral); it also checks AA and the SOA of a
// negative answer.
func ptr(t *testing.T, src, server, addr string) string {
	t.Helper()
	rev, _ := dns.ReverseAddr(addr)
	r := askFrom(t, src, server, rev, dns.TypePTR)
	for _, rr := range r.Answer {
		if p, ok := rr.(*dns.PTR); ok {
			if !r.Authoritative {
				t.Errorf("PTR %s from %s: not authoritative", addr, src)
			}
			return p.Ptr
		}
	}
	if len(r.Ns) > 0 {
		if _, ok := r.Ns[0].(*dns.NS); ok {
			return "ref"
		}
		if _, ok := r.Ns[0].(*dns.SOA); !ok || !r.Authoritative {
			t.Errorf("negative PTR answer for %s without SOA or AA: %v", addr, r)
		}
	}
	return dns.RcodeToString[r.Rcode]
}

// TestAPIRecords drives every verb of the records API against the binary
// and the Route 53 fake: each success checked in the fake and in DNS
// answers right after the reply, each error checked to have left the fake
// untouched (no ChangeResourceRecordSets at all).
func TestAPIRecords(t *testing.T) {
	e := startAPIEnv(t)
	admin := e.admin

	t.Run("zones", func(t *testing.T) {
		code, _, body := e.do(t, "GET", "/api/v1/zones", admin, "", nil)
		if code != 200 {
			t.Fatalf("GET /zones: %d %v", code, body)
		}
		zones, _ := json.Marshal(body["zones"])
		var list []map[string]any
		json.Unmarshal(zones, &list)
		has := func(zone, view, source string) bool {
			for _, z := range list {
				if z["zone"] == zone && z["view"] == view && z["source"] == source && z["serial"].(float64) > 0 {
					return true
				}
			}
			return false
		}
		for _, w := range [][3]string{{"corp.example.", "", "route53:" + e.pub}, {"corp.example.", "prod", "route53:" + e.priv},
			{"2.0.192.in-addr.arpa.", "", "reverse:synthesized"}, {"2.0.192.in-addr.arpa.", "prod", "reverse:synthesized"}, {"10.in-addr.arpa.", "", "route53:" + e.rev}} {
			if !has(w[0], w[1], w[2]) {
				t.Errorf("GET /zones lacks %v: %s", w, zones)
			}
		}
		if !strings.Contains(string(zones), `"last_sync":"`) {
			t.Errorf("GET /zones: no last_sync: %s", zones)
		}
	})

	type step struct {
		name         string
		method, path string
		token        string
		body         string
		hdr          map[string]string
		status       int
		code         string // error code expected, "" for success
		msg          string // part of the error message (names the record)
		fake         [][3]string
		answer       [][3]string // name, type, want (from 127.0.0.1)
	}
	var etag string
	steps := []step{
		{name: "no token", method: "PUT", path: "/api/v1/zones/corp.example./records/www/A", body: `{"ttl":60,"values":["192.0.2.99"]}`,
			status: 401, code: "unauthorized", fake: [][3]string{{"www.corp.example.", "A", "300 192.0.2.1"}}},
		{name: "bad token", method: "PUT", path: "/api/v1/zones/corp.example./records/www/A", token: "not-a-token", body: `{"ttl":60,"values":["192.0.2.99"]}`,
			status: 401, code: "unauthorized", fake: [][3]string{{"www.corp.example.", "A", "300 192.0.2.1"}}},
		{name: "policy violation: name outside the grant", method: "PUT", path: "/api/v1/zones/corp.example./records/www/A", token: dhcpToken, body: `{"ttl":60,"values":["192.0.2.99"]}`,
			status: 403, code: "forbidden", msg: "www.corp.example. A", fake: [][3]string{{"www.corp.example.", "A", "300 192.0.2.1"}}},
		{name: "policy violation: type outside the grant", method: "PUT", path: "/api/v1/zones/corp.example./records/h1.dyn/TXT", token: dhcpToken, body: `{"values":["\"x\""]}`,
			status: 403, code: "forbidden", msg: "h1.dyn.corp.example. TXT", fake: [][3]string{{"h1.dyn.corp.example.", "TXT", ""}}},
		{name: "unknown zone", method: "PUT", path: "/api/v1/zones/nowhere.example./records/www/A", token: admin, body: `{"values":["192.0.2.99"]}`,
			status: 404, code: "unknown_zone", msg: "nowhere.example."},
		{name: "malformed JSON", method: "PUT", path: "/api/v1/zones/corp.example./records/www/A", token: admin, body: `{"ttl":60,"values":["192.0.2.99"]`,
			status: 400, code: "bad_json", msg: "www.corp.example. A", fake: [][3]string{{"www.corp.example.", "A", "300 192.0.2.1"}}},
		{name: "unknown JSON field", method: "PUT", path: "/api/v1/zones/corp.example./records/www/A", token: admin, body: `{"ttl":60,"value":["192.0.2.99"]}`,
			status: 400, code: "bad_json", msg: "value"},
		{name: "bad value", method: "PUT", path: "/api/v1/zones/corp.example./records/www/A", token: admin, body: `{"values":["192.0.2.999"]}`,
			status: 400, code: "bad_value", msg: "192.0.2.999"},
		{name: "name outside the zone", method: "PUT", path: "/api/v1/zones/corp.example./records/www.other.example./A", token: admin, body: `{"values":["192.0.2.9"]}`,
			status: 400, code: "bad_name", msg: "not in zone"},
		{name: "PUT replaces the set", method: "PUT", path: "/api/v1/zones/corp.example./records/www/A", token: admin, body: `{"ttl":120,"values":["192.0.2.5","192.0.2.6"]}`,
			status: 200, fake: [][3]string{{"www.corp.example.", "A", "120 192.0.2.5,192.0.2.6"}}, answer: [][3]string{{"www.corp.example.", "A", "120 192.0.2.5,192.0.2.6"}}},
		{name: "PUT creates a set (dhcp token, in its grant)", method: "PUT", path: "/api/v1/zones/corp.example/records/h1.dyn.corp.example/AAAA", token: dhcpToken, body: `{"ttl":60,"values":["2001:db8::1"]}`,
			status: 201, fake: [][3]string{{"h1.dyn.corp.example.", "AAAA", "60 2001:db8::1"}}, answer: [][3]string{{"h1.dyn.corp.example.", "AAAA", "60 2001:db8::1"}}},
		{name: "PUT TXT", method: "PUT", path: "/api/v1/zones/corp.example./records/txt/TXT", token: admin, body: `{"ttl":300,"values":["\"hello world\"","\"a\\\"b\""]}`,
			status: 200, fake: [][3]string{{"txt.corp.example.", "TXT", `300 "a\"b","hello world"`}}},
		{name: "PATCH adds and removes single values", method: "PATCH", path: "/api/v1/zones/corp.example./records/www/A", token: admin, body: `{"add":["192.0.2.7"],"remove":["192.0.2.5"]}`,
			status: 200, fake: [][3]string{{"www.corp.example.", "A", "120 192.0.2.6,192.0.2.7"}}, answer: [][3]string{{"www.corp.example.", "A", "120 192.0.2.6,192.0.2.7"}}},
		{name: "PATCH changes the TTL", method: "PATCH", path: "/api/v1/zones/corp.example./records/www/A", token: admin, body: `{"ttl":90}`,
			status: 200, fake: [][3]string{{"www.corp.example.", "A", "90 192.0.2.6,192.0.2.7"}}},
		{name: "PATCH with a bad body", method: "PATCH", path: "/api/v1/zones/corp.example./records/www/A", token: admin, body: `[]`,
			status: 400, code: "bad_json", fake: [][3]string{{"www.corp.example.", "A", "90 192.0.2.6,192.0.2.7"}}},
		{name: "conflicting ETag", method: "PUT", path: "/api/v1/zones/corp.example./records/www/A", token: admin, body: `{"values":["192.0.2.8"]}`,
			hdr: map[string]string{"If-Match": `"0123456789abcdef01234567"`}, status: 412, code: "precondition_failed", msg: "www.corp.example. A",
			fake: [][3]string{{"www.corp.example.", "A", "90 192.0.2.6,192.0.2.7"}}},
		{name: "If-None-Match * on an existing set", method: "PUT", path: "/api/v1/zones/corp.example./records/www/A", token: admin, body: `{"values":["192.0.2.8"]}`,
			hdr: map[string]string{"If-None-Match": `*`}, status: 412, code: "precondition_failed"},
		{name: "CNAME next to other data", method: "PUT", path: "/api/v1/zones/corp.example./records/www/CNAME", token: admin, body: `{"values":["web.corp.example."]}`,
			status: 409, code: "conflict", msg: "www.corp.example. CNAME", fake: [][3]string{{"www.corp.example.", "CNAME", ""}}},
		{name: "alias set is not overwritten", method: "PUT", path: "/api/v1/zones/corp.example./records/lb/A", token: admin, body: `{"values":["192.0.2.8"]}`,
			status: 422, code: "refused", msg: "lb.corp.example. A", fake: [][3]string{{"lb.corp.example.", "A", "ALIAS www.corp.example."}}},
		{name: "DELETE needs no old values", method: "DELETE", path: "/api/v1/zones/corp.example./records/mail/MX", token: admin,
			status: 200, fake: [][3]string{{"mail.corp.example.", "MX", ""}}, answer: [][3]string{{"mail.corp.example.", "MX", "NXDOMAIN"}}},
		{name: "DELETE of a missing set", method: "DELETE", path: "/api/v1/zones/corp.example./records/mail/MX", token: admin,
			status: 404, code: "not_found", msg: "mail.corp.example. MX"},
		{name: "DELETE by policy violation", method: "DELETE", path: "/api/v1/zones/corp.example./records/txt/TXT", token: dhcpToken,
			status: 403, code: "forbidden", fake: [][3]string{{"txt.corp.example.", "TXT", `300 "a\"b","hello world"`}}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before := changes(e.f)
			code, hdr, body := e.do(t, s.method, s.path, s.token, s.body, s.hdr)
			if code != s.status {
				t.Fatalf("%s %s: status %d, want %d: %v", s.method, s.path, code, s.status, body)
			}
			if s.code != "" {
				if body["code"] != s.code || !strings.Contains(fmt.Sprint(body["message"]), s.msg) {
					t.Errorf("error body %v: want code %q and a message naming %q", body, s.code, s.msg)
				}
				if hdr.Get("Content-Type") != "application/json" {
					t.Errorf("error Content-Type %q", hdr.Get("Content-Type"))
				}
				if n := changes(e.f) - before; n != 0 {
					t.Errorf("a failed request made %d ChangeResourceRecordSets calls", n)
				}
			} else if n := changes(e.f) - before; n != 1 {
				t.Errorf("%d ChangeResourceRecordSets calls, want exactly 1", n)
			}
			for _, c := range s.fake {
				if got := fakeSet(e.f, e.pub, c[0], c[1]); got != c[2] {
					t.Errorf("fake %s %s = %q, want %q", c[0], c[1], got, c[2])
				}
			}
			for _, c := range s.answer {
				if got := answerSet(t, e.hyb.Addr, c[0], dns.StringToType[c[1]]); got != c[2] {
					t.Errorf("answer %s %s = %q right after the reply, want %q", c[0], c[1], got, c[2])
				}
			}
		})
	}

	t.Run("error matrix", func(t *testing.T) {
		// Every verb × every error class: the reply names the class and
		// the set, and Route 53 sees nothing.
		wwwBefore := fakeSet(e.f, e.pub, "www.corp.example.", "A")
		bodies := map[string]string{"PUT": `{"ttl":60,"values":["192.0.2.99"]}`, "PATCH": `{"add":["192.0.2.99"]}`, "DELETE": ""}
		for _, verb := range []string{"PUT", "PATCH", "DELETE"} {
			path := "/api/v1/zones/corp.example./records/www/A"
			cases := []struct {
				what, token, path, body string
				hdr                     map[string]string
				status                  int
				code                    string
			}{
				{"bad token", "wrong-token", path, bodies[verb], nil, 401, "unauthorized"},
				{"policy violation", dhcpToken, path, bodies[verb], nil, 403, "forbidden"},
				{"unknown zone", admin, "/api/v1/zones/unknown.example./records/www/A", bodies[verb], nil, 404, "unknown_zone"},
				{"conflicting ETag", admin, path, bodies[verb], map[string]string{"If-Match": `"ffffffffffffffffffffffff"`}, 412, "precondition_failed"},
			}
			if verb != "DELETE" {
				cases = append(cases, struct {
					what, token, path, body string
					hdr                     map[string]string
					status                  int
					code                    string
				}{"malformed JSON", admin, path, `{"values":`, nil, 400, "bad_json"})
			}
			for _, c := range cases {
				before := changes(e.f)
				code, _, body := e.do(t, verb, c.path, c.token, c.body, c.hdr)
				if code != c.status || body["code"] != c.code || body["message"] == "" {
					t.Errorf("%s %s: %d %v, want %d %s", verb, c.what, code, body, c.status, c.code)
				}
				if c.status != 401 && c.status != 404 && !strings.Contains(fmt.Sprint(body["message"]), "www.corp.example. A") {
					t.Errorf("%s %s: message does not name the record: %v", verb, c.what, body["message"])
				}
				if changes(e.f) != before || fakeSet(e.f, e.pub, "www.corp.example.", "A") != wwwBefore {
					t.Errorf("%s %s changed Route 53", verb, c.what)
				}
			}
		}
		for _, c := range []struct {
			what, token, path string
			status            int
		}{
			{"list: bad token", "wrong-token", "/api/v1/zones/corp.example./records", 401},
			{"list: unknown zone", admin, "/api/v1/zones/unknown.example./records", 404},
			{"get: unknown set", admin, "/api/v1/zones/corp.example./records/nothing/A", 404},
		} {
			if code, _, body := e.do(t, "GET", c.path, c.token, "", nil); code != c.status || body["code"] == nil {
				t.Errorf("%s: %d %v", c.what, code, body)
			}
		}
		if code, _, body := e.do(t, "PATCH", "/api/v1/zones/corp.example./records/nothing/A", admin, `{"remove":["192.0.2.1"]}`, nil); code != 404 || body["code"] != "not_found" {
			t.Errorf("PATCH removing from a missing set: %d %v", code, body)
		}
	})

	t.Run("ETag round trip", func(t *testing.T) {
		code, hdr, body := e.do(t, "GET", "/api/v1/zones/corp.example./records/www/A", admin, "", nil)
		etag = hdr.Get("ETag")
		if code != 200 || etag == "" || body["etag"] != etag {
			t.Fatalf("GET set: %d etag %q %v", code, etag, body)
		}
		before := changes(e.f)
		code, hdr, body = e.do(t, "PUT", "/api/v1/zones/corp.example./records/www/A", admin, `{"ttl":90,"values":["192.0.2.8"]}`, map[string]string{"If-Match": etag})
		if code != 200 || changes(e.f)-before != 1 || fakeSet(e.f, e.pub, "www.corp.example.", "A") != "90 192.0.2.8" {
			t.Fatalf("PUT with the current ETag: %d %v; fake %q", code, body, fakeSet(e.f, e.pub, "www.corp.example.", "A"))
		}
		// The old ETag is stale now: a second writer that read before loses.
		code, _, body = e.do(t, "PATCH", "/api/v1/zones/corp.example./records/www/A", admin, `{"add":["192.0.2.9"]}`, map[string]string{"If-Match": etag})
		if code != 412 || body["code"] != "precondition_failed" || fakeSet(e.f, e.pub, "www.corp.example.", "A") != "90 192.0.2.8" {
			t.Fatalf("PATCH with a stale ETag: %d %v", code, body)
		}
		if newTag := hdr.Get("ETag"); newTag == etag || newTag == "" {
			t.Errorf("ETag did not change with the set: %q", newTag)
		}
	})

	t.Run("same data is no change", func(t *testing.T) {
		before := changes(e.f)
		code, _, body := e.do(t, "PUT", "/api/v1/zones/corp.example./records/www/A", admin, `{"ttl":90,"values":["192.0.2.8"]}`, nil)
		if code != 200 || changes(e.f) != before {
			t.Fatalf("PUT of the same set: %d %v, %d Route 53 calls", code, body, changes(e.f)-before)
		}
	})

	t.Run("listing and search", func(t *testing.T) {
		code, _, body := e.do(t, "GET", "/api/v1/zones/corp.example./records?type=A&prefix=alias-", admin, "", nil)
		recs, _ := json.Marshal(body["records"])
		if code != 200 || !strings.Contains(string(recs), "alias-a.corp.example.") || !strings.Contains(string(recs), "alias-b.corp.example.") || strings.Contains(string(recs), "www.") {
			t.Fatalf("prefix search: %d %s", code, recs)
		}
		code, _, body = e.do(t, "GET", "/api/v1/zones/corp.example./records?glob=*.dyn.corp.example.", admin, "", nil)
		recs, _ = json.Marshal(body["records"])
		if code != 200 || !strings.Contains(string(recs), `"h1.dyn.corp.example."`) {
			t.Fatalf("glob search: %d %s", code, recs)
		}
		if code, hdr, body := e.do(t, "POST", "/api/v1/zones/corp.example./records/www/A", admin, "{}", nil); code != 405 || body["code"] != "method_not_allowed" || !strings.Contains(hdr.Get("Allow"), "PATCH") {
			t.Errorf("POST on a set: %d %v", code, body)
		}
		for _, q := range []string{"type=BOGUS", "limit=0", "limit=x", "cursor=!!", "glob=[", "name=bad..name"} {
			code, _, body := e.do(t, "GET", "/api/v1/zones/corp.example./records?"+q, admin, "", nil)
			if code != 400 || body["code"] == nil || body["message"] == nil {
				t.Errorf("?%s: %d %v, want a 400 JSON error", q, code, body)
			}
		}
	})

	t.Run("tokens change on reload", func(t *testing.T) {
		const late = "late-token-0000000000000000"
		if code, _, _ := e.do(t, "GET", "/api/v1/zones", late, "", nil); code != 401 {
			t.Fatalf("unknown token: %d", code)
		}
		cfg := mustRead(t, e.cfg)
		cfg = strings.Replace(cfg, "api_tokens:\n", "api_tokens:\n  - {name: late, token_sha256: \""+sha(late)+"\", policy: []}\n", 1)
		writeAtomic(t, e.cfg, cfg)
		if code, body := httpStatus(t, "POST", e.http+"/reload"); code != 200 {
			t.Fatalf("reload: %d %s", code, body)
		}
		if code, _, body := e.do(t, "GET", "/api/v1/zones", late, "", nil); code != 200 {
			t.Fatalf("new token after reload: %d %v", code, body)
		}
	})

	t.Run("failed authentication is rate-limited per client", func(t *testing.T) {
		u := e.api + "/api/v1/zones"
		for i := 0; i < 10; i++ {
			if code, _, _ := doFrom(t, "127.0.0.9", "GET", u, "wrong", "", nil); code != 401 {
				t.Fatalf("failure %d: status %d", i, code)
			}
		}
		code, hdr, body := doFrom(t, "127.0.0.9", "GET", u, admin, "", nil)
		if code != 429 || body["code"] != "rate_limited" || hdr.Get("Retry-After") == "" {
			t.Fatalf("after 10 failures a good token from the same client: %d %v, want 429", code, body)
		}
		if code, _, _ := doFrom(t, "127.0.0.8", "GET", u, admin, "", nil); code != 200 {
			t.Fatalf("another client is not limited: %d", code)
		}
	})
}

// TestAPIReverse: synthesized PTRs per view, a forward change through the
// API visible in the reverse answer at once, explicit and delegated PTRs
// winning, and write-through to a Route 53 reverse zone with the
// reconcile command.
func TestAPIReverse(t *testing.T) {
	e := startAPIEnv(t)
	addr := e.hyb.Addr
	eventually(t, 5*time.Second, "reverse zone synthesized", func() bool { return ptr(t, "127.0.0.1", addr, "192.0.2.10") == "web.corp.example." })

	t.Run("two views", func(t *testing.T) {
		for _, c := range []struct{ src, ip, want string }{
			{"127.0.0.1", "192.0.2.10", "web.corp.example."},
			{"127.0.0.2", "192.0.2.10", "intranet.corp.example."},
			{"127.0.0.1", "192.0.2.11", "alias-a.corp.example."}, // several names: the first in canonical order
			{"127.0.0.1", "192.0.2.12", "NXDOMAIN"},
			{"127.0.0.2", "192.0.2.1", "NXDOMAIN"},                       // the private zone has no such host
			{"127.0.0.1", "192.0.2.20", "printer.floor3.other.example."}, // explicit PTR wins
			{"127.0.0.1", "192.0.2.64", "ref"},                           // delegated: not synthesized
		} {
			if got := ptr(t, c.src, addr, c.ip); got != c.want {
				t.Errorf("PTR %s from %s = %s, want %s", c.ip, c.src, got, c.want)
			}
		}
		if out, err := exec.Command("dig", "+short", "-b", "127.0.0.2", "-p", strings.Split(addr, ":")[1], "@127.0.0.1", "-x", "192.0.2.10").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "intranet.corp.example." {
			t.Errorf("dig -x from the prod view: %q %v", out, err)
		}
	})

	t.Run("API change visible at once", func(t *testing.T) {
		code, _, body := e.do(t, "PUT", "/api/v1/zones/corp.example./records/new/A", e.admin, `{"ttl":60,"values":["192.0.2.30"]}`, nil)
		if code != 201 {
			t.Fatalf("PUT: %d %v", code, body)
		}
		if got := ptr(t, "127.0.0.1", addr, "192.0.2.30"); got != "new.corp.example." {
			t.Errorf("PTR right after the API reply: %s", got)
		}
		code, _, body = e.do(t, "DELETE", "/api/v1/zones/corp.example./records/web/A", e.admin, "", nil)
		if code != 200 {
			t.Fatalf("DELETE: %d %v", code, body)
		}
		if got := ptr(t, "127.0.0.1", addr, "192.0.2.10"); got != "NXDOMAIN" {
			t.Errorf("PTR of a deleted address: %s", got)
		}
		if got := ptr(t, "127.0.0.2", addr, "192.0.2.10"); got != "intranet.corp.example." {
			t.Errorf("the other view changed: %s", got)
		}
	})

	t.Run("write-through to Route 53", func(t *testing.T) {
		code, _, body := e.do(t, "PUT", "/api/v1/zones/corp.example./records/db/A", e.admin, `{"ttl":120,"values":["10.0.5.7"]}`, nil)
		if code != 201 {
			t.Fatalf("PUT: %d %v", code, body)
		}
		if got := fakeSet(e.f, e.rev, "7.5.0.10.in-addr.arpa.", "PTR"); got != "120 db.corp.example." {
			t.Errorf("reverse hosted zone right after the reply: %q", got)
		}
		if got := ptr(t, "127.0.0.1", addr, "10.0.5.7"); got != "db.corp.example." {
			t.Errorf("PTR answer: %s", got)
		}
		code, _, body = e.do(t, "PUT", "/api/v1/zones/corp.example./records/db/A", e.admin, `{"ttl":120,"values":["10.0.5.8"]}`, nil)
		if code != 200 || fakeSet(e.f, e.rev, "7.5.0.10.in-addr.arpa.", "PTR") != "" || fakeSet(e.f, e.rev, "8.5.0.10.in-addr.arpa.", "PTR") != "120 db.corp.example." {
			t.Errorf("moved address: %d %v; old %q new %q", code, body, fakeSet(e.f, e.rev, "7.5.0.10.in-addr.arpa.", "PTR"), fakeSet(e.f, e.rev, "8.5.0.10.in-addr.arpa.", "PTR"))
		}
		// An explicit PTR to a name outside the forward zones is not taken over.
		code, _, _ = e.do(t, "PUT", "/api/v1/zones/corp.example./records/ext/A", e.admin, `{"values":["10.9.9.9"]}`, nil)
		if code != 201 || fakeSet(e.f, e.rev, "9.9.9.10.in-addr.arpa.", "PTR") != "300 ext.other.example." {
			t.Errorf("explicit PTR overwritten: %d %q", code, fakeSet(e.f, e.rev, "9.9.9.10.in-addr.arpa.", "PTR"))
		}
	})

	t.Run("DNS UPDATE follows too", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetUpdate("corp.example.")
		a1, _ := dns.NewRR("upd.corp.example. 300 IN A 192.0.2.40")
		a2, _ := dns.NewRR("upd.corp.example. 300 IN A 10.0.7.7")
		m.Insert([]dns.RR{a1, a2})
		m.SetTsig("ddns-key.", dns.HmacSHA256, 300, time.Now().Unix())
		c := &dns.Client{Net: "tcp", Timeout: 30 * time.Second, TsigSecret: map[string]string{"ddns-key.": ddnsSecret}}
		r, _, err := c.Exchange(m, addr)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("UPDATE: %v %v", err, r)
		}
		if got := ptr(t, "127.0.0.1", addr, "192.0.2.40"); got != "upd.corp.example." {
			t.Errorf("synthesized PTR right after the UPDATE reply: %s", got)
		}
		if got := fakeSet(e.f, e.rev, "7.7.0.10.in-addr.arpa.", "PTR"); got != "300 upd.corp.example." {
			t.Errorf("reverse hosted zone right after the UPDATE reply: %q", got)
		}
	})

	t.Run("reconcile", func(t *testing.T) {
		// Data changed behind hybridns's back: a host without PTR and a
		// PTR to a host that no longer has the address.
		seed(t, e.f, e.pub, r53set("late.corp.example", "A", 300, "10.0.0.44"))
		for i := 0; i < 300; i++ { // more than one ChangeBatch's worth
			seed(t, e.f, e.pub, r53set(fmt.Sprintf("bulk-%03d.corp.example", i), "A", 300, fmt.Sprintf("10.20.%d.%d", i/200, i%200)))
		}
		seed(t, e.f, e.rev, r53set("55.0.0.10.in-addr.arpa", "PTR", 300, "gone.corp.example."))
		before := changes(e.f)
		out, code := runCmd(t, "", e.bin, "reverse", "--config", e.cfg, "--zone", "10.in-addr.arpa.", "--dry-run")
		if code != 0 || !strings.Contains(out, "+ 44.0.0.10.in-addr.arpa. PTR late.corp.example.") || !strings.Contains(out, "- 55.0.0.10.in-addr.arpa. PTR gone.corp.example.") ||
			strings.Contains(out, "ext.other.example") || strings.Contains(out, "app.corp.example") {
			t.Fatalf("reverse --dry-run: exit %d\n%s", code, out)
		}
		if changes(e.f) != before || fakeSet(e.f, e.rev, "44.0.0.10.in-addr.arpa.", "PTR") != "" {
			t.Fatalf("--dry-run wrote")
		}
		out, code = runCmd(t, "", e.bin, "reverse", "--config", e.cfg, "--zone", e.rev)
		if n := changes(e.f) - before; n != 2 {
			t.Errorf("reverse wrote in %d batches, want 2 (302 names, 250 a batch)", n)
		}
		if got := fakeSet(e.f, e.rev, "99.1.20.10.in-addr.arpa.", "PTR"); got != "300 bulk-299.corp.example." {
			t.Errorf("bulk PTR: %q", got)
		}
		if code != 0 || fakeSet(e.f, e.rev, "44.0.0.10.in-addr.arpa.", "PTR") != "300 late.corp.example." || fakeSet(e.f, e.rev, "55.0.0.10.in-addr.arpa.", "PTR") != "" ||
			fakeSet(e.f, e.rev, "3.2.1.10.in-addr.arpa.", "PTR") != "300 app.corp.example." {
			t.Fatalf("reverse: exit %d\n%s", code, out)
		}
		out, code = runCmd(t, "", e.bin, "reverse", "--config", e.cfg, "--zone", e.rev)
		if code != 0 || !strings.Contains(out, "in sync") {
			t.Fatalf("second reverse run: exit %d\n%s", code, out)
		}
	})
}

// dyndns2 calls /nic/update with Basic auth from src.
func dyndns2(t *testing.T, src, base, user, pass, query string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/nic/update?"+query, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := clientFrom(src).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestDyndns2 checks every answer of the protocol, checked in the fake.
func TestDyndns2(t *testing.T) {
	e := startAPIEnv(t)
	home := "home.dyn.corp.example"
	q := func(v url.Values) string { return v.Encode() }
	fakeA := func() string { return fakeSet(e.f, e.pub, home+".", "A") }

	// Route 53 refuses the next call (nothing else is in flight: the
	// sync interval is an hour and no change is pending).
	e.settled(t)
	e.f.DenyNext(1)
	code, body := dyndns2(t, "", e.api, "home-router", homeToken, q(url.Values{"hostname": {home}, "myip": {"192.0.2.77"}}), nil)
	if code != 200 || body != "911" || fakeA() != "" {
		t.Fatalf("Route 53 failing: %d %q (fake %q), want 911", code, body, fakeA())
	}

	cases := []struct {
		name, src, user, pass, query string
		hdr                          map[string]string
		status                       int
		want                         string
		fakeA, fakeAAAA              string
		calls                        int
	}{
		{name: "no credentials", query: q(url.Values{"hostname": {home}}), status: 401, want: "badauth"},
		{name: "bad password", user: "home-router", pass: "nope", query: q(url.Values{"hostname": {home}}), status: 200, want: "badauth"},
		{name: "right token, wrong name", user: "dhcp", pass: homeToken, query: q(url.Values{"hostname": {home}}), status: 200, want: "badauth"},
		{name: "no hostname", user: "home-router", pass: homeToken, query: "", status: 200, want: "notfqdn"},
		{name: "not a FQDN", user: "home-router", pass: homeToken, query: q(url.Values{"hostname": {"home"}}), status: 200, want: "notfqdn"},
		{name: "too many hosts", user: "home-router", pass: homeToken, query: q(url.Values{"hostname": {strings.Repeat(home+",", 20) + home}}), status: 200, want: "numhost"},
		{name: "host outside the token's policy", user: "home-router", pass: homeToken, query: q(url.Values{"hostname": {"www.corp.example"}, "myip": {"192.0.2.77"}}), status: 200, want: "nohost"},
		{name: "host in no zone", user: "home-router", pass: homeToken, query: q(url.Values{"hostname": {"home.elsewhere.example"}, "myip": {"192.0.2.77"}}), status: 200, want: "nohost"},
		{name: "good", user: "home-router", pass: homeToken, query: q(url.Values{"hostname": {home}, "myip": {"192.0.2.77"}}), status: 200, want: "good 192.0.2.77", fakeA: "60 192.0.2.77", calls: 1},
		{name: "nochg makes no Route 53 call", user: "home-router", pass: homeToken, query: q(url.Values{"hostname": {home}, "myip": {"192.0.2.77"}}), status: 200, want: "nochg 192.0.2.77", fakeA: "60 192.0.2.77"},
		{name: "IPv6", user: "home-router", pass: homeToken, query: q(url.Values{"hostname": {home}, "myip": {"2001:db8::77"}}), status: 200, want: "good 2001:db8::77", fakeA: "60 192.0.2.77", fakeAAAA: "60 2001:db8::77", calls: 1},
		{name: "both families, one line per host", user: "home-router", pass: homeToken, query: q(url.Values{"hostname": {home + ",www.corp.example"}, "myip": {"192.0.2.78,2001:db8::77"}}), status: 200,
			want: "good 192.0.2.78,2001:db8::77\nnohost", fakeA: "60 192.0.2.78", fakeAAAA: "60 2001:db8::77", calls: 1},
		{name: "myip defaults to the caller", src: "127.0.0.5", user: "home-router", pass: homeToken, query: q(url.Values{"hostname": {home}}), status: 200, want: "good 127.0.0.5", fakeA: "60 127.0.0.5", fakeAAAA: "60 2001:db8::77", calls: 1},
		{name: "X-Forwarded-For from an untrusted peer is ignored", src: "127.0.0.6", user: "home-router", pass: homeToken, query: q(url.Values{"hostname": {home}}),
			hdr: map[string]string{"X-Forwarded-For": "198.51.100.9"}, status: 200, want: "good 127.0.0.6", fakeA: "60 127.0.0.6", calls: 1},
		{name: "X-Forwarded-For from a trusted proxy", src: "127.0.0.3", user: "home-router", pass: homeToken, query: q(url.Values{"hostname": {home}}),
			hdr: map[string]string{"X-Forwarded-For": "203.0.113.50, 198.51.100.9"}, status: 200, want: "good 198.51.100.9", fakeA: "60 198.51.100.9", calls: 1},
		{name: "an alias is not overwritten", user: "admin", pass: e.admin, query: q(url.Values{"hostname": {"lb.corp.example"}, "myip": {"192.0.2.1"}}), status: 200, want: "dnserr"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := changes(e.f)
			code, body := dyndns2(t, c.src, e.api, c.user, c.pass, c.query, c.hdr)
			if code != c.status || body != c.want {
				t.Fatalf("status %d body %q, want %d %q", code, body, c.status, c.want)
			}
			if n := changes(e.f) - before; n != c.calls {
				t.Errorf("%d ChangeResourceRecordSets calls, want %d", n, c.calls)
			}
			if c.fakeA != "" {
				if got := fakeA(); got != c.fakeA {
					t.Errorf("fake A %q, want %q", got, c.fakeA)
				}
				if got := answerSet(t, e.hyb.Addr, home+".", dns.TypeA); got != c.fakeA {
					t.Errorf("answer A %q right after the reply, want %q", got, c.fakeA)
				}
			}
			if c.fakeAAAA != "" {
				if got := fakeSet(e.f, e.pub, home+".", "AAAA"); got != c.fakeAAAA {
					t.Errorf("fake AAAA %q, want %q", got, c.fakeAAAA)
				}
			}
		})
	}
	t.Run("PROXY protocol from a trusted proxy only", func(t *testing.T) {
		for _, c := range []struct{ src, claimed, want string }{
			{"127.0.0.3", "198.51.100.44", "good 198.51.100.44"},
			{"127.0.0.6", "198.51.100.45", "good 127.0.0.6"}, // untrusted: the header is ignored
		} {
			before := changes(e.f)
			d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.src)}}
			cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					conn, err := d.DialContext(ctx, network, addr)
					if err != nil {
						return nil, err
					}
					h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP(c.claimed), Port: 5555}, conn.RemoteAddr())
					if _, err := h.WriteTo(conn); err != nil {
						conn.Close()
						return nil, err
					}
					return conn, nil
				}}}
			req, _ := http.NewRequest("GET", e.api+"/nic/update?hostname="+home, nil)
			req.SetBasicAuth("home-router", homeToken)
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := strings.TrimSpace(string(b)); got != c.want || changes(e.f)-before != 1 {
				t.Errorf("from %s claiming %s: %q, want %q", c.src, c.claimed, got, c.want)
			}
		}
	})

	t.Run("abuse after repeated bad credentials", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			dyndns2(t, "127.0.0.7", e.api, "home-router", "guess", q(url.Values{"hostname": {home}}), nil)
		}
		code, body := dyndns2(t, "127.0.0.7", e.api, "home-router", homeToken, q(url.Values{"hostname": {home}, "myip": {"192.0.2.99"}}), nil)
		if code != 200 || body != "abuse" || fakeA() == "60 192.0.2.99" {
			t.Fatalf("%d %q, want abuse and no change", code, body)
		}
	})
}

// TestDdclient runs the Debian ddclient (3.10) with protocol=dyndns2
// against hybridns: the first run updates the record in Route 53, the next
// (forced) run gets nochg and makes no Route 53 request.
func TestDdclient(t *testing.T) {
	bin, err := exec.LookPath("ddclient")
	if err != nil {
		t.Fatal("ddclient is needed: DEBIAN_FRONTEND=noninteractive apt-get install -y ddclient")
	}
	e := startAPIEnv(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "ddclient.conf")
	host := strings.TrimPrefix(e.api, "http://")
	os.WriteFile(conf, []byte(fmt.Sprintf(`daemon=0
ssl=no
protocol=dyndns2
use=ip, ip=192.0.2.123
server=%s
login=home-router
password='%s'
home.dyn.corp.example
`, host, homeToken)), 0o600)
	run := func() string {
		cmd := exec.Command(bin, "-daemon=0", "-foreground", "-verbose", "-file", conf, "-cache", filepath.Join(dir, "cache"), "-force")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	before := changes(e.f)
	out := run()
	if !strings.Contains(out, "SUCCESS") || !strings.Contains(out, "192.0.2.123") {
		t.Fatalf("first ddclient run did not succeed:\n%s", out)
	}
	if got := fakeSet(e.f, e.pub, "home.dyn.corp.example.", "A"); got != "60 192.0.2.123" || changes(e.f)-before != 1 {
		t.Fatalf("fake after ddclient: %q, %d change calls", got, changes(e.f)-before)
	}
	e.f.ResetRequests()
	out = run()
	if !strings.Contains(out, "nochg") || strings.Contains(out, "FAILED") {
		t.Fatalf("second ddclient run: want nochg:\n%s", out)
	}
	t.Logf("second ddclient run:\n%s", out)
	// The only requests allowed are GetChange polls of the first run's
	// change (INSYNC tracking, every 10s); the nochg itself reaches no API.
	for _, r := range e.f.Requests() {
		if r.Op != "GetChange" {
			t.Fatalf("nochg made a Route 53 request: %+v", r)
		}
	}
}

// TestAPIListing20000 pages through a 20,000-set zone (every set exactly
// once, in order) and searches it by type, prefix, glob and name.
func TestAPIListing20000(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	f := r53fake.New()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETFAKE")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	fakeURL := f.Start(t)
	zone := f.CreateZone("big.example", false)
	for i := 0; i < 18000; i++ {
		if err := f.PutRecordSet(zone, r53set(fmt.Sprintf("host-%05d.big.example", i), "A", 300, fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2000; i++ {
		if err := f.PutRecordSet(zone, r53set(fmt.Sprintf("t-%04d.big.example", i), "TXT", 300, fmt.Sprintf(`"n=%d"`, i))); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	apiPort, _ := refserver.FreePort()
	base := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	cfg := filepath.Join(dir, "hybridns.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
lame_duck: 0s
http_listen: "off"
api_listen: 127.0.0.1:%d
api_tokens: [{name: reader, token_sha256: "%s", policy: []}]
route53: {zones: [%s], endpoint: %s, interval: 1h, rps: 50, burst: 50}
`, apiPort, sha(homeToken), zone, fakeURL)), 0o644)
	refserver.StartHybridnsArgs(t, bin, []refserver.Zone{{Origin: "big.example."}}, "--config", cfg)
	get := func(q string) (int, map[string]any) {
		code, _, body := doFrom(t, "", "GET", base+"/api/v1/zones/big.example./records?"+q, homeToken, "", nil)
		return code, body
	}
	eventually(t, 30*time.Second, "zone synced", func() bool {
		code, body := get("type=SOA")
		return code == 200 && len(body["records"].([]any)) == 1
	})
	start := time.Now()
	seen := map[string]bool{}
	var order []string
	cursor, pages := "", 0
	for {
		code, body := get("limit=1000&cursor=" + cursor)
		if code != 200 {
			t.Fatalf("page %d: %d %v", pages, code, body)
		}
		pages++
		for _, r := range body["records"].([]any) {
			rs := r.(map[string]any)
			k := rs["name"].(string) + " " + rs["type"].(string)
			if seen[k] {
				t.Fatalf("%s listed twice", k)
			}
			seen[k] = true
			order = append(order, k)
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	took := time.Since(start)
	if len(seen) != 20002 || pages != 21 { // 20,000 sets + SOA + NS
		t.Fatalf("%d sets in %d pages, want 20002 in 21", len(seen), pages)
	}
	if order[0] != "big.example. NS" && order[0] != "big.example. SOA" || order[len(order)-1] != "t-1999.big.example. TXT" {
		t.Errorf("order: first %s, last %s", order[0], order[len(order)-1])
	}
	t.Logf("20,002 sets in %d pages of 1000 in %v", pages, took.Round(time.Millisecond))
	count := func(q string) int {
		n, cursor := 0, ""
		for {
			code, body := get(q + "&limit=1000&cursor=" + cursor)
			if code != 200 {
				t.Fatalf("?%s: %d %v", q, code, body)
			}
			n += len(body["records"].([]any))
			next, _ := body["next_cursor"].(string)
			if next == "" {
				return n
			}
			cursor = next
		}
	}
	for _, c := range []struct {
		q    string
		want int
	}{
		{"type=TXT", 2000},
		{"type=A", 18000},
		{"prefix=host-1799", 10},
		{"prefix=t-00", 100},
		{"glob=host-1234?.big.example.", 10},
		{"glob=t-*5.big.example&type=TXT", 200},
		{"name=host-00042", 1},
		{"name=host-00042.big.example.&type=TXT", 0},
	} {
		if got := count(c.q); got != c.want {
			t.Errorf("?%s: %d sets, want %d", c.q, got, c.want)
		}
	}
}

// TestAPIReadmeExamples runs the README's curl examples (every sh block of
// the "Records API" section) against the binary, then checks their effect
// in the Route 53 fake.
func TestAPIReadmeExamples(t *testing.T) {
	readme := mustRead(t, filepath.Join(repoRoot(t), "README.md"))
	start := strings.Index(readme, "### Records API")
	if start < 0 {
		t.Fatal("README has no Records API section")
	}
	section := readme[start:]
	section = section[:strings.Index(section, "\n### Operations")]
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) < 5 {
		t.Fatalf("%d sh blocks in the README section, want at least 5", len(blocks))
	}
	e := startAPIEnv(t)
	for i, b := range blocks {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", b[1])
		cmd.Env = append(os.Environ(), "API="+e.api, "TOKEN="+e.admin, "HOME_TOKEN="+homeToken)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README example %d failed: %v\n%s\n--- output:\n%s", i+1, err, b[1], out)
		}
		t.Logf("example %d:\n%s", i+1, out)
		if strings.Contains(b[1], "If-Match") && !regexp.MustCompile(`ETag: "[0-9a-f]{24}"`).Match(out) {
			t.Errorf("example %d did not read the ETag:\n%s", i+1, out)
		}
	}
	for _, c := range [][3]string{
		{"web.corp.example.", "A", "300 192.0.2.13"},
		{"old.corp.example.", "TXT", ""},
		{"home.dyn.corp.example.", "A", "60 198.51.100.7"},
	} {
		if got := fakeSet(e.f, e.pub, c[0], c[1]); got != c[2] {
			t.Errorf("after the README examples: %s %s = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hybridns test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestAPIConfigAndTLS: the API's config is checked (TLS both or neither,
// no clear-text tokens off loopback, token hashes and policies), and with
// a certificate the API speaks only TLS.
func TestAPIConfigAndTLS(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		writeAtomic(t, p, "listen: [\"127.0.0.1:5300\"]\n"+body)
		return p
	}
	h := sha(homeToken)
	for _, c := range []struct {
		name, cfg string
		code      int
		want      []string
	}{
		{"loopback, plain HTTP", "api_listen: 127.0.0.1:8443\napi_tokens: [{name: a, token_sha256: \"" + h + "\", policy: [\"grant a zonesub A\"]}]\n", 0, nil},
		{"off loopback without TLS", "api_listen: 0.0.0.0:8443\n", 1, []string{"api_listen 0.0.0.0:8443", "clear text"}},
		{"off loopback, plain allowed", "api_listen: 0.0.0.0:8443\napi_allow_plain_http: true\n", 0, nil},
		{"TLS", "api_listen: 0.0.0.0:8443\napi_tls_cert: " + certFile + "\napi_tls_key: " + keyFile + "\n", 0, nil},
		{"PROXY protocol without trusted proxies", "api_listen: 127.0.0.1:8443\napi_proxy_protocol: true\n", 1, []string{"api_proxy_protocol", "api_trusted_proxies"}},
		{"cert without key", "api_listen: 0.0.0.0:8443\napi_tls_cert: " + certFile + "\n", 1, []string{"both or neither"}},
		{"bad token entries", "api_tokens:\n  - {name: a, token_sha256: \"abc\", policy: [\"grant a zonesub A\"]}\n  - {name: b, token_sha256: \"" + h + "\", policy: [\"allow b everything\"]}\n  - {name: a, token_sha256: \"" + h + "\"}\n",
			1, []string{"64 hex digits", "allow b everything", "defined twice"}},
		{"bad reverse entries", "reverse:\n  - {zone: corp.example., from: [corp.example.]}\n  - {zone: 10.in-addr.arpa., from: [corp.example.], mode: route53}\n  - {zone: 2.0.192.in-addr.arpa., from: [], view: nope}\n",
			1, []string{"in-addr.arpa. or ip6.arpa.", "needs route53_zone", "at least one forward zone", `view "nope"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, code := runCmd(t, dir, bin, "check", "--config", write(strings.ReplaceAll(c.name, " ", "_")+".yaml", c.cfg))
			if code != c.code {
				t.Fatalf("exit %d, want %d:\n%s", code, c.code, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	port, _ := refserver.FreePort()
	cfg := write("tls.yaml", fmt.Sprintf("lame_duck: 0s\nhttp_listen: \"off\"\napi_listen: 127.0.0.1:%d\napi_tls_cert: %s\napi_tls_key: %s\napi_tokens: [{name: a, token_sha256: \"%s\", policy: []}]\n", port, certFile, keyFile, h))
	refserver.StartHybridnsArgs(t, bin, nil, "--config", cfg)
	tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	eventually(t, 5*time.Second, "API over TLS", func() bool {
		req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/api/v1/zones", port), nil)
		req.Header.Set("Authorization", "Bearer "+homeToken)
		resp, err := tlsClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if code, _, body := doFrom(t, "", "GET", fmt.Sprintf("http://127.0.0.1:%d/api/v1/zones", port), homeToken, "", nil); code == 200 {
		t.Fatalf("plain HTTP on the TLS listener answered: %v", body)
	}
}
