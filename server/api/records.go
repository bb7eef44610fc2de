package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"hybridns/server"
	"hybridns/zonestore"
	"hybridns/zonestore/dynupdate"
)

// RecordSet is one (name, type) set as the API shows and takes it. Values
// are RDATA in zone-file presentation form ("10 mx.example.", "\"text\"").
type RecordSet struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	TTL    uint32   `json:"ttl"`
	Values []string `json:"values"`
	ETag   string   `json:"etag,omitempty"`
}

// zoneInfo is one entry of GET /zones.
type zoneInfo struct {
	Zone     string `json:"zone"`
	View     string `json:"view"`
	Source   string `json:"source"`
	Records  int    `json:"records"`
	Serial   uint32 `json:"serial"`
	LastSync string `json:"last_sync,omitempty"`
	Writable bool   `json:"writable"`
}

func (h *Handler) listZones(w http.ResponseWriter, r *http.Request, _ Token) {
	snap := h.cfg.Store.Load()
	out := []zoneInfo{}
	var synced map[string]time.Time
	if h.cfg.SyncTimes != nil {
		synced = h.cfg.SyncTimes()
	}
	for _, v := range snap.Views() {
		if v == zonestore.FleetView {
			continue // the followers' form of the zones listed here
		}
		for _, z := range snap.Zones(v) {
			zi := zoneInfo{Zone: z.Origin(), View: v, Source: z.Source(), Records: z.Records(), Serial: z.Serial(),
				Writable: h.cfg.Writer != nil && strings.HasPrefix(z.Source(), "route53:")}
			if t := synced[z.Source()]; !t.IsZero() {
				zi.LastSync = t.UTC().Format(time.RFC3339)
			}
			out = append(out, zi)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Zone != out[j].Zone {
			return out[i].Zone < out[j].Zone
		}
		return out[i].View < out[j].View
	})
	writeJSON(w, http.StatusOK, map[string]any{"zones": out})
}

// findZone resolves the {zone} path value and the view query parameter:
// the zone in the named view; without one, the default view's, or the
// only view that has it.
func (h *Handler) findZone(w http.ResponseWriter, r *http.Request) (*zonestore.Zone, string, bool) {
	raw := r.PathValue("zone")
	if _, ok := dns.IsDomainName(raw); !ok || raw == "" {
		writeError(w, http.StatusBadRequest, "bad_zone", fmt.Sprintf("%q is not a zone name", raw))
		return nil, "", false
	}
	origin := zonestore.Canonical(raw)
	snap := h.cfg.Store.Load()
	q := r.URL.Query()
	if q.Has("view") {
		view := q.Get("view")
		if z := snap.Zone(view, origin); z != nil {
			return z, view, true
		}
		writeError(w, http.StatusNotFound, "unknown_zone", fmt.Sprintf("zone %s is not served in view %q", origin, view))
		return nil, "", false
	}
	if z := snap.Zone(zonestore.DefaultView, origin); z != nil {
		return z, zonestore.DefaultView, true
	}
	var found *zonestore.Zone
	var views []string
	for _, v := range snap.Views() {
		if z := snap.Zone(v, origin); z != nil {
			found = z
			views = append(views, v)
		}
	}
	switch len(views) {
	case 0:
		writeError(w, http.StatusNotFound, "unknown_zone", fmt.Sprintf("zone %s is not served here", origin))
		return nil, "", false
	case 1:
		return found, views[0], true
	}
	slices.Sort(views)
	writeError(w, http.StatusBadRequest, "ambiguous_zone", fmt.Sprintf("zone %s is served in views %s: say which with ?view=", origin, strings.Join(views, ", ")))
	return nil, "", false
}

// zoneSets is a zone's record sets in canonical order, computed once per
// zone version (a zone never changes; a new version is a new *Zone).
type zoneSets struct {
	sets []RecordSet
	keys []string // sortKey of each set, for the paging cursor
}

// setCache keeps the sets of the zone versions being listed (a page walk
// of a large zone reuses them); old versions fall out.
type setCache struct {
	mu sync.Mutex
	m  map[*zonestore.Zone]*zoneSets
}

func (c *setCache) of(z *zonestore.Zone) *zoneSets {
	c.mu.Lock()
	if zs := c.m[z]; zs != nil {
		c.mu.Unlock()
		return zs
	}
	c.mu.Unlock()
	zs := buildSets(z)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= 16 {
		c.m = map[*zonestore.Zone]*zoneSets{}
	}
	c.m[z] = zs
	c.mu.Unlock()
	return zs
}

func buildSets(z *zonestore.Zone) *zoneSets {
	type key struct {
		name string
		t    uint16
	}
	group := map[key][]dns.RR{}
	var order []key
	for _, rr := range z.RRs() {
		k := key{rr.Header().Name, rr.Header().Rrtype}
		if _, ok := group[k]; !ok {
			order = append(order, k)
		}
		group[k] = append(group[k], rr)
	}
	zs := &zoneSets{}
	for _, k := range order {
		rs := setFromRRs(k.name, k.t, group[k])
		zs.sets = append(zs.sets, rs)
	}
	// RRs is in canonical name order already, SOA first; order types
	// within a name and keep the apex SOA where canonical order puts it.
	sort.SliceStable(zs.sets, func(i, j int) bool { return sortKey(zs.sets[i]) < sortKey(zs.sets[j]) })
	zs.keys = make([]string, len(zs.sets))
	for i, s := range zs.sets {
		zs.keys[i] = sortKey(s)
	}
	return zs
}

// sortKey orders sets canonically (RFC 4034 §6.1: labels from the root)
// and by type number within a name, as a plain string comparison.
func sortKey(s RecordSet) string {
	labels := dns.SplitDomainName(s.Name)
	slices.Reverse(labels)
	t := dns.StringToType[s.Type]
	return strings.Join(labels, "\x01") + "\x00" + fmt.Sprintf("%05d", t)
}

func rdataText(rr dns.RR) string {
	s, h := rr.String(), rr.Header().String()
	return strings.TrimSpace(strings.TrimPrefix(s, h))
}

// setFromRRs is the API form of a set, with its ETag.
func setFromRRs(name string, t uint16, rrs []dns.RR) RecordSet {
	rs := RecordSet{Name: name, Type: dns.TypeToString[t], Values: []string{}}
	for _, rr := range rrs {
		rs.TTL = rr.Header().Ttl
		// The same text (and ETag) whether the set came from the store
		// or from the source's current data.
		c := dns.Copy(rr)
		zonestore.CanonicalRdata(c)
		rs.Values = append(rs.Values, rdataText(c))
	}
	slices.Sort(rs.Values)
	rs.Values = slices.Compact(rs.Values)
	rs.ETag = etag(rs.TTL, rs.Values)
	return rs
}

// etag is a set's version tag: a hash of its TTL and sorted values, so a
// client can say "change it only if it is still what I saw".
func etag(ttl uint32, sortedValues []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", ttl)
	for _, v := range sortedValues {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	return `"` + hex.EncodeToString(h.Sum(nil)[:12]) + `"`
}

const (
	defaultPage = 100
	maxPage     = 1000
)

// listRecords: GET /zones/{zone}/records?name=&type=&prefix=|glob=&limit=&cursor=
func (h *Handler) listRecords(w http.ResponseWriter, r *http.Request, _ Token) {
	z, view, ok := h.findZone(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var want uint16
	if ts := q.Get("type"); ts != "" {
		t, ok := dns.StringToType[strings.ToUpper(ts)]
		if !ok {
			writeError(w, http.StatusBadRequest, "bad_type", fmt.Sprintf("type %q is not a DNS type", ts))
			return
		}
		want = t
	}
	exact := ""
	if n := q.Get("name"); n != "" {
		name, err := ownerName(n, z.Origin())
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_name", err.Error())
			return
		}
		exact = name
	}
	prefix := strings.ToLower(q.Get("prefix"))
	glob := strings.ToLower(q.Get("glob"))
	if glob != "" {
		if _, err := path.Match(glob, ""); err != nil {
			writeError(w, http.StatusBadRequest, "bad_glob", fmt.Sprintf("glob %q: %v", glob, err))
			return
		}
	}
	limit := defaultPage
	if ls := q.Get("limit"); ls != "" {
		n, err := strconv.Atoi(ls)
		if err != nil || n < 1 || n > maxPage {
			writeError(w, http.StatusBadRequest, "bad_limit", fmt.Sprintf("limit %q: want 1 to %d", ls, maxPage))
			return
		}
		limit = n
	}
	zs := h.sets.of(z)
	start := 0
	if c := q.Get("cursor"); c != "" {
		after, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_cursor", fmt.Sprintf("cursor %q is not one this API handed out", c))
			return
		}
		start = sort.SearchStrings(zs.keys, string(after))
		if start < len(zs.keys) && zs.keys[start] == string(after) {
			start++
		}
	}
	// A prefix in canonical order: all names starting with it are not
	// contiguous (order is by labels from the root), so every filter is a
	// scan from the cursor; the scan stops once a page is full.
	out := []RecordSet{}
	next := ""
	for i := start; i < len(zs.sets); i++ {
		s := zs.sets[i]
		if want != 0 && s.Type != dns.TypeToString[want] || exact != "" && s.Name != exact ||
			prefix != "" && !strings.HasPrefix(s.Name, prefix) {
			continue
		}
		if glob != "" {
			if m, _ := path.Match(glob, s.Name); !m {
				if m2, _ := path.Match(glob, strings.TrimSuffix(s.Name, ".")); !m2 {
					continue
				}
			}
		}
		if len(out) == limit {
			next = base64.RawURLEncoding.EncodeToString([]byte(zs.keys[i-1]))
			break
		}
		out = append(out, s)
	}
	resp := map[string]any{"zone": z.Origin(), "view": view, "serial": z.Serial(), "records": out}
	if next != "" {
		resp["next_cursor"] = next
	}
	writeJSON(w, http.StatusOK, resp)
}

// ownerName reads a record name from a URL or query: "@" is the apex, a
// name ending in "." or in the zone's name is absolute, anything else is
// relative to the zone.
func ownerName(raw, origin string) (string, error) {
	if raw == "@" {
		return origin, nil
	}
	if _, ok := dns.IsDomainName(raw); !ok || raw == "" || strings.ContainsAny(raw, " \t\r\n;()\"") {
		return "", fmt.Errorf("%q is not a domain name", raw)
	}
	name := strings.ToLower(raw)
	switch {
	case strings.HasSuffix(name, "."):
	case name+"." == origin || strings.HasSuffix(name+".", "."+origin):
		name += "."
	default:
		name += "." + origin
		if origin == "." {
			name = name[:len(name)-1]
		}
	}
	if !zonestore.InZone(name, origin) {
		return "", fmt.Errorf("%s is not in zone %s", name, origin)
	}
	if _, ok := dns.IsDomainName(name); !ok || len(name) > 255 {
		return "", fmt.Errorf("%q is not a domain name", raw)
	}
	return name, nil
}

// target is a set the request names, resolved.
type target struct {
	zone  *zonestore.Zone
	view  string
	name  string
	t     uint16
	label string // "www.example. A", for messages
}

func (h *Handler) resolveSet(w http.ResponseWriter, r *http.Request) (target, bool) {
	z, view, ok := h.findZone(w, r)
	if !ok {
		return target{}, false
	}
	name, err := ownerName(r.PathValue("name"), z.Origin())
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_name", err.Error())
		return target{}, false
	}
	ts := strings.ToUpper(r.PathValue("type"))
	t, ok := dns.StringToType[ts]
	if !ok || t == dns.TypeANY || t == dns.TypeOPT || t == dns.TypeAXFR || t == dns.TypeIXFR || t == dns.TypeTSIG {
		writeError(w, http.StatusBadRequest, "bad_type", fmt.Sprintf("%s: %q is not a record type", name, r.PathValue("type")))
		return target{}, false
	}
	return target{zone: z, view: view, name: name, t: t, label: name + " " + ts}, true
}

func (h *Handler) getSet(w http.ResponseWriter, r *http.Request, _ Token) {
	tg, ok := h.resolveSet(w, r)
	if !ok {
		return
	}
	zs := h.sets.of(tg.zone)
	key := sortKey(RecordSet{Name: tg.name, Type: dns.TypeToString[tg.t]})
	i := sort.SearchStrings(zs.keys, key)
	if i == len(zs.keys) || zs.keys[i] != key {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("record set %s does not exist", tg.label))
		return
	}
	w.Header().Set("ETag", zs.sets[i].ETag)
	writeJSON(w, http.StatusOK, zs.sets[i])
}

// setBody is PUT's body; patchBody PATCH's.
type setBody struct {
	TTL    *uint32  `json:"ttl"`
	Values []string `json:"values"`
}

type patchBody struct {
	TTL    *uint32  `json:"ttl"`
	Add    []string `json:"add"`
	Remove []string `json:"remove"`
}

const maxBody = 1 << 20

// decode reads a JSON body strictly: unknown fields and trailing data are
// errors.
func decode(w http.ResponseWriter, r *http.Request, label string, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad_json", fmt.Sprintf("%s: request body: %v", label, err))
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "bad_json", label+": request body: data after the JSON object")
		return false
	}
	return true
}

// parseValues turns API values into records of (name, t) with ttl.
func parseValues(name string, t uint16, ttl uint32, values []string) ([]dns.RR, error) {
	var out []dns.RR
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" || strings.ContainsAny(v, "\n\r") {
			return nil, fmt.Errorf("value %q: empty or more than one line", v)
		}
		rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", name, ttl, dns.TypeToString[t], v))
		if err != nil || rr == nil {
			if err == nil {
				err = errors.New("no record")
			}
			return nil, fmt.Errorf("value %q: %v", v, err)
		}
		if rr.Header().Rrtype != t {
			return nil, fmt.Errorf("value %q: not %s data", v, dns.TypeToString[t])
		}
		zonestore.CanonicalRdata(rr)
		if !slices.ContainsFunc(out, func(o dns.RR) bool { return dns.IsDuplicate(o, rr) }) {
			out = append(out, rr)
		}
	}
	return out, nil
}

// preconditions are the request's If-Match / If-None-Match.
type preconditions struct {
	ifMatch, ifNoneMatch []string
}

func readPreconditions(r *http.Request) preconditions {
	split := func(h string) []string {
		var out []string
		for _, v := range r.Header.Values(h) {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(p), "W/")); p != "" {
					out = append(out, p)
				}
			}
		}
		return out
	}
	return preconditions{ifMatch: split("If-Match"), ifNoneMatch: split("If-None-Match")}
}

// check tells whether the set's current state (nil: absent) meets them.
func (p preconditions) check(cur []dns.RR, name string, t uint16) error {
	exists := len(cur) > 0
	tag := ""
	if exists {
		tag = setFromRRs(name, t, cur).ETag
	}
	if len(p.ifMatch) > 0 {
		ok := false
		for _, m := range p.ifMatch {
			if m == "*" && exists || exists && m == tag {
				ok = true
			}
		}
		if !ok {
			if !exists {
				return errors.New("If-Match: the set does not exist")
			}
			return fmt.Errorf("If-Match: the set changed (its ETag is now %s)", tag)
		}
	}
	for _, m := range p.ifNoneMatch {
		if m == "*" && exists || exists && m == tag {
			return fmt.Errorf("If-None-Match: the set exists (ETag %s)", tag)
		}
	}
	return nil
}

// errPrecondition and errConflict stop a plan; they become 412 and 409.
type errPrecondition struct{ error }
type errConflict struct{ error }
type errNotFound struct{ error }

// permit checks the token's policy for the set; a denial is answered.
func (h *Handler) permit(w http.ResponseWriter, tok Token, tg target) bool {
	if server.AllowUpdate(tok.Policy, tg.zone.Origin(), tok.Name, tg.name, tg.t) {
		return true
	}
	h.log.Info("api change refused by policy", slog.String("token", tok.Name), slog.String("set", tg.label))
	writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("token %s may not change %s", strings.TrimSuffix(tok.Name, "."), tg.label))
	return false
}

func (h *Handler) putSet(w http.ResponseWriter, r *http.Request, tok Token) {
	tg, ok := h.resolveSet(w, r)
	if !ok {
		return
	}
	var body setBody
	if !decode(w, r, tg.label, &body) || !h.permit(w, tok, tg) {
		return
	}
	if len(body.Values) == 0 {
		writeError(w, http.StatusBadRequest, "bad_values", tg.label+": values is empty (use DELETE to remove a set)")
		return
	}
	ttl := uint32(300)
	if body.TTL != nil {
		ttl = *body.TTL
	}
	if ttl > 2147483647 {
		writeError(w, http.StatusBadRequest, "bad_ttl", fmt.Sprintf("%s: ttl %d is over 2147483647", tg.label, ttl))
		return
	}
	rrs, err := parseValues(tg.name, tg.t, ttl, body.Values)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_value", tg.label+": "+err.Error())
		return
	}
	pre := readPreconditions(r)
	created := false
	h.write(w, r, tok, tg, func(cur []dns.RR, types []uint16) ([]dns.RR, error) {
		if err := pre.check(cur, tg.name, tg.t); err != nil {
			return nil, errPrecondition{err}
		}
		created = len(cur) == 0
		return rrs, nil
	}, func() int {
		if created {
			return http.StatusCreated
		}
		return http.StatusOK
	})
}

func (h *Handler) patchSet(w http.ResponseWriter, r *http.Request, tok Token) {
	tg, ok := h.resolveSet(w, r)
	if !ok {
		return
	}
	var body patchBody
	if !decode(w, r, tg.label, &body) || !h.permit(w, tok, tg) {
		return
	}
	if len(body.Add) == 0 && len(body.Remove) == 0 && body.TTL == nil {
		writeError(w, http.StatusBadRequest, "bad_values", tg.label+": nothing to do (add, remove or ttl)")
		return
	}
	if body.TTL != nil && *body.TTL > 2147483647 {
		writeError(w, http.StatusBadRequest, "bad_ttl", fmt.Sprintf("%s: ttl %d is over 2147483647", tg.label, *body.TTL))
		return
	}
	add, err := parseValues(tg.name, tg.t, 0, body.Add)
	if err == nil {
		_, err = parseValues(tg.name, tg.t, 0, body.Remove)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_value", tg.label+": "+err.Error())
		return
	}
	remove, _ := parseValues(tg.name, tg.t, 0, body.Remove)
	pre := readPreconditions(r)
	h.write(w, r, tok, tg, func(cur []dns.RR, types []uint16) ([]dns.RR, error) {
		if len(cur) == 0 && len(add) == 0 {
			return nil, errNotFound{fmt.Errorf("record set %s does not exist", tg.label)}
		}
		if err := pre.check(cur, tg.name, tg.t); err != nil {
			return nil, errPrecondition{err}
		}
		ttl := uint32(300)
		if len(cur) > 0 {
			ttl = cur[0].Header().Ttl
		}
		if body.TTL != nil {
			ttl = *body.TTL
		}
		var next []dns.RR
		for _, c := range cur {
			if !slices.ContainsFunc(remove, func(x dns.RR) bool { return sameRdata(x, c) }) {
				next = append(next, c)
			}
		}
		for _, a := range add {
			if !slices.ContainsFunc(next, func(x dns.RR) bool { return sameRdata(x, a) }) {
				next = append(next, a)
			}
		}
		for i, rr := range next {
			if rr.Header().Ttl != ttl {
				c := dns.Copy(rr)
				c.Header().Ttl = ttl
				next[i] = c
			}
		}
		return next, nil
	}, func() int { return http.StatusOK })
}

func (h *Handler) deleteSet(w http.ResponseWriter, r *http.Request, tok Token) {
	tg, ok := h.resolveSet(w, r)
	if !ok || !h.permit(w, tok, tg) {
		return
	}
	pre := readPreconditions(r)
	h.write(w, r, tok, tg, func(cur []dns.RR, types []uint16) ([]dns.RR, error) {
		if len(cur) == 0 && slices.Contains(types, tg.t) {
			return nil, nil // an alias or policy set: the writer refuses it by name
		}
		if len(cur) == 0 {
			return nil, errNotFound{fmt.Errorf("record set %s does not exist", tg.label)}
		}
		if err := pre.check(cur, tg.name, tg.t); err != nil {
			return nil, errPrecondition{err}
		}
		return nil, nil
	}, func() int { return http.StatusOK })
}

func sameRdata(a, b dns.RR) bool {
	ca, cb := dns.Copy(a), dns.Copy(b)
	ca.Header().Ttl, cb.Header().Ttl = 0, 0
	return dns.IsDuplicate(ca, cb)
}

// write runs one set change through the Writer: next computes the set's
// new records from its current ones under the zone's write slot (so If-Match
// is checked against exactly the data the change replaces).
func (h *Handler) write(w http.ResponseWriter, r *http.Request, tok Token, tg target,
	next func(cur []dns.RR, types []uint16) ([]dns.RR, error), okStatus func() int) {
	if h.cfg.Writer == nil || !strings.HasPrefix(tg.zone.Source(), "route53:") {
		writeError(w, http.StatusConflict, "read_only", fmt.Sprintf("%s: zone %s comes from %s, which takes no changes through hybridns", tg.label, tg.zone.Origin(), sourceKind(tg.zone.Source())))
		return
	}
	if tg.t == dns.TypeSOA {
		writeError(w, http.StatusUnprocessableEntity, "refused", tg.label+": the SOA is kept by hybridns")
		return
	}
	var result []dns.RR
	plan := func(src dynupdate.Source) (int, []dynupdate.Change, error) {
		cur, exists := src.RRset(tg.name, tg.t)
		types := src.Types(tg.name)
		if exists && cur == nil {
			// An alias or routing-policy set: hand the change to the
			// writer, which refuses it with the reason.
			return dns.RcodeSuccess, []dynupdate.Change{{Key: dynupdate.Key{Name: tg.name, Type: tg.t}}}, nil
		}
		n, err := next(cur, types)
		if err != nil {
			return dns.RcodeRefused, nil, err
		}
		if len(n) > 0 {
			if tg.t == dns.TypeCNAME && slices.ContainsFunc(types, func(x uint16) bool { return x != dns.TypeCNAME }) {
				return dns.RcodeYXRrset, nil, errConflict{fmt.Errorf("%s: the name holds other data; a CNAME must stand alone", tg.label)}
			}
			if tg.t != dns.TypeCNAME && slices.Contains(types, dns.TypeCNAME) {
				return dns.RcodeYXRrset, nil, errConflict{fmt.Errorf("%s: the name holds a CNAME, which must stand alone", tg.label)}
			}
		}
		result = n
		if sameSet(cur, n) {
			return dns.RcodeSuccess, nil, nil
		}
		return dns.RcodeSuccess, []dynupdate.Change{{Key: dynupdate.Key{Name: tg.name, Type: tg.t}, Old: cur, New: n}}, nil
	}
	ctx, cancel := context.WithTimeout(h.base, h.cfg.WriteTimeout)
	defer cancel()
	res, err := h.cfg.Writer.Write(ctx, Write{Zone: tg.zone.Origin(), ZoneSource: tg.zone.Source(), View: tg.view, Identity: tok.Name, Plan: plan})
	if status, code, msg, failed := writeFailure(tg.label, res, err); failed {
		h.log.Info("api change not applied", slog.String("token", tok.Name), slog.String("set", tg.label), slog.String("code", code), slog.Any("err", err))
		writeError(w, status, code, msg)
		return
	}
	if res.ChangeID != "" && h.cfg.AfterWrite != nil {
		h.cfg.AfterWrite()
	}
	h.log.Info("api change", slog.String("token", tok.Name), slog.String("set", tg.label), slog.String("method", r.Method),
		slog.String("change_id", res.ChangeID), slog.Uint64("serial", uint64(res.Serial)))
	resp := map[string]any{"zone": tg.zone.Origin(), "serial": res.Serial}
	if res.ChangeID != "" {
		resp["change_id"] = res.ChangeID
	}
	if len(result) > 0 {
		rs := setFromRRs(tg.name, tg.t, result)
		w.Header().Set("ETag", rs.ETag)
		resp["record"] = rs
	} else {
		resp["deleted"] = tg.label
	}
	writeJSON(w, okStatus(), resp)
}

func sameSet(a, b []dns.RR) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 {
		return true
	}
	if a[0].Header().Ttl != b[0].Header().Ttl {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y dns.RR) bool { return sameRdata(x, y) }) {
			return false
		}
	}
	return true
}

// writeFailure maps a Writer outcome to an HTTP error, if it is one.
func writeFailure(label string, res WriteResult, err error) (status int, code, msg string, failed bool) {
	var pe errPrecondition
	var ce errConflict
	var ne errNotFound
	switch {
	case errors.As(err, &pe):
		return http.StatusPreconditionFailed, "precondition_failed", label + ": " + pe.Error(), true
	case errors.As(err, &ce):
		return http.StatusConflict, "conflict", ce.Error(), true
	case errors.As(err, &ne):
		return http.StatusNotFound, "not_found", ne.Error(), true
	case err == nil && res.Rcode == dns.RcodeSuccess:
		return 0, "", "", false
	}
	why := dns.RcodeToString[res.Rcode]
	if err != nil {
		why = err.Error()
	}
	switch res.Rcode {
	case dns.RcodeRefused:
		return http.StatusUnprocessableEntity, "refused", label + ": " + why, true
	case dns.RcodeNXRrset, dns.RcodeYXRrset, dns.RcodeNameError, dns.RcodeYXDomain:
		return http.StatusConflict, "conflict", label + ": the zone changed underneath (try again): " + why, true
	case dns.RcodeSuccess, dns.RcodeServerFailure:
		return http.StatusBadGateway, "source_error", label + ": " + why, true
	}
	return http.StatusBadGateway, "source_error", label + ": " + why, true
}

func sourceKind(src string) string {
	if src == "" {
		return "an unknown source"
	}
	if i := strings.IndexByte(src, ':'); i > 0 && !strings.HasPrefix(src, "/") {
		return src[:i]
	}
	return "a zone file"
}
