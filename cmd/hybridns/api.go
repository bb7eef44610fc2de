package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
	proxyproto "github.com/pires/go-proxyproto"
	"github.com/urfave/cli/v2"

	"hybridns/r53"
	"hybridns/server"
	"hybridns/server/api"
)

// APITokenConfig is one api_tokens entry: the token is stored only as its
// SHA-256; policy rules use the token's name as identity.
type APITokenConfig struct {
	Name        string   `yaml:"name"`
	TokenSHA256 string   `yaml:"token_sha256"`
	Policy      []string `yaml:"policy"`
}

// apiTokens parses api_tokens, reporting every problem.
func (c *Config) apiTokens() ([]api.Token, []error) {
	var out []api.Token
	var errs []error
	seen := map[string]bool{}
	for i, t := range c.APITokens {
		where := fmt.Sprintf("%s: api_tokens[%d]", c.where(0), i)
		if _, ok := dns.IsDomainName(t.Name); !ok || t.Name == "" || strings.ContainsAny(t.Name, ": ") {
			errs = append(errs, fmt.Errorf("%s: name %q: want a name like home-router (no spaces or colons)", where, t.Name))
			continue
		}
		name := dns.CanonicalName(t.Name)
		if seen[name] {
			errs = append(errs, fmt.Errorf("%s: token %s defined twice", where, t.Name))
		}
		seen[name] = true
		sum, err := api.ParseTokenHash(t.TokenSHA256)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", where, t.Name, err))
		}
		rules, rerrs := server.ParseUpdatePolicy(t.Policy)
		for _, e := range rerrs {
			errs = append(errs, fmt.Errorf("%s (%s): %w", where, t.Name, e))
		}
		out = append(out, api.Token{Name: name, SHA256: sum, Policy: rules})
	}
	return out, errs
}

// validateAPI checks the api_* keys and reverse.
func (c *Config) validateAPI() []error {
	var errs []error
	_, terrs := c.apiTokens()
	errs = append(errs, terrs...)
	if (c.APITLSCert == "") != (c.APITLSKey == "") {
		errs = append(errs, fmt.Errorf("%s: api_tls_cert and api_tls_key: give both or neither", c.where(0)))
	}
	if c.APIProxyProtocol && len(c.APITrustedProxies) == 0 {
		errs = append(errs, fmt.Errorf("%s: api_proxy_protocol: list the proxies in api_trusted_proxies (nobody else may name the client)", c.where(0)))
	}
	for _, p := range c.APITrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			errs = append(errs, fmt.Errorf("%s: api_trusted_proxies: %q: %w", c.where(0), p, err))
		}
	}
	if c.APIListen != "" {
		ap, err := netip.ParseAddrPort(c.APIListen)
		if err != nil && !strings.HasPrefix(c.APIListen, ":") {
			errs = append(errs, fmt.Errorf("%s: api_listen %q: want IP:port or :port", c.where(0), c.APIListen))
		} else if c.APITLSCert == "" && !c.APIAllowPlainHTTP && (err != nil || !ap.Addr().IsLoopback()) {
			errs = append(errs, fmt.Errorf("%s: api_listen %s: tokens would cross the network in clear text: set api_tls_cert and api_tls_key, listen on loopback, or set api_allow_plain_http: true (behind a TLS proxy)", c.where(0), c.APIListen))
		}
		if c.APITLSCert != "" && c.APITLSKey != "" {
			if _, err := tls.LoadX509KeyPair(c.APITLSCert, c.APITLSKey); err != nil {
				errs = append(errs, fmt.Errorf("%s: api_tls_cert/api_tls_key: %w", c.where(0), err))
			}
		}
	}
	errs = append(errs, c.validateReverse()...)
	return errs
}

// tokenCmd prints a new API token and the hash the config keeps.
func tokenCmd(c *cli.Context) error {
	name := c.Args().First()
	if name == "" || strings.ContainsAny(name, ": ") {
		return errors.New("usage: hybridns token NAME")
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	tok := base64.RawURLEncoding.EncodeToString(raw)
	name = strings.TrimSuffix(name, ".")
	fmt.Fprintf(c.App.Writer, "token: %s\ntoken_sha256: %s\n# hybridns config (api_tokens); the token itself is shown only now:\n# - {name: %s, token_sha256: \"%s\", policy: [\"grant %s name host.example. A AAAA\"]}\n",
		tok, api.HashToken(tok), name, api.HashToken(tok), name)
	return nil
}

// apiWriter routes an API write to the syncer that mirrors the zone: the
// same writer UPDATE uses. After a forward change it writes the matching
// PTR records of reverse zones in mode route53.
type apiWriter struct {
	syncers []*r53.Syncer
}

func (a apiWriter) syncerFor(zone, source string) (*r53.Syncer, string, error) {
	id, ok := strings.CutPrefix(source, "route53:")
	if !ok {
		return nil, "", fmt.Errorf("zone %s comes from %s, which takes no changes", zone, source)
	}
	for _, s := range a.syncers {
		if s.Mirrors(id) {
			return s, id, nil
		}
	}
	return nil, id, fmt.Errorf("zone %s (%s): %w", zone, id, r53.ErrNotMirrored)
}

func (a apiWriter) Write(ctx context.Context, w api.Write) (api.WriteResult, error) {
	s, id, err := a.syncerFor(w.Zone, w.ZoneSource)
	if err != nil {
		rc := dns.RcodeRefused
		if errors.Is(err, r53.ErrNotMirrored) {
			rc = dns.RcodeServerFailure
		}
		return api.WriteResult{Rcode: rc}, err
	}
	// Reverse zones in mode route53 follow through the syncer's
	// after-write hook, before Write returns.
	res, err := s.Write(ctx, id, w.Plan)
	return api.WriteResult{Rcode: res.Rcode, Serial: res.Serial, ChangeID: res.ChangeID}, err
}

// startAPI serves the records API and dyndns2 on api_listen.
func (d *daemon) startAPI(ctx context.Context, cfg *Config) (*http.Server, error) {
	tokens, _ := cfg.apiTokens() // validated before
	acfg := api.Config{
		Store:  d.store,
		Writer: apiWriter{syncers: d.syncers},
		Tokens: tokens,
		Logger: d.log,
		SyncTimes: func() map[string]time.Time {
			out := map[string]time.Time{}
			for _, s := range d.syncers {
				for _, st := range s.Status() {
					out["route53:"+st.ID] = st.LastSync
				}
			}
			return out
		},
		WriteTimeout: cfg.UpdateTimeout,
	}
	if d.revSynth != nil {
		acfg.AfterWrite = d.revSynth.Sync
	}
	for _, p := range cfg.APITrustedProxies {
		acfg.TrustedProxies = append(acfg.TrustedProxies, mustPrefix(p))
	}
	d.apiHandler = api.New(ctx, acfg)
	ln, err := net.Listen("tcp", cfg.APIListen)
	if err != nil {
		return nil, fmt.Errorf("api listen %s: %w", cfg.APIListen, err)
	}
	hs := &http.Server{Handler: d.apiHandler, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug)}
	if cfg.APIProxyProtocol {
		// PROXY v1/v2 (an NLB): the header's source is the client, but
		// only when the connection comes from a trusted proxy; anyone
		// else's header is read and ignored.
		trusted := acfg.TrustedProxies
		ln = &proxyproto.Listener{Listener: ln, ReadHeaderTimeout: 5 * time.Second,
			ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
				if a, ok := o.Upstream.(*net.TCPAddr); ok {
					ip, _ := netip.AddrFromSlice(a.IP)
					for _, p := range trusted {
						if p.Contains(ip.Unmap()) {
							return proxyproto.USE, nil
						}
					}
				}
				return proxyproto.IGNORE, nil
			}}
	}
	if cfg.APITLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.APITLSCert, cfg.APITLSKey)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("api tls: %w", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("api server stopped", slog.Any("err", err))
		}
	}()
	d.log.Info("api listening", slog.String("addr", ln.Addr().String()), slog.Bool("tls", cfg.APITLSCert != ""))
	return hs, nil
}
