package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"
	"github.com/urfave/cli/v2"

	"hybridns/forwarder"
	"hybridns/zonestore"
)

// processStart is when the process started, for the uptime in /status.
var processStart = time.Now()

// statusReport is GET /status: what `rndc status` and `rndc zonestatus`
// tell a BIND operator, in one JSON document.
type statusReport struct {
	Version       string                 `json:"version"`
	StartedAt     time.Time              `json:"started_at"`
	UptimeSeconds int64                  `json:"uptime_seconds"`
	Ready         bool                   `json:"ready"`
	NotReady      string                 `json:"not_ready,omitempty"`
	Zones         []zoneReport           `json:"zones"`
	Forwarding    []forwarder.RuleStatus `json:"forwarding"`
	BuiltinRules  []builtinRule          `json:"builtin_aws_rules"`
	Cache         *cacheReport           `json:"cache,omitempty"`
}

type zoneReport struct {
	Zone      string            `json:"zone"`
	View      string            `json:"view"`
	Source    string            `json:"source"` // file path, route53:ID, secondary:PRIMARY[,PRIMARY]
	Serial    uint32            `json:"serial"`
	Records   int               `json:"records"`
	Serving   bool              `json:"serving"` // false: claimed without data (SERVFAIL)
	LoadedAt  *time.Time        `json:"loaded_at,omitempty"`
	LastError string            `json:"last_error,omitempty"`
	Primaries map[string]string `json:"primaries,omitempty"` // secondary zones: primary → last outcome
}

type builtinRule struct {
	Zone     string `json:"zone"`
	Upstream string `json:"upstream"`
}

type cacheReport struct {
	Entries int   `json:"entries"`
	Bytes   int64 `json:"bytes"`
}

// builtinRulesInForce lists the built-in AWS forwarding rules cfg turns on,
// without those a configured rule of the same name replaces.
func builtinRulesInForce(cfg *Config) []builtinRule {
	if len(cfg.Forward) == 0 && len(cfg.ForwardDefault) == 0 {
		return nil
	}
	if cfg.AWS.BuiltinRules != nil && !*cfg.AWS.BuiltinRules {
		return nil
	}
	own := map[string]bool{}
	for _, r := range cfg.Forward {
		own[zonestore.Canonical(r.Zone)] = true
	}
	up, err := forwarder.ParseUpstream(forwarder.VPCKeyword, cfg.AWS.VPCCIDR)
	if err != nil {
		up = forwarder.VPCKeyword
	}
	var out []builtinRule
	for _, r := range forwarder.AWSRules(cfg.AWS.VPCCIDR) {
		if !own[zonestore.Canonical(r.Suffix)] {
			out = append(out, builtinRule{Zone: zonestore.Canonical(r.Suffix), Upstream: up})
		}
	}
	return out
}

// logBuiltinRules says at start which built-in rules are in force, so a
// name that goes to the VPC resolver is no surprise.
func logBuiltinRules(cfg *Config, log *slog.Logger) {
	rules := builtinRulesInForce(cfg)
	if len(rules) == 0 {
		return
	}
	zones := make([]string, len(rules))
	for i, r := range rules {
		zones[i] = r.Zone
	}
	log.Info("built-in AWS forwarding rules on (aws.builtin_rules: false turns them off)",
		slog.String("upstream", rules[0].Upstream), slog.String("zones", strings.Join(zones, " ")))
}

func viewName(v string) string {
	if v == zonestore.DefaultView {
		return "default"
	}
	return v
}

// status gathers the report from every zone source and the forwarder.
func (d *daemon) status() statusReport {
	cfg := d.config()
	now := time.Now()
	rep := statusReport{Version: buildVersion(), StartedAt: processStart.UTC().Truncate(time.Second),
		UptimeSeconds: int64(now.Sub(processStart).Seconds()), Zones: []zoneReport{}, Forwarding: []forwarder.RuleStatus{},
		BuiltinRules: builtinRulesInForce(cfg)}
	rep.NotReady = d.notReady()
	rep.Ready = rep.NotReady == ""
	if rep.BuiltinRules == nil {
		rep.BuiltinRules = []builtinRule{}
	}
	snap := d.store.Load()
	covered := map[[2]string]bool{}
	add := func(z zoneReport, view string) {
		covered[[2]string{view, z.Zone}] = true
		if sz := snap.Zone(view, z.Zone); sz != nil && sz.Available() {
			z.Serving, z.Serial, z.Records = true, sz.Serial(), sz.Records()
		}
		z.View = viewName(view)
		rep.Zones = append(rep.Zones, z)
	}
	for _, l := range d.zoneLoaders() {
		for _, f := range l.Status() {
			z := zoneReport{Zone: f.Zone, Source: f.File, LastError: f.LastError}
			if !f.LoadedAt.IsZero() {
				t := f.LoadedAt.UTC()
				z.LoadedAt = &t
			}
			add(z, f.View)
		}
	}
	for _, sy := range d.syncers {
		for _, st := range sy.Status() {
			views := st.Views
			if len(views) == 0 {
				views = []string{zonestore.DefaultView}
			}
			for _, v := range views {
				z := zoneReport{Zone: zonestore.Canonical(st.Name), Source: "route53:" + st.ID, LastError: st.LastError}
				if !st.LastSync.IsZero() {
					t := st.LastSync.UTC()
					z.LoadedAt = &t
				}
				add(z, v)
			}
		}
	}
	for _, sz := range d.seconds {
		st := sz.Status()
		prims := make([]string, 0, len(st.Primaries))
		for p := range st.Primaries {
			prims = append(prims, p)
		}
		sort.Strings(prims)
		z := zoneReport{Zone: st.Zone, Source: "secondary:" + strings.Join(prims, ","), LastError: st.LastError, Primaries: st.Primaries}
		if !st.LastRefresh.IsZero() {
			t := st.LastRefresh.UTC()
			z.LoadedAt = &t
		}
		add(z, st.View)
	}
	if d.follow != nil {
		for _, fz := range d.follow.served() {
			st := fz.st
			z := zoneReport{Zone: fz.origin, Source: "follow:" + strings.Join(d.follow.cfg.Primaries, ","), LastError: st.LastError, Primaries: st.Primaries}
			if !st.LastRefresh.IsZero() {
				t := st.LastRefresh.UTC()
				z.LoadedAt = &t
			}
			add(z, fz.view)
		}
	}
	// Anything else the store serves (a snapshot not yet claimed by a
	// source, say) is listed with the source it carries.
	for _, v := range snap.Views() {
		if v == zonestore.FleetView {
			continue // the fleet feed: followers' form of the zones listed
		}
		for _, sz := range snap.Zones(v) {
			if !covered[[2]string{v, sz.Origin()}] {
				add(zoneReport{Zone: sz.Origin(), Source: sz.Source()}, v)
			}
		}
	}
	slices.SortFunc(rep.Zones, func(a, b zoneReport) int {
		return cmpStrings(a.Zone, b.Zone, a.View, b.View)
	})
	if f := d.fwdNow.Load(); f != nil {
		rep.Forwarding = f.Rules()
		st := f.Stats()
		rep.Cache = &cacheReport{Entries: st.CacheSize, Bytes: st.CacheBytes}
	}
	return rep
}

func cmpStrings(a1, b1, a2, b2 string) int {
	if c := strings.Compare(a1, b1); c != 0 {
		return c
	}
	return strings.Compare(a2, b2)
}

// statusRoutes adds GET /status and POST /cache/flush; control says
// whether a request may steer the instance (the checks POST /reload has).
func (d *daemon) statusRoutes(mux *http.ServeMux, control func(http.ResponseWriter, *http.Request) bool) {
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(d.status())
	})
	mux.HandleFunc("POST /cache/flush", func(w http.ResponseWriter, r *http.Request) {
		if !control(w, r) {
			return
		}
		name := r.URL.Query().Get("name")
		if name != "" {
			if _, ok := dns.IsDomainName(name); !ok {
				http.Error(w, fmt.Sprintf("name %q: not a domain name", name), http.StatusBadRequest)
				return
			}
		}
		f := d.fwdNow.Load()
		if f == nil {
			http.Error(w, "nothing is forwarded, so nothing is cached", http.StatusNotFound)
			return
		}
		n := f.Flush(name)
		if name == "" {
			d.log.Info("cache flushed", slog.Int("entries", n))
			fmt.Fprintf(w, "flushed %d entries\n", n)
			return
		}
		d.log.Info("cache flushed for a name and below", slog.String("name", zonestore.Canonical(name)), slog.Int("entries", n))
		fmt.Fprintf(w, "flushed %d entries at and below %s\n", n, zonestore.Canonical(name))
	})
}

// statusCmd is `hybridns status`: GET /status of a running instance,
// printed as tables.
func statusCmd(c *cli.Context) error {
	addr := c.String("http")
	rep, err := fetchStatus(addr, 5*time.Second)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printStatus(c.App.Writer, rep, time.Now())
	return nil
}

func fetchStatus(addr string, timeout time.Duration) (*statusReport, error) {
	cl := &http.Client{Timeout: timeout}
	resp, err := cl.Get("http://" + httpTarget(addr) + "/status")
	if err != nil {
		return nil, fmt.Errorf("status: %w (is hybridns serving HTTP on %s? see --http)", err, addr)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("status: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var rep statusReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return nil, fmt.Errorf("status: reply from %s: %w", addr, err)
	}
	return &rep, nil
}

func printStatus(w io.Writer, rep *statusReport, now time.Time) {
	ready := "ready"
	if !rep.Ready {
		ready = "not ready: " + rep.NotReady
	}
	fmt.Fprintf(w, "hybridns %s, up %s, %s\n", rep.Version, (time.Duration(rep.UptimeSeconds) * time.Second).String(), ready)
	fmt.Fprintf(w, "\nZONES (%d)\n", len(rep.Zones))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tVIEW\tSOURCE\tSERIAL\tRECORDS\tLOADED\tLAST ERROR")
	for _, z := range rep.Zones {
		loaded := "never"
		if z.LoadedAt != nil {
			loaded = z.LoadedAt.Format(time.RFC3339) + " (" + now.Sub(*z.LoadedAt).Truncate(time.Second).String() + " ago)"
		}
		serial, records := fmt.Sprint(z.Serial), fmt.Sprint(z.Records)
		if !z.Serving {
			serial, records = "-", "SERVFAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", z.Zone, z.View, z.Source, serial, records, loaded, dash(z.LastError))
	}
	tw.Flush()
	for _, z := range rep.Zones {
		if len(z.Primaries) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nPRIMARIES OF %s (view %s)\n", z.Zone, z.View)
		prims := make([]string, 0, len(z.Primaries))
		for p := range z.Primaries {
			prims = append(prims, p)
		}
		sort.Strings(prims)
		for _, p := range prims {
			fmt.Fprintf(w, "  %s\t%s\n", p, z.Primaries[p])
		}
	}
	fmt.Fprintf(w, "\nFORWARDING (%d rules)\n", len(rep.Forwarding))
	if len(rep.Forwarding) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ZONE\tPOLICY\tUPSTREAM\tHEALTH\tQUERIES\tANSWERS\tTIMEOUTS\tMEAN RTT")
		for _, r := range rep.Forwarding {
			for i, u := range r.Upstreams {
				zone, policy := r.Suffix, string(r.Policy)
				if i > 0 {
					zone, policy = "", ""
				}
				health := "up"
				if !u.Up {
					health = "DOWN"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%.1fms\n", zone, policy, u.Addr, health, u.Queries, u.Answers, u.Timeouts, u.MeanRTTMillis)
			}
		}
		tw.Flush()
	}
	if len(rep.BuiltinRules) > 0 {
		zones := make([]string, len(rep.BuiltinRules))
		for i, r := range rep.BuiltinRules {
			zones[i] = r.Zone
		}
		fmt.Fprintf(w, "\nBUILT-IN AWS RULES (to %s)\n  %s\n", rep.BuiltinRules[0].Upstream, strings.Join(zones, " "))
	} else {
		fmt.Fprintf(w, "\nBUILT-IN AWS RULES: none in force\n")
	}
	if rep.Cache != nil {
		fmt.Fprintf(w, "\nCACHE: %d entries, %d bytes\n", rep.Cache.Entries, rep.Cache.Bytes)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
