package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"hybridns/r53"
	"hybridns/server"
	"hybridns/zonestore"
	"hybridns/zonestore/zonedir"
)

// configFromCLI reads the config file (if any) and applies flags on top.
func configFromCLI(c *cli.Context) (*Config, error) {
	cfg := &Config{}
	if path := c.String("config"); path != "" {
		var err error
		if cfg, err = loadConfig(path); err != nil {
			return nil, err
		}
	}
	if c.IsSet("listen") {
		cfg.Listen = splitList(c.StringSlice("listen"))
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{":53"}
	}
	if c.IsSet("zone-dir") {
		cfg.ZoneDir = c.String("zone-dir")
	}
	if c.IsSet("http-listen") {
		cfg.HTTPListen = c.String("http-listen")
	}
	if c.IsSet("forward") {
		cfg.Forward = nil
		for _, f := range c.StringSlice("forward") {
			zone, ups, ok := strings.Cut(f, "=")
			if !ok || zone == "" || ups == "" {
				return nil, fmt.Errorf("--forward %q: want ZONE=ADDR[,ADDR…]", f)
			}
			cfg.Forward = append(cfg.Forward, ForwardRule{Zone: zone, Upstreams: splitList([]string{ups})})
		}
	}
	if c.IsSet("forward-default") {
		cfg.ForwardDefault = splitList([]string{c.String("forward-default")})
	}
	if c.IsSet("allow-recursion") {
		cfg.AllowRecursion = splitList([]string{c.String("allow-recursion")})
		if cfg.AllowRecursion == nil {
			cfg.AllowRecursion = []string{}
		}
	}
	if c.IsSet("vpc-cidr") {
		cfg.AWS.VPCCIDR = c.String("vpc-cidr")
	}
	if c.IsSet("route53") {
		cfg.Route53.Discover = c.Bool("route53")
	}
	if c.IsSet("route53-zone") {
		cfg.Route53.Zones = splitList(c.StringSlice("route53-zone"))
	}
	if c.IsSet("route53-endpoint") {
		cfg.Route53.Endpoint = c.String("route53-endpoint")
	}
	if c.IsSet("route53-interval") {
		cfg.Route53.Interval = c.Duration("route53-interval")
	}
	if c.IsSet("route53-rps") {
		cfg.Route53.RPS = c.Float64("route53-rps")
	}
	if c.IsSet("snapshot-dir") {
		cfg.SnapshotDir = c.String("snapshot-dir")
	}
	if c.IsSet("log-level") {
		cfg.Log.Level = c.String("log-level")
	}
	if c.IsSet("log-format") {
		cfg.Log.Format = c.String("log-format")
	}
	return cfg, cfg.validate()
}

// splitList flattens comma-separated values.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func newLogger(cfg LogConfig) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(cfg.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func checkCmd(c *cli.Context) error {
	cfg, err := configFromCLI(c)
	if err != nil {
		return err
	}
	var errs []error
	fwd, err := buildForwarder(cfg, nil)
	if err != nil {
		errs = append(errs, err)
	} else if fwd != nil {
		defer fwd.Close()
	}
	zones := 0
	if cfg.ZoneDir != "" {
		zs, err := zonedir.Parse(cfg.ZoneDir)
		if err != nil {
			errs = append(errs, err)
		}
		for _, z := range zs {
			if err := ruleConflict(cfg, z.Origin()); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", z.Source(), err))
			}
			fmt.Fprintf(c.App.Writer, "zone %s: %d records, serial %d (%s)\n", z.Origin(), z.Records(), z.Serial(), z.Source())
		}
		zones = len(zs)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "ok: %d zones\n", zones)
	return nil
}

// ruleConflict reports a configured forwarding rule for exactly a served
// zone's name: which of the two should answer would be a guess. (A built-in
// AWS rule yields to a served zone of the same name: the zone answers.)
func ruleConflict(cfg *Config, origin string) error {
	for _, r := range cfg.Forward {
		if zonestore.Canonical(r.Zone) == origin {
			return fmt.Errorf("zone %s is also a forwarding rule (%s); remove one", origin, cfg.where(r.line))
		}
	}
	if origin == "." && len(cfg.ForwardDefault) > 0 {
		return fmt.Errorf("the root zone is served and forward_default is set; remove one")
	}
	return nil
}

func serveCmd(c *cli.Context) error {
	cfg, err := configFromCLI(c)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log)
	log.Info("starting", slog.String("version", buildVersion()))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	store := zonestore.NewStore()
	fwd, err := buildForwarder(cfg, log)
	if err != nil {
		return err
	}
	var srvFwd server.Forwarder
	if fwd != nil {
		defer fwd.Close()
		srvFwd = fwd
	}
	recursion, _ := cfg.recursionPrefixes()
	views := make([]server.View, 0, len(cfg.Views))
	for _, v := range cfg.Views {
		sv := server.View{Name: v.Name}
		for _, p := range v.Clients {
			sv.Clients = append(sv.Clients, mustPrefix(p))
		}
		views = append(views, sv)
	}

	var ready atomic.Bool
	var loader *zonedir.Loader
	if cfg.ZoneDir != "" {
		loader = zonedir.New(cfg.ZoneDir, store, zonestore.DefaultView, log)
		loader.Reject = func(origin string) error { return ruleConflict(cfg, origin) }
		// A broken file is logged and skipped; the others serve.
		_ = loader.Scan()
		go func() {
			if err := loader.Watch(ctx, 200*time.Millisecond, 30*time.Second); err != nil {
				log.Error("zone dir watch stopped; SIGHUP still reloads", slog.Any("err", err))
			}
		}()
	}

	syncers, err := buildSyncers(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	for _, sy := range syncers {
		// Serve the last known data before the first API call.
		if n, err := sy.LoadSnapshots(); err != nil {
			log.Error("snapshot", slog.Any("err", err))
		} else if n > 0 {
			log.Info("serving zones from the snapshot", slog.Int("zones", n))
		}
	}

	srv, err := server.New(server.Config{
		Listen:         cfg.Listen,
		Store:          store,
		Forwarder:      srvFwd,
		AllowRecursion: recursion,
		Views:          views,
		Routing:        routingClient(cfg, syncers),
		Logger:         log,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	for _, sy := range syncers {
		go sy.Run(ctx)
	}
	// Ready once every zone source has delivered: the zone directory has
	// been read, every Route 53 zone comes from a sync or the snapshot.
	isReady := func() bool {
		if !ready.Load() {
			return false
		}
		for _, sy := range syncers {
			if !sy.Ready() {
				return false
			}
		}
		return true
	}
	ready.Store(true)

	var httpSrv *http.Server
	if cfg.HTTPListen != "" {
		httpSrv, err = startHTTP(cfg.HTTPListen, isReady, syncers, log)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return err
		}
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			log.Info("SIGHUP: rescanning zones")
			if loader != nil {
				_ = loader.Scan()
			}
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down")
	ready.Store(false)
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if httpSrv != nil {
		_ = httpSrv.Shutdown(shutCtx)
	}
	return srv.Shutdown(shutCtx)
}

func startHTTP(addr string, ready func() bool, syncers []*r53.Syncer, log *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("POST /sync", func(w http.ResponseWriter, r *http.Request) {
		zone := r.URL.Query().Get("zone")
		if zone == "" {
			http.Error(w, "zone= is required", http.StatusBadRequest)
			return
		}
		var errs []error
		for _, s := range syncers {
			if err := s.Trigger(zone); err == nil {
				fmt.Fprintf(w, "refresh of %s queued\n", zone)
				return
			} else {
				errs = append(errs, err)
			}
		}
		http.Error(w, fmt.Sprintf("%v", errors.Join(errs...)), http.StatusNotFound)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", addr, err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", slog.Any("err", err))
		}
	}()
	log.Info("http listening", slog.String("addr", ln.Addr().String()))
	return hs, nil
}
