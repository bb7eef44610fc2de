package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"hybridns/forwarder"
	"hybridns/r53"
	"hybridns/server"
	"hybridns/zonestore"
	"hybridns/zonestore/zonedir"
)

// daemon is a running `hybridns serve`: what a reload may replace, and what
// it must keep.
type daemon struct {
	cli   *cli.Context
	log   *slog.Logger
	level *slog.LevelVar
	store *zonestore.Store
	srv   *server.Server

	mu      sync.Mutex // serializes reloads
	cfg     *Config
	cur     atomic.Pointer[Config] // cfg, for readers that must not wait on a reload
	fwd     forwarderCloser
	fwdNow  atomic.Pointer[forwarder.Forwarder] // for metrics: read without waiting on a reload
	loader  *zonedir.Loader
	syncers []*r53.Syncer
	api     r53.APICounters

	loaded   atomic.Bool // every zone source delivered once
	draining atomic.Bool
}

func serveCmd(c *cli.Context) error {
	cfg, err := configFromCLI(c)
	if err != nil {
		return err
	}
	// Signals first: a SIGHUP during start-up must not kill the process.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	level := new(slog.LevelVar)
	log := newLogger(cfg.Log, level)
	log.Info("starting", slog.String("version", buildVersion()))
	d := &daemon{cli: c, log: log, level: level, store: zonestore.NewStore(), cfg: cfg}
	d.cur.Store(cfg)
	journal := d.store.EnableJournal(cfg.journalConfig()) // before any zone loads

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if d.fwd, err = buildForwarder(cfg, log); err != nil {
		return err
	}
	d.setForwarder(d.fwd)
	if cfg.ZoneDir != "" {
		d.loader = zonedir.New(cfg.ZoneDir, d.store, zonestore.DefaultView, log)
		d.loader.Reject = func(origin string) error { return ruleConflict(d.config(), origin) }
		_ = d.loader.Scan() // a broken file is logged and skipped; the others serve
		go func() {
			if err := d.loader.Watch(ctx, 200*time.Millisecond, 30*time.Second); err != nil {
				log.Error("zone dir watch stopped; SIGHUP still rescans", slog.Any("err", err))
			}
		}()
	}
	if d.syncers, err = buildSyncers(ctx, cfg, d.store, log, &d.api); err != nil {
		return err
	}
	for _, sy := range d.syncers {
		// Serve the last known data before the first API call.
		if n, err := sy.LoadSnapshots(); err != nil {
			log.Error("snapshot", slog.Any("err", err))
		} else if n > 0 {
			log.Info("serving zones from the snapshot", slog.Int("zones", n))
		}
	}
	scfg := server.Config{
		Listen:         cfg.Listen,
		Store:          d.store,
		TCPIdleTimeout: cfg.TCP.IdleTimeout,
		MaxTCPConns:    cfg.TCP.MaxConnections,
		ProxyProtocol:  cfg.ProxyProtocol.Enabled,
		Journal:        journal,
		CatalogZone:    cfg.Catalog.Zone,
		CatalogViews:   cfg.catalogViews(),
		Logger:         log,
	}
	for _, p := range cfg.ProxyProtocol.Trusted {
		scfg.ProxyTrusted = append(scfg.ProxyTrusted, mustPrefix(p))
	}
	if cfg.Log.Queries > 0 {
		scfg.QueryLog, scfg.QueryLogSample = log.With(slog.String("component", "querylog")), cfg.Log.Queries
	}
	scfg.RRL = rrlConfig(cfg)
	scfg.Updater, scfg.UpdateTimeout = r53Updater{syncers: d.syncers}, cfg.UpdateTimeout
	if d.srv, err = server.New(scfg); err != nil {
		return err
	}
	if err := d.srv.Reconfigure(d.policy(cfg, d.fwd)); err != nil {
		return err
	}
	if err := d.srv.Start(ctx); err != nil {
		return err
	}
	for _, sy := range d.syncers {
		go sy.Run(ctx)
	}
	d.loaded.Store(true)

	var httpSrv *http.Server
	if cfg.HTTPListen != "" {
		if httpSrv, err = d.startHTTP(cfg.HTTPListen); err != nil {
			_ = d.srv.Shutdown(context.Background())
			return err
		}
	}

	for sig := range sigs {
		if sig == syscall.SIGHUP {
			_ = d.reload("SIGHUP")
			continue
		}
		break
	}
	// Drain: /readyz turns 503 at once, DNS keeps answering for the lame
	// duck period so the load balancer moves traffic away, then the
	// listeners close after answering what is in flight.
	d.draining.Store(true)
	lame := 5 * time.Second
	if d.config().LameDuck != nil {
		lame = *d.config().LameDuck
	}
	log.Info("draining", slog.Duration("lame_duck", lame))
	timer := time.NewTimer(lame)
drain:
	for {
		select {
		case <-timer.C:
			break drain
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				_ = d.reload("SIGHUP") // a config push during the drain is no reason to stop early
				continue
			}
			break drain // a second SIGTERM/SIGINT: stop now
		}
	}
	cancel()
	shutCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	err = d.srv.Shutdown(shutCtx)
	if httpSrv != nil {
		_ = httpSrv.Shutdown(shutCtx)
	}
	d.mu.Lock()
	if d.fwd != nil {
		d.fwd.Close()
	}
	d.mu.Unlock()
	log.Info("stopped")
	return err
}

func (d *daemon) config() *Config { return d.cur.Load() }

func (d *daemon) setForwarder(f forwarderCloser) {
	ff, _ := f.(*forwarder.Forwarder)
	d.fwdNow.Store(ff) // nil when forwarding is off
}

// policy is the run-time-changeable part of cfg for the server.
func (d *daemon) policy(cfg *Config, fwd forwarderCloser) server.Policy {
	p := server.Policy{Routing: routingClient(cfg, d.syncers)}
	if fwd != nil {
		p.Forwarder = fwd
	}
	p.AllowRecursion, _ = cfg.recursionPrefixes()
	p.TSIGKeys, _ = cfg.tsigKeys() // validated before
	p.UpdatePolicy, _ = cfg.updatePolicies()
	p.Transfer, _ = cfg.transferRules(p.TSIGKeys)
	for _, v := range cfg.Views {
		sv := server.View{Name: v.Name}
		for _, pfx := range v.Clients {
			sv.Clients = append(sv.Clients, mustPrefix(pfx))
		}
		p.Views = append(p.Views, sv)
	}
	return p
}

// reload re-reads the config. An invalid config is rejected with every
// problem listed and the running one stays; a valid one replaces forwarding,
// ACLs, views, routing and log level at once. Zones are not re-fetched:
// the zone directory is rescanned (cheap: unchanged files are skipped) and
// Route 53 zones keep their schedule.
func (d *daemon) reload(why string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log.Info("reloading config", slog.String("trigger", why))
	next, err := configFromCLI(d.cli)
	if err == nil {
		err = d.checkImmutable(next)
	}
	var fwd forwarderCloser
	if err == nil {
		if sameForwarding(d.cfg, next) {
			fwd = d.fwd
		} else if fwd, err = buildForwarder(next, d.log); err != nil {
			err = fmt.Errorf("forwarding: %w", err)
		}
	}
	if err != nil {
		d.log.Error("config rejected, the running config stays", slog.Any("err", err))
		return err
	}
	if err := d.srv.Reconfigure(d.policy(next, fwd)); err != nil {
		d.log.Error("config rejected, the running config stays", slog.Any("err", err))
		if fwd != d.fwd && fwd != nil {
			fwd.Close()
		}
		return err
	}
	if old := d.fwd; old != fwd && old != nil {
		// Queries in flight may still use it for a moment.
		time.AfterFunc(10*time.Second, func() { old.Close() })
	}
	d.fwd, d.cfg = fwd, next
	d.cur.Store(next)
	d.setForwarder(fwd)
	d.level.Set(parseLevel(next.Log.Level))
	if d.loader != nil {
		_ = d.loader.Scan()
	}
	d.log.Info("config reloaded")
	return nil
}

// checkImmutable rejects changes that need a restart, rather than
// pretending to apply them.
func (d *daemon) checkImmutable(next *Config) error {
	var errs []error
	same := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			errs = append(errs, fmt.Errorf("%s cannot change without a restart", key))
		}
	}
	same("listen", d.cfg.Listen, next.Listen)
	same("http_listen", d.cfg.HTTPListen, next.HTTPListen)
	same("zone_dir", d.cfg.ZoneDir, next.ZoneDir)
	same("route53", d.cfg.Route53, next.Route53)
	same("snapshot_dir", d.cfg.SnapshotDir, next.SnapshotDir)
	same("proxy_protocol", d.cfg.ProxyProtocol, next.ProxyProtocol)
	same("tcp", d.cfg.TCP, next.TCP)
	same("rate_limit", d.cfg.RRL, next.RRL)
	same("log.format", d.cfg.Log.Format, next.Log.Format)
	same("log.queries", d.cfg.Log.Queries, next.Log.Queries)
	same("http_control_from", d.cfg.HTTPControl, next.HTTPControl)
	same("catalog", d.cfg.Catalog, next.Catalog)
	same("journal", d.cfg.Journal, next.Journal)
	return errors.Join(errs...)
}

func sameForwarding(a, b *Config) bool {
	return reflect.DeepEqual(a.Forward, b.Forward) && reflect.DeepEqual(a.ForwardDefault, b.ForwardDefault) &&
		reflect.DeepEqual(a.AWS, b.AWS) && a.Cache == b.Cache && a.Upstream == b.Upstream
}

func (d *daemon) ready() bool {
	if d.draining.Load() || !d.loaded.Load() {
		return false
	}
	for _, sy := range d.syncers {
		if !sy.Ready() {
			return false
		}
	}
	return true
}

// selfQuery asks our own first listener for the root SOA: any reply at all
// (REFUSED included) means the DNS side is alive.
func (d *daemon) selfQuery() error {
	udp, _ := d.srv.Addrs()
	if len(udp) == 0 {
		return errors.New("no listener")
	}
	addr := udp[0].(*net.UDPAddr)
	if addr.IP.IsUnspecified() {
		if addr.IP.To4() != nil {
			addr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: addr.Port}
		} else {
			addr = &net.UDPAddr{IP: net.IPv6loopback, Port: addr.Port}
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeSOA)
	m.RecursionDesired = false
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	_, _, err := c.Exchange(m, addr.String())
	return err
}

func (d *daemon) startHTTP(addr string) (*http.Server, error) {
	var control []netip.Prefix
	for _, p := range d.cfg.HTTPControl {
		control = append(control, mustPrefix(p))
	}
	if len(control) == 0 {
		control = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	allowed := func(r *http.Request) bool {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			return false
		}
		for _, p := range control {
			if p.Contains(ap.Addr().Unmap()) {
				return true
			}
		}
		return false
	}
	reg := newRegistry(d.srv, d.fwdNow.Load, d.store, d.syncers, &d.api)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := d.selfQuery(); err != nil {
			http.Error(w, "dns not answering: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case d.draining.Load():
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case !d.ready():
			http.Error(w, "not ready: zones still loading", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		if !allowed(r) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		if err := d.reload("POST /reload"); err != nil {
			http.Error(w, "config rejected, the running config stays:\n"+err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "reloaded")
	})
	mux.HandleFunc("POST /sync", func(w http.ResponseWriter, r *http.Request) {
		if !allowed(r) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		zone := r.URL.Query().Get("zone")
		if zone == "" {
			http.Error(w, "zone= is required", http.StatusBadRequest)
			return
		}
		var errs []error
		for _, s := range d.syncers {
			err := s.Trigger(zone)
			if err == nil {
				fmt.Fprintf(w, "refresh of %s queued\n", zone)
				return
			}
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			errs = append(errs, errors.New("no Route 53 zones are mirrored"))
		}
		http.Error(w, errors.Join(errs...).Error(), http.StatusNotFound)
	})
	mux.HandleFunc("GET /changes", func(w http.ResponseWriter, r *http.Request) {
		// Route 53 changes accepted through hybridns and not yet INSYNC.
		pending := []r53.PendingChange{}
		for _, s := range d.syncers {
			pending = append(pending, s.PendingChanges()...)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"pending": pending})
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", addr, err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server stopped", slog.Any("err", err))
		}
	}()
	d.log.Info("http listening", slog.String("addr", ln.Addr().String()))
	return hs, nil
}

// rrlConfig turns the rate_limit section into the server's.
func rrlConfig(cfg *Config) server.RRLConfig {
	r := server.RRLConfig{
		ResponsesPerSecond: cfg.RRL.ResponsesPerSecond,
		NXDomainsPerSecond: cfg.RRL.NXDomainsPerSecond,
		ErrorsPerSecond:    cfg.RRL.ErrorsPerSecond,
		Slip:               2,
		IPv4PrefixLen:      cfg.RRL.IPv4PrefixLen,
		IPv6PrefixLen:      cfg.RRL.IPv6PrefixLen,
	}
	if cfg.RRL.Slip != nil {
		r.Slip = *cfg.RRL.Slip
	}
	if cfg.RRL.Exempt != nil {
		r.Exempt = []netip.Prefix{} // given: exactly these (an empty list exempts nobody)
		for _, p := range cfg.RRL.Exempt {
			r.Exempt = append(r.Exempt, mustPrefix(p))
		}
	}
	return r
}
