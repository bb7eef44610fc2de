// Package r53fake is an in-process fake of the Amazon Route 53 management API
// (REST-XML, API version 2013-04-01) that the real aws-sdk-go-v2 route53
// client can talk to over loopback. It follows /work/shared/ROUTE53.md: wire
// format (§1), name normalization and escaping (§2), paging and sort order
// (§3), change-batch validation (§5) and the error envelope (§7.1), and it
// offers fault injection (throttling, 5xx, latency, zones vanishing mid-sync).
//
// Seed data with CreateZone/PutRecordSet, point a client at it with Client,
// and observe traffic with Requests/Calls:
//
//	f := r53fake.New()
//	id := f.CreateZone("example.com", false)
//	client := f.Client(t)
//	out, err := client.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: &id})
package r53fake

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// VPC is a VPC associated with a private hosted zone.
type VPC struct{ ID, Region string }

// Request is one entry of the request log.
type Request struct {
	At        time.Time
	Op        string // SDK operation name, e.g. "ListResourceRecordSets"; "Unknown" for unrouted paths
	ZoneID    string // bare hosted zone ID, when the operation is zone-scoped
	Status    int    // HTTP status sent
	ErrorCode string // error code sent, "" on success
	Attempt   int    // from the Amz-Sdk-Request header (attempt=N), 0 if absent
}

// Throttled reports whether the request was answered with a Throttling error.
func (r Request) Throttled() bool { return r.ErrorCode == "Throttling" }

type rrKey struct{ name, typ, setID string }

type entry struct {
	sortName string
	rr       *xRRSet
}

type zone struct {
	id, name, callerRef, comment string
	private                      bool
	vpcs                         []VPC
	nameServers                  []string // delegation set, no trailing dots
	sets                         map[rrKey]*xRRSet
	sorted                       []entry // cache; nil when stale
	tags                         map[string]string
	deleteAfter                  int // -1: never
	priorNotComplete             int
	log                          []LoggedChange // accepted changes, in order
}

type change struct {
	id        string
	submitted time.Time
	comment   string
}

type healthCheck struct {
	id        string
	successes int // observations (of 8) that report Success
	config    types.HealthCheckConfig
}

// Fake is a fake Route 53 endpoint. It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	zones   map[string]*zone
	changes map[string]*change
	hcs     map[string]*healthCheck
	reqs    []Request
	url     string

	changeDelay time.Duration
	latency     time.Duration

	throttleNext int
	throttleAll  bool
	now          func() time.Time // the rate limiter's clock (SetClock)
	paused       chan struct{}    // non-nil: requests wait until it is closed
	rateRPS      float64
	rateBurst    float64
	rateTokens   float64
	rateLast     time.Time
	failNext     int
	failStatus   int
	denyNext     int
}

// New returns an empty fake.
func New() *Fake {
	return &Fake{
		zones:   map[string]*zone{},
		changes: map[string]*change{},
		hcs:     map[string]*healthCheck{},
	}
}

// Start serves the fake on a loopback httptest server, closed on t.Cleanup,
// and returns its base URL. Calling it again returns the same URL.
func (f *Fake) Start(t testing.TB) string {
	t.Helper()
	f.mu.Lock()
	if f.url != "" {
		u := f.url
		f.mu.Unlock()
		return u
	}
	f.mu.Unlock()
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.url == "" {
		f.url = srv.URL
	}
	return f.url
}

// URL returns the base URL set by Start, or "" before Start.
func (f *Fake) URL() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.url
}

// Handler returns the HTTP handler that implements the API.
func (f *Fake) Handler() http.Handler { return http.HandlerFunc(f.serveHTTP) }

// Client returns a real SDK client pointed at the fake (starting it if
// needed): static credentials, us-east-1, and fast retries (standard
// retryer, 5 attempts, 5 ms max backoff, no retry quota). optFns run last.
func (f *Fake) Client(t testing.TB, optFns ...func(*route53.Options)) *route53.Client {
	t.Helper()
	base := f.Start(t)
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKE", "SECRETFAKE", ""),
	}
	opts := append([]func(*route53.Options){func(o *route53.Options) {
		o.BaseEndpoint = aws.String(base)
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 5
			so.MaxBackoff = 5 * time.Millisecond
			so.RateLimiter = ratelimit.None
		})
	}}, optFns...)
	return route53.NewFromConfig(cfg, opts...)
}

// ---------------------------------------------------------------- data

const idChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randID(prefix string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = idChars[rand.IntN(len(idChars))]
	}
	return prefix + string(b)
}

func awsNS(n int) string {
	tld := [...]string{"com", "net", "org", "co.uk"}[n/512]
	return fmt.Sprintf("ns-%d.awsdns-%02d.%s", n, (n/8)%64, tld)
}

// CreateZone adds a hosted zone with the apex NS (TTL 172800) and SOA (TTL
// 900) that Route 53 creates (ROUTE53.md §4.3) and returns its bare ID
// ("Z" + 20 upper-case letters and digits). A zone is private iff private is
// true; vpcs are its associations.
func (f *Fake) CreateZone(name string, private bool, vpcs ...VPC) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.createZoneLocked(name, private, vpcs, "", "").id
}

func (f *Fake) createZoneLocked(name string, private bool, vpcs []VPC, callerRef, comment string) *zone {
	id := randID("Z", 20)
	for f.zones[id] != nil {
		id = randID("Z", 20)
	}
	if callerRef == "" {
		callerRef = randID("ref-", 12)
	}
	z := &zone{
		id: id, name: NormalizeName(name), callerRef: callerRef, comment: comment,
		private: private, vpcs: append([]VPC(nil), vpcs...),
		sets: map[rrKey]*xRRSet{}, tags: map[string]string{}, deleteAfter: -1,
	}
	if private {
		z.nameServers = []string{awsNS(1536), awsNS(0), awsNS(1024), awsNS(512)}
	} else {
		z.nameServers = []string{awsNS(rand.IntN(512)), awsNS(1536 + rand.IntN(512)), awsNS(512 + rand.IntN(512)), awsNS(1024 + rand.IntN(512))}
	}
	ns := &xRRSet{Name: z.name, Type: "NS", TTL: aws.Int64(172800), ResourceRecords: &xRRs{}}
	for _, s := range z.nameServers {
		ns.ResourceRecords.Items = append(ns.ResourceRecords.Items, xRR{s + "."})
	}
	soa := &xRRSet{Name: z.name, Type: "SOA", TTL: aws.Int64(900), ResourceRecords: &xRRs{Items: []xRR{
		{z.nameServers[0] + ". awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"},
	}}}
	z.put(ns)
	z.put(soa)
	f.zones[id] = z
	return z
}

// SetVPCs replaces a private zone's VPC associations (as
// AssociateVPCWithHostedZone / DisassociateVPCFromHostedZone would).
func (f *Fake) SetVPCs(zoneID string, vpcs ...VPC) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if z := f.zones[bareID(zoneID)]; z != nil {
		z.vpcs = vpcs
	}
}

// DeleteZone removes a zone and everything in it. Unknown IDs are ignored.
func (f *Fake) DeleteZone(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.zones, bareID(id))
}

// ZoneIDs returns the IDs of all zones, sorted.
func (f *Fake) ZoneIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.zones))
	for id := range f.zones {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// NameServers returns the zone's delegation-set name servers (no trailing dots).
func (f *Fake) NameServers(zoneID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if z := f.zones[bareID(zoneID)]; z != nil {
		return append([]string(nil), z.nameServers...)
	}
	return nil
}

func keyOf(r *xRRSet) rrKey { return rrKey{r.Name, r.Type, r.SetIdentifier} }

func (z *zone) put(r *xRRSet) {
	z.sets[keyOf(r)] = r
	z.sorted = nil
}

func (z *zone) sortedSets() []entry {
	if z.sorted != nil {
		return z.sorted
	}
	s := make([]entry, 0, len(z.sets))
	for _, r := range z.sets {
		s = append(s, entry{nameSortKey(r.Name), r})
	}
	sort.Slice(s, func(i, j int) bool { return entryLess(s[i], s[j].sortName, s[j].rr.Type, s[j].rr.SetIdentifier) })
	z.sorted = s
	return s
}

// entryLess orders by (name sort key, type, set identifier), ROUTE53.md §3.5.
func entryLess(e entry, sortName, typ, setID string) bool {
	if e.sortName != sortName {
		return e.sortName < sortName
	}
	if e.rr.Type != typ {
		return e.rr.Type < typ
	}
	return e.rr.SetIdentifier < setID
}

// PutRecordSet upserts a record set, bypassing API validation (for seeding).
// Names are normalized as the API would.
func (f *Fake) PutRecordSet(zoneID string, rrs types.ResourceRecordSet) error {
	r := fromSDK(rrs).normalized()
	if r.Type == "" || aws.ToString(rrs.Name) == "" {
		return fmt.Errorf("r53fake: record set needs Name and Type")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	z := f.zones[bareID(zoneID)]
	if z == nil {
		return fmt.Errorf("r53fake: no hosted zone %s", zoneID)
	}
	z.put(r)
	return nil
}

// DeleteRecordSet removes the record set (name, type, setID), bypassing API
// validation.
func (f *Fake) DeleteRecordSet(zoneID, name, typ, setID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	z := f.zones[bareID(zoneID)]
	if z == nil {
		return fmt.Errorf("r53fake: no hosted zone %s", zoneID)
	}
	k := rrKey{NormalizeName(name), typ, setID}
	if z.sets[k] == nil {
		return fmt.Errorf("r53fake: no record set %s %s %q in %s", k.name, typ, setID, zoneID)
	}
	delete(z.sets, k)
	z.sorted = nil
	return nil
}

// RecordSets returns the zone's record sets in Route 53 sort order, nil for
// an unknown zone.
func (f *Fake) RecordSets(zoneID string) []types.ResourceRecordSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	z := f.zones[bareID(zoneID)]
	if z == nil {
		return nil
	}
	var out []types.ResourceRecordSet
	for _, e := range z.sortedSets() {
		out = append(out, e.rr.toSDK())
	}
	return out
}

// SetTags replaces the zone's tags.
func (f *Fake) SetTags(zoneID string, tags map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if z := f.zones[bareID(zoneID)]; z != nil {
		z.tags = map[string]string{}
		for k, v := range tags {
			z.tags[k] = v
		}
	}
}

// AddHealthCheck adds (or resets) an HTTP health check. A healthy check
// reports Success from all 8 checker regions, an unhealthy one Failure.
func (f *Fake) AddHealthCheck(id string, healthy bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hcs[id] = &healthCheck{id: id, successes: successes(healthy), config: types.HealthCheckConfig{
		Type:             types.HealthCheckTypeHttp,
		IPAddress:        aws.String(fmt.Sprintf("192.0.2.%d", 1+len(f.hcs)%250)),
		Port:             aws.Int32(80),
		ResourcePath:     aws.String("/health"),
		RequestInterval:  aws.Int32(30),
		FailureThreshold: aws.Int32(3),
		MeasureLatency:   aws.Bool(false),
		Inverted:         aws.Bool(false),
		Disabled:         aws.Bool(false),
		EnableSNI:        aws.Bool(false),
	}}
}

func successes(healthy bool) int {
	if healthy {
		return len(checkerRegions)
	}
	return 0
}

// SetHealth makes the health check report all-Success or all-Failure.
func (f *Fake) SetHealth(id string, healthy bool) { f.SetHealthObservations(id, successes(healthy)) }

// SetHealthObservations makes n of the 8 observations report Success (the
// rest Failure); Route 53 calls a check healthy when more than 18% succeed.
func (f *Fake) SetHealthObservations(id string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if hc := f.hcs[id]; hc != nil {
		hc.successes = max(0, min(n, len(checkerRegions)))
	}
}

// SetHealthCheckConfig replaces a health check's configuration (e.g. to set
// Inverted or Disabled).
func (f *Fake) SetHealthCheckConfig(id string, cfg types.HealthCheckConfig) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if hc := f.hcs[id]; hc != nil {
		hc.config = cfg
	}
}

// SetChangeDelay sets how long a change stays PENDING before GetChange
// reports INSYNC (default 0).
func (f *Fake) SetChangeDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changeDelay = d
}

// ---------------------------------------------------------------- faults

// ThrottleNext answers the next n requests with 400 Throttling "Rate exceeded".
func (f *Fake) ThrottleNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttleNext = n
}

// Throttle answers every request with Throttling while on, until the test
// turns it off: tests decide by events, not by a wall-clock period, when
// throttling ends.
func (f *Fake) Throttle(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttleAll = on
}

// SetClock sets the clock of the rate limiter (RateLimit), so a test can
// refill the bucket by advancing time instead of sleeping. Default
// time.Now.
func (f *Fake) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
	f.rateLast = now()
}

func (f *Fake) clock() time.Time {
	if f.now != nil {
		return f.now()
	}
	return time.Now()
}

// Pause holds every request (before it is answered or logged) until
// Resume: a test sees the state "request sent, no answer yet" for as long
// as it needs, without guessing a latency.
func (f *Fake) Pause() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.paused == nil {
		f.paused = make(chan struct{})
	}
}

// Resume releases the requests held by Pause.
func (f *Fake) Resume() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.paused != nil {
		close(f.paused)
		f.paused = nil
	}
}

// RateLimit throttles requests above rps with a token bucket of size burst,
// like AWS's 5 requests/second per account. rps <= 0 turns it off.
func (f *Fake) RateLimit(rps float64, burst int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rateRPS = rps
	f.rateBurst = float64(max(burst, 1))
	f.rateTokens = f.rateBurst
	f.rateLast = f.clock()
}

// FailNext answers the next n requests with the given HTTP status (a 5xx)
// and an error body (ServiceUnavailable for 503, InternalFailure otherwise).
func (f *Fake) FailNext(n int, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext, f.failStatus = n, status
}

// DenyNext answers the next n requests with 403 AccessDenied.
func (f *Fake) DenyNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.denyNext = n
}

// PriorRequestNotComplete rejects the next n ChangeResourceRecordSets calls
// on the zone with 400 PriorRequestNotComplete.
func (f *Fake) PriorRequestNotComplete(zoneID string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if z := f.zones[bareID(zoneID)]; z != nil {
		z.priorNotComplete = n
	}
}

// Latency delays every response by d.
func (f *Fake) Latency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// DeleteZoneAfter deletes the zone once calls more ListResourceRecordSets
// calls on it have been answered (0: at once), so a paginated sync sees it
// vanish mid-way with NoSuchHostedZone.
func (f *Fake) DeleteZoneAfter(id string, calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id = bareID(id)
	z := f.zones[id]
	if z == nil {
		return
	}
	if calls <= 0 {
		delete(f.zones, id)
		return
	}
	z.deleteAfter = calls
}

// Requests returns a copy of the request log.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.reqs...)
}

// ResetRequests clears the request log.
func (f *Fake) ResetRequests() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = nil
}

// Calls counts logged requests for op (every attempt, including failed ones).
func (f *Fake) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.reqs {
		if r.Op == op {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------- HTTP

type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errInput(msg string) *apiError { return &apiError{400, "InvalidInput", msg} }

func noSuchZone(id string) *apiError {
	return &apiError{404, "NoSuchHostedZone", "No hosted zone found with ID: " + id}
}

// handlerFunc serves one operation; id is the bare ID from the path, if any.
type handlerFunc func(r *http.Request, id string) (int, any, *apiError)

// route maps a request to its operation name, the bare ID in its path, and
// its handler. Zone-scoped operations are those whose path starts with
// hostedzone/{id} (plus tags/hostedzone/{id}).
func (f *Fake) route(r *http.Request) (op, id string, h handlerFunc) {
	p, ok := strings.CutPrefix(r.URL.EscapedPath(), "/2013-04-01/")
	if !ok {
		return "Unknown", "", nil
	}
	var seg []string
	for _, s := range strings.Split(strings.Trim(p, "/"), "/") {
		if u, err := pathUnescape(s); err == nil {
			s = u
		}
		seg = append(seg, s)
	}
	// tolerate an unstripped prefix sent raw: /hostedzone/hostedzone/Z1/...
	if len(seg) > 2 && (seg[0] == "hostedzone" || seg[0] == "change") && seg[1] == seg[0] {
		seg = append(seg[:1], seg[2:]...)
	}
	if len(seg) > 1 {
		id = bareID(seg[1])
	}
	m := r.Method
	switch {
	case len(seg) == 1 && seg[0] == "hostedzone" && m == http.MethodGet:
		return "ListHostedZones", "", f.listHostedZones
	case len(seg) == 1 && seg[0] == "hostedzone" && m == http.MethodPost:
		return "CreateHostedZone", "", f.createHostedZone
	case len(seg) == 2 && seg[0] == "hostedzone" && m == http.MethodGet:
		return "GetHostedZone", id, f.getHostedZone
	case len(seg) == 2 && seg[0] == "hostedzone" && m == http.MethodDelete:
		return "DeleteHostedZone", id, f.deleteHostedZone
	case len(seg) == 3 && seg[0] == "hostedzone" && seg[2] == "rrset" && m == http.MethodGet:
		return "ListResourceRecordSets", id, f.listResourceRecordSets
	case len(seg) == 3 && seg[0] == "hostedzone" && seg[2] == "rrset" && m == http.MethodPost:
		return "ChangeResourceRecordSets", id, f.changeResourceRecordSets
	case len(seg) == 1 && seg[0] == "hostedzonesbyname" && m == http.MethodGet:
		return "ListHostedZonesByName", "", f.listHostedZonesByName
	case len(seg) == 1 && seg[0] == "hostedzonesbyvpc" && m == http.MethodGet:
		return "ListHostedZonesByVPC", "", f.listHostedZonesByVPC
	case len(seg) == 1 && seg[0] == "hostedzonecount" && m == http.MethodGet:
		return "GetHostedZoneCount", "", f.getHostedZoneCount
	case len(seg) == 2 && seg[0] == "change" && m == http.MethodGet:
		return "GetChange", id, f.getChange
	case len(seg) == 1 && seg[0] == "healthcheck" && m == http.MethodGet:
		return "ListHealthChecks", "", f.listHealthChecks
	case len(seg) == 2 && seg[0] == "healthcheck" && m == http.MethodGet:
		return "GetHealthCheck", id, f.getHealthCheck
	case len(seg) == 3 && seg[0] == "healthcheck" && seg[2] == "status" && m == http.MethodGet:
		return "GetHealthCheckStatus", id, f.getHealthCheckStatus
	case len(seg) == 3 && seg[0] == "tags" && m == http.MethodGet:
		resType := seg[1]
		return "ListTagsForResource", bareID(seg[2]), func(r *http.Request, id string) (int, any, *apiError) {
			return f.listTagsForResource(resType, id)
		}
	case len(seg) == 2 && seg[0] == "tags" && m == http.MethodPost:
		resType := seg[1]
		return "ListTagsForResources", "", func(r *http.Request, _ string) (int, any, *apiError) {
			return f.listTagsForResources(r, resType)
		}
	}
	return "Unknown", "", nil
}

func pathUnescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	return url.PathUnescape(s)
}

// zoneOps are the operations whose path ID is a hosted zone ID.
var zoneOps = map[string]bool{
	"GetHostedZone": true, "DeleteHostedZone": true,
	"ListResourceRecordSets": true, "ChangeResourceRecordSets": true,
}

func newRequestID() string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (f *Fake) serveHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	w.Header().Set("x-amzn-RequestId", reqID)
	op, id, h := f.route(r)
	zoneID := ""
	if zoneOps[op] || (op == "ListTagsForResource" && strings.Contains(r.URL.Path, "/tags/hostedzone/")) {
		zoneID = id
	}
	attempt := 0
	if v := r.Header.Get("Amz-Sdk-Request"); v != "" {
		for _, part := range strings.Split(v, ";") {
			if n, ok := strings.CutPrefix(strings.TrimSpace(part), "attempt="); ok {
				attempt, _ = strconv.Atoi(n)
			}
		}
	}

	f.mu.Lock()
	lat, paused := f.latency, f.paused
	f.mu.Unlock()
	if paused != nil {
		select {
		case <-paused:
		case <-r.Context().Done():
		}
	}
	if lat > 0 {
		select {
		case <-time.After(lat):
		case <-r.Context().Done():
		}
	}

	status, body, aerr := f.dispatch(r, id, h)
	f.mu.Lock()
	rec := Request{At: time.Now(), Op: op, ZoneID: zoneID, Status: status, Attempt: attempt}
	if aerr != nil {
		rec.Status, rec.ErrorCode = aerr.status, aerr.code
	}
	f.reqs = append(f.reqs, rec)
	f.mu.Unlock()

	if aerr != nil {
		writeError(w, aerr, reqID)
		return
	}
	if c, ok := body.(createdZone); ok {
		w.Header().Set("Location", c.loc)
		body = c.resp
	}
	writeXML(w, status, body)
}

// dispatch runs auth, fault injection and the handler.
func (f *Fake) dispatch(r *http.Request, id string, h handlerFunc) (int, any, *apiError) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		return 0, nil, &apiError{403, "MissingAuthenticationToken", "Request is missing Authentication Token"}
	}
	if e := f.injectedFault(); e != nil {
		return 0, nil, e
	}
	if h == nil {
		return 0, nil, &apiError{404, "UnknownOperationException", fmt.Sprintf("r53fake does not implement %s %s", r.Method, r.URL.Path)}
	}
	return h(r, id)
}

func (f *Fake) injectedFault() *apiError {
	f.mu.Lock()
	defer f.mu.Unlock()
	throttle := &apiError{400, "Throttling", "Rate exceeded"}
	if f.throttleNext > 0 {
		f.throttleNext--
		return throttle
	}
	if f.throttleAll {
		return throttle
	}
	now := f.clock()
	if f.rateRPS > 0 {
		f.rateTokens = min(f.rateBurst, f.rateTokens+now.Sub(f.rateLast).Seconds()*f.rateRPS)
		f.rateLast = now
		if f.rateTokens < 1 {
			return throttle
		}
		f.rateTokens--
	}
	if f.failNext > 0 {
		f.failNext--
		switch f.failStatus {
		case 503:
			return &apiError{503, "ServiceUnavailable", "Service Unavailable"}
		default:
			return &apiError{f.failStatus, "InternalFailure", "An internal error occurred"}
		}
	}
	if f.denyNext > 0 {
		f.denyNext--
		return &apiError{403, "AccessDenied", "User: arn:aws:iam::123456789012:user/r53fake is not authorized to perform this action"}
	}
	return nil
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xmlMarshal(v)
	if err != nil {
		writeError(w, &apiError{500, "InternalFailure", "r53fake: marshal: " + err.Error()}, w.Header().Get("x-amzn-RequestId"))
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, e *apiError, reqID string) {
	var x xErrorResponse
	x.Error.Type = "Sender"
	if e.status >= 500 {
		x.Error.Type = "Receiver"
	}
	x.Error.Code, x.Error.Message, x.RequestId = e.code, e.message, reqID
	b, _ := xmlMarshal(&x)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// ---------------------------------------------------------------- helpers

// maxItems parses the maxitems query parameter: def when absent, capped at
// limit; the echoed value is what the caller asked for (capped).
func maxItems(r *http.Request, def, limit int) (int, *apiError) {
	v := r.URL.Query().Get("maxitems")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, errInput(fmt.Sprintf("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must be a positive integer", v))
	}
	return min(n, limit), nil
}

func (z *zone) wire() xHostedZone {
	return xHostedZone{
		Id: "/hostedzone/" + z.id, Name: z.name, CallerReference: z.callerRef,
		Config:                 &xZoneConfig{Comment: z.comment, PrivateZone: z.private},
		ResourceRecordSetCount: int64(len(z.sets)),
	}
}

func (z *zone) delegationSet() *xDelegationSet {
	if z.private {
		return nil
	}
	return &xDelegationSet{NameServers: append([]string(nil), z.nameServers...)}
}

func (z *zone) vpcList() *xVPCs {
	if !z.private {
		return nil
	}
	v := &xVPCs{}
	for _, p := range z.vpcs {
		v.Items = append(v.Items, xVPC{VPCRegion: p.Region, VPCId: p.ID})
	}
	return v
}

func (f *Fake) newChangeLocked(comment string) xChangeInfo {
	c := &change{id: randID("C", 20), submitted: time.Now().UTC(), comment: comment}
	f.changes[c.id] = c
	return xChangeInfo{Id: "/change/" + c.id, Status: "PENDING", SubmittedAt: fmtTime(c.submitted), Comment: comment}
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (f *Fake) zonesByID() []*zone {
	zs := make([]*zone, 0, len(f.zones))
	for _, z := range f.zones {
		zs = append(zs, z)
	}
	sort.Slice(zs, func(i, j int) bool { return zs[i].id < zs[j].id })
	return zs
}

// ---------------------------------------------------------------- zones

func (f *Fake) listHostedZones(r *http.Request, _ string) (int, any, *apiError) {
	q := r.URL.Query()
	n, e := maxItems(r, 100, 100)
	if e != nil {
		return 0, nil, e
	}
	if ds := q.Get("delegationsetid"); ds != "" {
		return 0, nil, &apiError{400, "NoSuchDelegationSet", "A reusable delegation set with the specified ID does not exist: " + bareID(ds)}
	}
	typ := q.Get("hostedzonetype")
	if typ != "" && typ != "PrivateHostedZone" {
		return 0, nil, errInput(fmt.Sprintf("1 validation error detected: Value '%s' at 'hostedZoneType' failed to satisfy constraint: Member must satisfy enum value set: [PrivateHostedZone]", typ))
	}
	marker := bareID(q.Get("marker"))
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &listHostedZonesResponse{Marker: q.Get("marker"), MaxItems: n}
	for _, z := range f.zonesByID() {
		if z.id < marker || (typ != "" && !z.private) {
			continue
		}
		if len(resp.HostedZones.Items) == n {
			resp.IsTruncated, resp.NextMarker = true, z.id
			break
		}
		resp.HostedZones.Items = append(resp.HostedZones.Items, z.wire())
	}
	return 200, resp, nil
}

func (f *Fake) listHostedZonesByName(r *http.Request, _ string) (int, any, *apiError) {
	q := r.URL.Query()
	n, e := maxItems(r, 100, 100)
	if e != nil {
		return 0, nil, e
	}
	dns, hzid := q.Get("dnsname"), bareID(q.Get("hostedzoneid"))
	if hzid != "" && dns == "" {
		return 0, nil, errInput("The input is not valid: HostedZoneId requires DNSName")
	}
	resp := &listHostedZonesByNameResponse{MaxItems: n, HostedZoneId: hzid}
	startKey := ""
	if dns != "" {
		resp.DNSName = NormalizeName(dns)
		startKey = nameSortKey(resp.DNSName)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	zs := f.zonesByID()
	keys := map[*zone]string{}
	for _, z := range zs {
		keys[z] = nameSortKey(z.name)
	}
	sort.SliceStable(zs, func(i, j int) bool { return keys[zs[i]] < keys[zs[j]] })
	for _, z := range zs {
		k := keys[z]
		if k < startKey || (k == startKey && hzid != "" && z.id < hzid) {
			continue
		}
		if len(resp.HostedZones.Items) == n {
			resp.IsTruncated, resp.NextDNSName, resp.NextHostedZoneId = true, z.name, z.id
			break
		}
		resp.HostedZones.Items = append(resp.HostedZones.Items, z.wire())
	}
	return 200, resp, nil
}

func (f *Fake) getHostedZone(_ *http.Request, id string) (int, any, *apiError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	z := f.zones[id]
	if z == nil {
		return 0, nil, noSuchZone(id)
	}
	return 200, &getHostedZoneResponse{HostedZone: z.wire(), DelegationSet: z.delegationSet(), VPCs: z.vpcList()}, nil
}

func (f *Fake) listHostedZonesByVPC(r *http.Request, _ string) (int, any, *apiError) {
	q := r.URL.Query()
	vpcID, region := q.Get("vpcid"), q.Get("vpcregion")
	if vpcID == "" || region == "" {
		return 0, nil, errInput("The input is not valid: vpcid and vpcregion are required")
	}
	n, e := maxItems(r, 100, 100)
	if e != nil {
		return 0, nil, e
	}
	start := ""
	if tok := q.Get("nexttoken"); tok != "" {
		s, ok := strings.CutPrefix(tok, "r53fake:")
		if !ok {
			return 0, nil, &apiError{400, "InvalidPaginationToken", "The value that you specified for NextToken is not valid"}
		}
		start = s
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &listHostedZonesByVPCResponse{MaxItems: n}
	for _, z := range f.zonesByID() {
		if !z.private || z.id < start || !hasVPC(z.vpcs, vpcID, region) {
			continue
		}
		if len(resp.HostedZoneSummaries.Items) == n {
			resp.NextToken = "r53fake:" + z.id
			break
		}
		resp.HostedZoneSummaries.Items = append(resp.HostedZoneSummaries.Items, xHostedZoneSummary{
			HostedZoneId: z.id, Name: z.name, Owner: xOwners{OwningAccount: "123456789012"},
		})
	}
	return 200, resp, nil
}

func hasVPC(vpcs []VPC, id, region string) bool {
	for _, v := range vpcs {
		if v.ID == id && v.Region == region {
			return true
		}
	}
	return false
}

func (f *Fake) getHostedZoneCount(_ *http.Request, _ string) (int, any, *apiError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return 200, &getHostedZoneCountResponse{HostedZoneCount: int64(len(f.zones))}, nil
}

// createdZone carries the Location header along with the response body.
type createdZone struct {
	resp *createHostedZoneResponse
	loc  string
}

func (f *Fake) createHostedZone(r *http.Request, _ string) (int, any, *apiError) {
	var req createHostedZoneRequest
	if e := decodeBody(r, &req, "CreateHostedZoneRequest"); e != nil {
		return 0, nil, e
	}
	if req.Name == "" || req.CallerReference == "" {
		return 0, nil, errInput("The input is not valid: Name and CallerReference are required")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, z := range f.zones {
		if z.callerRef == req.CallerReference {
			return 0, nil, &apiError{409, "HostedZoneAlreadyExists", "A hosted zone has already been created with the specified caller reference."}
		}
	}
	var vpcs []VPC
	private := req.VPC != nil && req.VPC.VPCId != ""
	if private {
		vpcs = []VPC{{ID: req.VPC.VPCId, Region: req.VPC.VPCRegion}}
	}
	comment := ""
	if req.HostedZoneConfig != nil {
		comment = req.HostedZoneConfig.Comment
	}
	z := f.createZoneLocked(req.Name, private, vpcs, req.CallerReference, comment)
	resp := &createHostedZoneResponse{HostedZone: z.wire(), ChangeInfo: f.newChangeLocked(""), DelegationSet: z.delegationSet()}
	if private {
		resp.VPC = req.VPC
	}
	return 201, createdZone{resp, "https://route53.amazonaws.com/2013-04-01/hostedzone/" + z.id}, nil
}

func (f *Fake) deleteHostedZone(_ *http.Request, id string) (int, any, *apiError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	z := f.zones[id]
	if z == nil {
		return 0, nil, noSuchZone(id)
	}
	for k := range z.sets {
		if k.name != z.name || (k.typ != "SOA" && k.typ != "NS") || k.setID != "" {
			return 0, nil, &apiError{400, "HostedZoneNotEmpty", "The specified hosted zone contains non-required resource record sets and so cannot be deleted."}
		}
	}
	delete(f.zones, id)
	return 200, &deleteHostedZoneResponse{ChangeInfo: f.newChangeLocked("")}, nil
}

// ---------------------------------------------------------------- record sets

var validTypes = map[string]bool{}

const typeEnum = "SOA, A, TXT, NS, CNAME, MX, NAPTR, PTR, SRV, SPF, AAAA, CAA, DS, TLSA, SSHFP, SVCB, HTTPS"

func init() {
	for _, t := range strings.Split(typeEnum, ", ") {
		validTypes[t] = true
	}
}

func enumError(v, enum string) *apiError {
	return errInput(fmt.Sprintf("Invalid XML ; cvc-enumeration-valid: Value '%s' is not facet-valid with respect to enumeration '[%s]'. It must be a value from the enumeration.", v, enum))
}

func (f *Fake) listResourceRecordSets(r *http.Request, id string) (int, any, *apiError) {
	q := r.URL.Query()
	n, e := maxItems(r, 300, 300)
	if e != nil {
		return 0, nil, e
	}
	name, typ, ident := q.Get("name"), q.Get("type"), q.Get("identifier")
	if (typ != "" || ident != "") && name == "" {
		return 0, nil, errInput("The input is not valid")
	}
	if ident != "" && typ == "" {
		return 0, nil, errInput("The input is not valid")
	}
	if typ != "" && !validTypes[typ] {
		return 0, nil, enumError(typ, typeEnum)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	z := f.zones[id]
	if z == nil {
		return 0, nil, noSuchZone(id)
	}
	sets := z.sortedSets()
	start := 0
	if name != "" {
		sk := nameSortKey(NormalizeName(name))
		start = sort.Search(len(sets), func(i int) bool { return !entryLess(sets[i], sk, typ, ident) })
	}
	resp := &listResourceRecordSetsResponse{MaxItems: n}
	end := min(len(sets), start+n)
	for _, e := range sets[start:end] {
		resp.ResourceRecordSets.Items = append(resp.ResourceRecordSets.Items, e.rr)
	}
	if end < len(sets) {
		next := sets[end].rr
		resp.IsTruncated = true
		resp.NextRecordName, resp.NextRecordType, resp.NextRecordIdentifier = next.Name, next.Type, next.SetIdentifier
	}
	if z.deleteAfter > 0 {
		z.deleteAfter--
		if z.deleteAfter == 0 {
			delete(f.zones, id)
		}
	}
	return 200, resp, nil
}

func (f *Fake) getChange(_ *http.Request, id string) (int, any, *apiError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.changes[id]
	if c == nil {
		return 0, nil, &apiError{404, "NoSuchChange", "A change with the specified change ID does not exist: " + id}
	}
	status := "PENDING"
	if time.Since(c.submitted) >= f.changeDelay {
		status = "INSYNC"
	}
	return 200, &getChangeResponse{ChangeInfo: xChangeInfo{Id: "/change/" + c.id, Status: status, SubmittedAt: fmtTime(c.submitted), Comment: c.comment}}, nil
}

// ---------------------------------------------------------------- tags

func (f *Fake) listTagsForResource(resType, id string) (int, any, *apiError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ts, e := f.tagSetLocked(resType, id)
	if e != nil {
		return 0, nil, e
	}
	return 200, &listTagsForResourceResponse{ResourceTagSet: ts}, nil
}

func (f *Fake) tagSetLocked(resType, id string) (xResourceTagSet, *apiError) {
	switch resType {
	case "hostedzone":
		z := f.zones[id]
		if z == nil {
			return xResourceTagSet{}, noSuchZone(id)
		}
		return tagSet(resType, id, z.tags), nil
	case "healthcheck":
		if f.hcs[id] == nil {
			return xResourceTagSet{}, noSuchHealthCheck(id)
		}
		return tagSet(resType, id, nil), nil
	}
	return xResourceTagSet{}, enumError(resType, "healthcheck, hostedzone")
}

func (f *Fake) listTagsForResources(r *http.Request, resType string) (int, any, *apiError) {
	var req listTagsForResourcesRequest
	if e := decodeBody(r, &req, "ListTagsForResourcesRequest"); e != nil {
		return 0, nil, e
	}
	if len(req.ResourceIds) == 0 || len(req.ResourceIds) > 10 {
		return 0, nil, errInput("1 validation error detected: Value at 'resourceIds' failed to satisfy constraint: Member must have length between 1 and 10")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &listTagsForResourcesResponse{}
	for _, id := range req.ResourceIds {
		ts, e := f.tagSetLocked(resType, bareID(id))
		if e != nil {
			return 0, nil, e
		}
		resp.ResourceTagSets.Items = append(resp.ResourceTagSets.Items, ts)
	}
	return 200, resp, nil
}

// ---------------------------------------------------------------- health checks

var checkerRegions = []string{"us-east-1", "us-west-1", "us-west-2", "eu-west-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1"}

func noSuchHealthCheck(id string) *apiError {
	return &apiError{404, "NoSuchHealthCheck", fmt.Sprintf("A health check with id %s does not exist.", id)}
}

func (hc *healthCheck) wire() xHealthCheck {
	return xHealthCheck{Id: hc.id, CallerReference: "r53fake-" + hc.id, HealthCheckConfig: hcConfigFromSDK(hc.config), HealthCheckVersion: 1}
}

func (f *Fake) listHealthChecks(r *http.Request, _ string) (int, any, *apiError) {
	n, e := maxItems(r, 100, 1000)
	if e != nil {
		return 0, nil, e
	}
	marker := r.URL.Query().Get("marker")
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.hcs))
	for id := range f.hcs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	resp := &listHealthChecksResponse{Marker: marker, MaxItems: n}
	for _, id := range ids {
		if id < marker {
			continue
		}
		if len(resp.HealthChecks.Items) == n {
			resp.IsTruncated, resp.NextMarker = true, id
			break
		}
		resp.HealthChecks.Items = append(resp.HealthChecks.Items, f.hcs[id].wire())
	}
	return 200, resp, nil
}

func (f *Fake) getHealthCheck(_ *http.Request, id string) (int, any, *apiError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	hc := f.hcs[id]
	if hc == nil {
		return 0, nil, noSuchHealthCheck(id)
	}
	return 200, &getHealthCheckResponse{HealthCheck: hc.wire()}, nil
}

func (f *Fake) getHealthCheckStatus(_ *http.Request, id string) (int, any, *apiError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	hc := f.hcs[id]
	if hc == nil {
		return 0, nil, noSuchHealthCheck(id)
	}
	resp := &getHealthCheckStatusResponse{}
	now := time.Now()
	for i, region := range checkerRegions {
		var o xObservation
		o.Region = region
		o.IPAddress = fmt.Sprintf("15.177.%d.%d", 2*i, 1+i)
		if i < hc.successes {
			o.StatusReport.Status = "Success: HTTP Status Code 200, OK"
		} else {
			o.StatusReport.Status = "Failure: HTTP Status Code 503, Service Temporarily Unavailable"
		}
		o.StatusReport.CheckedTime = fmtTime(now.Add(-time.Duration(i) * time.Second))
		resp.HealthCheckObservations.Items = append(resp.HealthCheckObservations.Items, o)
	}
	return 200, resp, nil
}
