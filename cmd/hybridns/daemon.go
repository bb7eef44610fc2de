package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"golang.org/x/time/rate"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"
	"golang.org/x/net/netutil"

	"hybridns/forwarder"
	"hybridns/r53"
	"hybridns/server"
	"hybridns/server/api"
	"hybridns/server/secondary"
	"hybridns/zonestore"
	"hybridns/zonestore/reverse"
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

	mu     sync.Mutex // serializes reloads
	cfg    *Config
	cur    atomic.Pointer[Config] // cfg, for readers that must not wait on a reload
	fwd    forwarderCloser
	fwdNow atomic.Pointer[forwarder.Forwarder] // for metrics: read without waiting on a reload
	loader *zonedir.Loader
	// releaser returns the garbage of big zone-file loads to the OS.
	releaser memReleaser
	// viewLoaders serve the zone_dir of views (views: [{zone_dir}]).
	viewLoaders []*zonedir.Loader
	syncers     []*r53.Syncer
	seconds     []*secondary.Zone
	follow      *follower // follow: the fleet feed of other instances
	pushers     []*pusher
	limiter     *rate.Limiter
	api         r53.APICounters

	apiHandler *api.Handler
	revSynth   *reverse.Synth
	revWriter  *reverseWriter

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
	logBuiltinRules(cfg, log)
	// Zone files and snapshots load with the collector relaxed meanwhile:
	// a cold start builds a lot of long-lived data, and GC would otherwise
	// spend more time scanning it than the load takes (a 1M-record zone
	// file: a fifth of the CPU of its load). Process tuning is ours to do,
	// not the library's.
	d.releaser.hold()
	gc := debug.SetGCPercent(400)
	if gc < 0 || gc > 400 {
		debug.SetGCPercent(gc) // the operator's GOGC is laxer already
	}
	if cfg.ZoneDir != "" {
		d.loader = zonedir.New(cfg.ZoneDir, d.store, zonestore.DefaultView, log)
		d.loader.Reject = func(origin string) error { return ruleConflict(d.config(), origin) }
		d.loader.Parsed = d.releaser.parsed
		d.loader.SetOptions(cfg.zoneOptions())
		d.loader.SetZones(zoneEntries(cfg.Zones))
		// A broken file is logged and its zone answers SERVFAIL (never
		// forwarded) until it loads; the others serve. /readyz waits for all.
		_ = d.loader.Scan()
		go func() {
			if err := d.loader.Watch(ctx, 30*time.Second); err != nil {
				log.Error("zone dir watch stopped; SIGHUP still rescans", slog.Any("err", err))
			}
		}()
	}
	d.startViewLoaders(ctx, cfg)
	// One limiter for every Route 53 request of the process: the budget
	// is the account's, whatever calls.
	d.limiter = r53.NewLimiter(cfg.Route53.RPS, cfg.Route53.Burst)
	if d.syncers, err = buildSyncers(ctx, cfg, d.store, log, &d.api, d.limiter); err != nil {
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
	debug.SetGCPercent(gc)
	d.releaser.resume()
	if d.seconds, d.pushers, err = d.buildSecondaries(ctx, cfg); err != nil {
		return err
	}
	for _, z := range d.seconds {
		_ = z.Load() // the copy on disk, or the zone claimed (SERVFAIL) until a transfer
	}
	if d.follow, err = d.buildFollower(cfg); err != nil {
		return err
	}
	if d.follow != nil {
		d.follow.load(ctx) // the copies on disk: a restart serves at once
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
	scfg.MaxTCPConnsPerClient = cfg.TCP.MaxConnectionsPerClient
	scfg.NSID, _ = cfg.nsidBytes() // validated
	for _, p := range cfg.ProxyProtocol.Trusted {
		scfg.ProxyTrusted = append(scfg.ProxyTrusted, mustPrefix(p))
	}
	// The query log is always wired; log.queries (changeable on reload)
	// says which fraction of queries it gets.
	scfg.QueryLog, scfg.QueryLogSample = log.With(slog.String("component", "querylog")), cfg.Log.Queries
	scfg.RRL = rrlConfig(cfg)
	if specs := cfg.synthSpecs(); len(specs) > 0 {
		d.revSynth = reverse.New(d.store, specs, log.With(slog.String("component", "reverse")))
		d.revSynth.Sync()
		go d.revSynth.Run(ctx.Done())
	}
	if d.revWriter = newReverseWriter(cfg, d.syncers, log.With(slog.String("component", "reverse"))); d.revWriter != nil {
		for _, sy := range d.syncers {
			sy.SetAfterWrite(d.revWriter.afterWrite)
		}
	}
	scfg.Updater, scfg.UpdateTimeout = r53Updater{syncers: d.syncers, synth: d.revSynth}, cfg.UpdateTimeout
	scfg.Notify = notifiers{secondaries: notifyRouter(d.seconds), follow: d.follow}
	if d.srv, err = server.New(scfg); err != nil {
		return err
	}
	if err := d.srv.Reconfigure(d.policy(cfg, d.fwd)); err != nil {
		return err
	}
	if err := d.srv.Start(ctx); err != nil {
		return bindHint(err)
	}
	for _, sy := range d.syncers {
		go sy.Run(ctx)
	}
	for _, z := range d.seconds {
		go z.Run(ctx)
	}
	for _, p := range d.pushers {
		go p.run(ctx)
	}
	if d.follow != nil {
		d.follow.start(ctx)
		go d.follow.run(ctx)
	}
	if fleetEnabled(cfg) {
		go newFleetFeed(d.store, d.syncers, cfg.Catalog.Zone, log).run(ctx, func() bool { return d.notReady() == "" })
	}
	d.loaded.Store(true)

	var httpSrv, apiSrv *http.Server
	if cfg.HTTPListen != "" {
		if httpSrv, err = d.startHTTP(cfg.HTTPListen); err != nil {
			_ = d.srv.Shutdown(context.Background())
			return err
		}
	}
	if cfg.APIListen != "" {
		if apiSrv, err = d.startAPI(ctx, cfg); err != nil {
			_ = d.srv.Shutdown(context.Background())
			return err
		}
	}

	var stopSig os.Signal
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			_ = d.reload("SIGHUP")
			continue
		}
		stopSig = sig
		break
	}
	// Drain: /readyz turns 503 at once, DNS keeps answering for the lame
	// duck period so the load balancer moves traffic away, then the
	// listeners close after answering what is in flight. The lame duck is
	// for SIGTERM, what an orchestrator sends; Ctrl-C (SIGINT) in a
	// terminal stops at once.
	d.draining.Store(true)
	lame := 5 * time.Second
	if d.config().LameDuck != nil {
		lame = *d.config().LameDuck
	}
	if stopSig == syscall.SIGINT {
		lame = 0
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
	if apiSrv != nil {
		_ = apiSrv.Shutdown(shutCtx)
	}
	d.closeForwarder()
	log.Info("stopped")
	return err
}

func (d *daemon) config() *Config { return d.cur.Load() }

// closeForwarder takes the forwarder out under the lock and closes it after
// releasing it: Close waits for upstream exchanges, and a reload or an HTTP
// request must not wait on those.
func (d *daemon) closeForwarder() {
	d.mu.Lock()
	fwd := d.fwd
	d.fwd = nil
	d.mu.Unlock()
	d.setForwarder(nil)
	if fwd != nil {
		fwd.Close()
	}
}

func (d *daemon) setForwarder(f forwarderCloser) {
	ff, _ := f.(*forwarder.Forwarder)
	d.fwdNow.Store(ff) // nil when forwarding is off
}

// policy is the run-time-changeable part of cfg for the server.
func (d *daemon) policy(cfg *Config, fwd forwarderCloser) server.Policy {
	p := server.Policy{Routing: routingClient(cfg, d.syncers)}
	if d.follow != nil && len(d.syncers) == 0 {
		p.Routing.Healthy = d.follow.Healthy // health as the primaries report it
	}
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
		if v.AllowQuery != nil {
			sv.AllowQuery = []netip.Prefix{} // given: exactly these ([] refuses every client of the view)
			for _, pfx := range v.AllowQuery {
				sv.AllowQuery = append(sv.AllowQuery, mustPrefix(pfx))
			}
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
	unused, err := d.reloadLocked(why)
	d.mu.Unlock()
	if unused != nil {
		unused.Close() // never served: nothing to wait for, but not under the lock
	}
	return err
}

// reloadLocked is reload under d.mu; it returns a forwarder it built but
// did not put in service, for the caller to close.
func (d *daemon) reloadLocked(why string) (forwarderCloser, error) {
	d.log.Info("reloading config", slog.String("trigger", why))
	next, err := configFromCLI(d.cli)
	if err == nil {
		err = d.checkImmutable(next)
	}
	var fwd forwarderCloser
	if err == nil {
		if sameForwarding(d.cfg, next) {
			fwd = d.fwd
		} else if fwd, err = rebuildForwarder(next, d.log, d.fwd); err != nil {
			err = fmt.Errorf("forwarding: %w", err)
		}
	}
	if err != nil {
		d.log.Error("config rejected, the running config stays", slog.Any("err", err))
		return nil, err
	}
	if err := d.srv.Reconfigure(d.policy(next, fwd)); err != nil {
		d.log.Error("config rejected, the running config stays", slog.Any("err", err))
		if fwd != d.fwd && fwd != nil {
			return fwd, err
		}
		return nil, err
	}
	if old := d.fwd; old != fwd && old != nil {
		// Queries in flight may still use it for a moment.
		time.AfterFunc(10*time.Second, func() { old.Close() })
	}
	d.fwd, d.cfg = fwd, next
	d.cur.Store(next)
	if d.apiHandler != nil {
		tokens, _ := next.apiTokens() // validated
		d.apiHandler.SetTokens(tokens)
	}
	d.setForwarder(fwd)
	d.level.Set(parseLevel(next.Log.Level))
	d.srv.SetQueryLogSample(next.Log.Queries)
	for _, l := range d.zoneLoaders() {
		// A new config may change a refused file's verdict (limits, a
		// forwarding rule gone): retry those too.
		l.SetOptions(next.zoneOptions())
		if l == d.loader {
			l.SetZones(zoneEntries(next.Zones)) // zones: changes on reload
		}
		_ = l.Rescan()
	}
	d.log.Info("config reloaded")
	return nil, nil
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
	same("views' zone_dir and zones", d.cfg.viewZoneDirs(), next.viewZoneDirs())
	same("route53", d.cfg.Route53, next.Route53)
	same("snapshot_dir", d.cfg.SnapshotDir, next.SnapshotDir)
	same("secondary", d.cfg.Secondary, next.Secondary)
	same("follow", d.cfg.Follow, next.Follow)
	same("proxy_protocol", d.cfg.ProxyProtocol, next.ProxyProtocol)
	same("tcp", d.cfg.TCP, next.TCP)
	same("rate_limit", d.cfg.RRL, next.RRL)
	same("log.format", d.cfg.Log.Format, next.Log.Format)
	same("http_control_from", d.cfg.HTTPControl, next.HTTPControl)
	same("api_listen", d.cfg.APIListen, next.APIListen)
	same("api_tls_cert", d.cfg.APITLSCert, next.APITLSCert)
	same("api_tls_key", d.cfg.APITLSKey, next.APITLSKey)
	same("api_allow_plain_http", d.cfg.APIAllowPlainHTTP, next.APIAllowPlainHTTP)
	same("api_trusted_proxies", d.cfg.APITrustedProxies, next.APITrustedProxies)
	same("api_proxy_protocol", d.cfg.APIProxyProtocol, next.APIProxyProtocol)
	same("reverse", d.cfg.Reverse, next.Reverse)
	same("catalog", d.cfg.Catalog, next.Catalog)
	same("journal", d.cfg.Journal, next.Journal)
	same("nsid", d.cfg.NSID, next.NSID)
	same("log.errors_per_second", d.cfg.Log.ErrorsPerSecond, next.Log.ErrorsPerSecond)
	return errors.Join(errs...)
}

func sameForwarding(a, b *Config) bool {
	return reflect.DeepEqual(a.Forward, b.Forward) && reflect.DeepEqual(a.ForwardDefault, b.ForwardDefault) &&
		reflect.DeepEqual(a.resolvServers, b.resolvServers) &&
		reflect.DeepEqual(a.AWS, b.AWS) && a.Cache == b.Cache && reflect.DeepEqual(a.Upstream, b.Upstream)
}

func (d *daemon) ready() bool { return d.notReady() == "" }

// notReady says why the instance is not ready, "" when it is.
func (d *daemon) notReady() string {
	if d.draining.Load() {
		return "draining"
	}
	if !d.loaded.Load() {
		return "zones still loading"
	}
	for _, l := range d.zoneLoaders() {
		// A zone file that has never loaded is a zone we cannot answer.
		if err := l.Ready(); err != nil {
			return err.Error()
		}
	}
	for _, sy := range d.syncers {
		if !sy.Ready() {
			return "zones still loading"
		}
	}
	for _, z := range d.seconds {
		if !z.Ready() {
			return "secondary zone " + z.Origin() + " has no data (never transferred, or expired)"
		}
	}
	if d.follow != nil {
		return d.follow.notReady()
	}
	return ""
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
	m := d.srv.HealthProbe() // answered, not counted as a client query
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	_, _, err := c.Exchange(m, addr.String())
	return err
}

// mux is the HTTP endpoint: health, readiness, metrics and the control
// requests.
func (d *daemon) mux() http.Handler {
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
			http.Error(w, "not ready: "+d.notReady(), http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		if !allowed(r) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		if err := controlRequestOK(r); err != nil {
			http.Error(w, "forbidden: "+err.Error(), http.StatusForbidden)
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
		if err := controlRequestOK(r); err != nil {
			http.Error(w, "forbidden: "+err.Error(), http.StatusForbidden)
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
	d.statusRoutes(mux, func(w http.ResponseWriter, r *http.Request) bool {
		if !allowed(r) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return false
		}
		if err := controlRequestOK(r); err != nil {
			http.Error(w, "forbidden: "+err.Error(), http.StatusForbidden)
			return false
		}
		return true
	})
	return mux
}

func (d *daemon) startHTTP(addr string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", addr, err)
	}
	hs := serveHTTP(ln, d.mux(), d.log)
	d.log.Info("http listening", slog.String("addr", ln.Addr().String()))
	return hs, nil
}

// httpLimits bound the HTTP endpoint, so idle or slow clients cannot hold
// it: a cap on open connections (beyond it, new ones wait in the kernel's
// backlog until one closes) and timeouts on every phase. Variables so that
// tests can shrink them.
var httpLimits = struct {
	maxConns, maxConnsPerClient   int
	readHeader, read, write, idle time.Duration
	maxHeaderBytes                int
}{maxConns: 128, maxConnsPerClient: 16, readHeader: 5 * time.Second, read: 30 * time.Second, write: time.Minute, idle: time.Minute, maxHeaderBytes: 16 << 10}

// serveHTTP serves h on ln within httpLimits until the server is shut down.
func serveHTTP(ln net.Listener, h http.Handler, log *slog.Logger) *http.Server {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: httpLimits.readHeader,
		ReadTimeout:       httpLimits.read,
		WriteTimeout:      httpLimits.write,
		IdleTimeout:       httpLimits.idle,
		MaxHeaderBytes:    httpLimits.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	// One address may hold only a share of the slots: connections beyond
	// it are closed at once, so it cannot keep the load balancer's health
	// checks waiting.
	ln = &perClientListener{Listener: netutil.LimitListener(ln, httpLimits.maxConns), max: httpLimits.maxConnsPerClient, open: map[netip.Addr]int{}}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", slog.Any("err", err))
		}
	}()
	return hs
}

// perClientListener closes a client's connections beyond max.
type perClientListener struct {
	net.Listener
	max  int
	mu   sync.Mutex
	open map[netip.Addr]int
}

func (l *perClientListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		ip := ap.Addr().Unmap()
		l.mu.Lock()
		if l.open[ip] >= l.max {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.open[ip]++
		l.mu.Unlock()
		return &perClientConn{Conn: c, l: l, ip: ip}, nil
	}
}

type perClientConn struct {
	net.Conn
	l    *perClientListener
	ip   netip.Addr
	once sync.Once
}

func (c *perClientConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		if c.l.open[c.ip]--; c.l.open[c.ip] <= 0 {
			delete(c.l.open, c.ip)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// controlRequestOK refuses what a web page could make a browser send to
// POST /reload and /sync (cross-site request forgery, DNS rebinding). A
// control request must:
//   - not come from another site: Sec-Fetch-Site, when sent, is
//     "same-origin" or "none"; Origin, when sent, names the Host asked for;
//   - not be a form: no Content-Type a browser may send cross-site without
//     a preflight (application/x-www-form-urlencoded, multipart/form-data,
//     text/plain); no Content-Type (curl -X POST) or any other is fine;
//   - name the server by address: Host is an IP address or localhost, so a
//     rebinding name that resolves to us is refused.
//
// curl, Prometheus and scripts send none of these headers and pass.
func controlRequestOK(r *http.Request) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return fmt.Errorf("cross-site request (Sec-Fetch-Site: %s)", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return fmt.Errorf("cross-origin request (Origin %q, Host %q)", origin, r.Host)
		}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return fmt.Errorf("content type %q: %w", ct, err)
		}
		switch mt {
		case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
			return fmt.Errorf("content type %s is what an HTML form sends; send no body (curl -X POST)", mt)
		}
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil && !strings.EqualFold(host, "localhost") {
		return fmt.Errorf("host %q: address the control endpoint by IP address or localhost", r.Host)
	}
	return nil
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
