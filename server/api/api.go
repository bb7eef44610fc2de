// Package api is hybridns's HTTP API for records: a JSON API under
// /api/v1 (list zones, list and search records with paging, replace, patch
// and delete record sets with ETags) and the dyndns2 protocol at
// /nic/update that ddclient, inadyn and home routers speak. Callers
// authenticate with tokens that carry BIND update-policy rules.
//
// Reads come from the zonestore; every change is a plan handed to the
// Writer, which cmd wires to the Route 53 writer (the one writer of every
// path that changes Route 53). The package knows nothing of AWS.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"hybridns/server"
	"hybridns/zonestore"
	"hybridns/zonestore/dynupdate"
)

// Plan computes the changes of one write from the zone's current data at
// its source (the Route 53 writer's Plan): an rcode other than NOERROR or an
// error stops the write; no changes is a successful no-op that reaches no
// API.
type Plan = func(src dynupdate.Source) (rcode int, changes []dynupdate.Change, err error)

// Writer changes a served zone at its source. Write runs plan under the
// zone's write slot against its exact current data, sends the changes as
// one atomic change and returns once the source accepted it; the store
// then already holds the new data (read-your-writes).
type Writer interface {
	Write(ctx context.Context, w Write) (WriteResult, error)
}

// Write is one change to one zone.
type Write struct {
	Zone       string // canonical origin
	ZoneSource string // the served zone's Source(): which copy to change
	View       string
	Identity   string // token name, for logs
	Plan       Plan
}

// WriteResult is what a Write did. Rcode tells failures apart: REFUSED (the
// source cannot take this change: read-only zone, alias set, batch
// limits), NXRRSET/YXRRSET (the source's data was not what we thought),
// SERVFAIL (the source is not reachable or not ready).
type WriteResult struct {
	Rcode    int
	Serial   uint32
	ChangeID string
}

// Token is one API token: the SHA-256 of its secret (never the secret),
// and its update-policy rules with the token's name as identity.
type Token struct {
	Name   string // canonical, as the rules' identity
	SHA256 [32]byte
	Policy []server.UpdateRule
}

// Config is what the API serves from.
type Config struct {
	Store  *zonestore.Store
	Writer Writer // nil: read-only
	Tokens []Token
	// TrustedProxies may set X-Forwarded-For (the dyndns2 caller
	// address); nobody else may. Empty: nobody.
	TrustedProxies []netip.Prefix
	// WriteTimeout bounds one write, retries included (default 30s).
	WriteTimeout time.Duration
	// AuthFailures and AuthWindow: a client (an IPv4 address, an IPv6 /64)
	// that failed authentication AuthFailures times is refused for
	// AuthWindow, one failure forgiven per AuthWindow/AuthFailures
	// (default 10 per minute).
	AuthFailures int
	AuthWindow   time.Duration
	// SyncTimes says when each zone source ("route53:ID") was last read
	// in full; asked once per zone listing.
	SyncTimes func() map[string]time.Time
	// AfterWrite runs after every accepted change (derived data, such
	// as synthesized reverse zones, catches up before the reply).
	AfterWrite func()
	Logger     *slog.Logger
}

// Handler serves the API. It is safe for concurrent use.
type Handler struct {
	cfg     Config
	tokens  atomic.Pointer[[]Token]
	limiter *authLimiter
	sets    setCache
	mux     *http.ServeMux
	log     *slog.Logger
	base    context.Context
}

// New returns the API handler; ctx bounds every write it starts.
func New(ctx context.Context, cfg Config) *Handler {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.AuthFailures <= 0 {
		cfg.AuthFailures = 10
	}
	if cfg.AuthWindow <= 0 {
		cfg.AuthWindow = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, limiter: newAuthLimiter(cfg.AuthFailures, cfg.AuthWindow), log: cfg.Logger.With(slog.String("component", "api")), base: ctx}
	h.SetTokens(cfg.Tokens)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/zones", h.authed(h.listZones))
	mux.HandleFunc("GET /api/v1/zones/{zone}/records", h.authed(h.listRecords))
	mux.HandleFunc("GET /api/v1/zones/{zone}/records/{name}/{type}", h.authed(h.getSet))
	mux.HandleFunc("PUT /api/v1/zones/{zone}/records/{name}/{type}", h.authed(h.putSet))
	mux.HandleFunc("PATCH /api/v1/zones/{zone}/records/{name}/{type}", h.authed(h.patchSet))
	mux.HandleFunc("DELETE /api/v1/zones/{zone}/records/{name}/{type}", h.authed(h.deleteSet))
	// Other methods on known paths: a JSON 405 naming the allowed ones.
	for path, allow := range map[string]string{
		"/api/v1/zones":                              "GET",
		"/api/v1/zones/{zone}/records":               "GET",
		"/api/v1/zones/{zone}/records/{name}/{type}": "GET, PUT, PATCH, DELETE",
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s %s: allowed: %s", r.Method, r.URL.Path, allow))
		})
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path))
	})
	mux.HandleFunc("GET /nic/update", h.dyndns)
	mux.HandleFunc("GET /v3/update", h.dyndns) // the path newer Dyn clients use
	h.mux = mux
	return h
}

// SetTokens replaces the tokens (a config reload).
func (h *Handler) SetTokens(tokens []Token) {
	t := append([]Token(nil), tokens...)
	h.tokens.Store(&t)
}

// ServeHTTP implements http.Handler; a panic answers 500 and is logged,
// it never takes the process down.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.Error("api handler panic", slog.String("path", r.URL.Path), slog.Any("panic", p))
			if strings.HasPrefix(r.URL.Path, "/nic/") || strings.HasPrefix(r.URL.Path, "/v3/") {
				dyndnsReply(w, http.StatusOK, "911")
				return
			}
			writeError(w, http.StatusInternalServerError, "internal", "internal error")
		}
	}()
	h.mux.ServeHTTP(w, r)
}

// HashToken is the token_sha256 of a token: hex SHA-256 of its text.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ParseTokenHash reads a token_sha256 value.
func ParseTokenHash(s string) ([32]byte, error) {
	var out [32]byte
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 32 {
		return out, errors.New("token_sha256 must be 64 hex digits (the SHA-256 of the token)")
	}
	copy(out[:], b)
	return out, nil
}

// lookup finds the token with this secret (and this name, when given).
// Every configured token is compared, in constant time, so timing says
// nothing of which one nearly matched.
func (h *Handler) lookup(name, secret string) (Token, bool) {
	sum := sha256.Sum256([]byte(secret))
	var found Token
	ok := false
	for _, t := range *h.tokens.Load() {
		if subtle.ConstantTimeCompare(sum[:], t.SHA256[:]) == 1 && (name == "" || dns.CanonicalName(name) == t.Name) {
			found, ok = t, true
		}
	}
	return found, ok
}

// apiError is the body of every error reply.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// authed wraps a JSON API handler with bearer-token authentication (Basic
// with the token as password works too) and the per-client failure limit.
func (h *Handler) authed(next func(http.ResponseWriter, *http.Request, Token)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Behind a trusted proxy the client is the one it names, so one
		// guesser does not lock out everyone behind the proxy.
		client := h.caller(r)
		if h.limiter.blocked(client) {
			w.Header().Set("Retry-After", fmt.Sprint(int(h.limiter.every.Seconds()+0.5)))
			writeError(w, http.StatusTooManyRequests, "rate_limited", "too many failed authentications from "+client.String()+"; try again later")
			return
		}
		var name, secret string
		if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
			secret = strings.TrimSpace(auth[7:])
		} else if u, p, ok := r.BasicAuth(); ok {
			name, secret = u, p
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hybridns"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "an API token is required (Authorization: Bearer TOKEN)")
			return
		}
		tok, ok := h.lookup(name, secret)
		if !ok {
			h.limiter.fail(client)
			h.log.Info("api authentication failed", slog.String("client", client.String()), slog.String("path", r.URL.Path))
			w.Header().Set("WWW-Authenticate", `Bearer realm="hybridns", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "the token is not valid")
			return
		}
		next(w, r, tok)
	}
}

// peer is the connection's remote address (never a forwarded one).
func (h *Handler) peer(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		a, _ := netip.ParseAddr(host)
		return a.Unmap()
	}
	return ap.Addr().Unmap()
}

// caller is the client's address: the peer, or — when the peer is a
// trusted proxy — the address the proxy appended last to
// X-Forwarded-For (hops before it are the client's word, not the proxy's).
func (h *Handler) caller(r *http.Request) netip.Addr {
	peer := h.peer(r)
	if !trusted(h.cfg.TrustedProxies, peer) {
		return peer
	}
	xff := r.Header.Values("X-Forwarded-For")
	if len(xff) == 0 {
		return peer
	}
	hops := strings.Split(strings.Join(xff, ","), ",")
	// Walk back over trusted proxies: the first untrusted hop is the client.
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // a malformed header from a trusted proxy: use what we know
		}
		a = a.Unmap()
		if i == 0 || !trusted(h.cfg.TrustedProxies, a) {
			return a
		}
	}
	return peer
}

func trusted(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
