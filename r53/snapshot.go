package r53

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"hybridns/zonestore"
)

// A snapshot is one file per zone, "<zone-id>.jsonl": a first line with the
// zone's attributes, then one Route 53 record set per line exactly as the
// API returned it (aliases, routing policies and health-check IDs
// included). People can read and diff it; loading runs the same converter
// as a sync, so a cold start answers exactly as the last sync did.

const snapshotExt = ".jsonl"

type snapshotMeta struct {
	ID      string    `json:"zone_id"`
	Name    string    `json:"zone"`
	Private bool      `json:"private"`
	VPCs    []string  `json:"vpcs,omitempty"`
	Synced  time.Time `json:"synced"`
	Sets    int       `json:"record_sets"`
	// Serial is the SOA serial of the version the file holds, so a
	// restart never serves an older serial than before (RFC 1982).
	Serial uint32 `json:"serial,omitempty"`
}

// writeSnapshot replaces a zone's snapshot atomically: write a temporary
// file, fsync, rename, fsync the directory.
func (s *Syncer) writeSnapshot(meta snapshotMeta, sets []types.ResourceRecordSet) error {
	if s.cfg.SnapshotDir == "" {
		return nil
	}
	if err := os.MkdirAll(s.cfg.SnapshotDir, 0o755); err != nil {
		return fmt.Errorf("snapshot dir: %w", err)
	}
	final := filepath.Join(s.cfg.SnapshotDir, meta.ID+snapshotExt)
	tmp, err := os.CreateTemp(s.cfg.SnapshotDir, "."+meta.ID+".*.tmp")
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", meta.Name, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	err = encodeSnapshot(tmp, meta, sets)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), final)
	}
	if err == nil {
		if d, derr := os.Open(s.cfg.SnapshotDir); derr == nil {
			d.Sync()
			d.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", meta.Name, err)
	}
	return nil
}

// encodeSnapshot writes one zone's snapshot: the header, then one record
// set per line.
func encodeSnapshot(out io.Writer, meta snapshotMeta, sets []types.ResourceRecordSet) error {
	meta.Sets = len(sets)
	w := bufio.NewWriterSize(out, 1<<16)
	enc := json.NewEncoder(w)
	err := enc.Encode(meta)
	for i := 0; err == nil && i < len(sets); i++ {
		err = enc.Encode(sets[i])
	}
	if err == nil {
		err = w.Flush()
	}
	return err
}

func (s *Syncer) removeSnapshot(id string) {
	if s.cfg.SnapshotDir != "" {
		os.Remove(filepath.Join(s.cfg.SnapshotDir, id+snapshotExt))
	}
}

// openSnapshot reads a snapshot file and decodes its header; body is the
// record-set lines.
func openSnapshot(path string) (meta snapshotMeta, body []byte, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return meta, nil, err
	}
	head, body, _ := bytes.Cut(data, []byte("\n"))
	if err := json.Unmarshal(head, &meta); err != nil {
		return meta, nil, fmt.Errorf("%s: header: %w", path, err)
	}
	return meta, body, nil
}

// hint is how many record sets to make room for: the header's count is
// only a hint.
func (m snapshotMeta) hint() int { return min(max(m.Sets, 0), 1<<20) }

// decodeSnapshotThen decodes body's record sets, in order, running after
// on every part on the decoding goroutine and handing the part with its
// result to each, and checks their number against the header. It returns
// them all; the parts are pieces of that slice.
func decodeSnapshotThen[T any](path string, meta snapshotMeta, body []byte, after func([]types.ResourceRecordSet) T, each func([]types.ResourceRecordSet, T)) ([]types.ResourceRecordSet, error) {
	sets, err := decodeLines(body, after, each)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(sets) != meta.Sets {
		return nil, fmt.Errorf("%s: %d record sets, header says %d (truncated?)", path, len(sets), meta.Sets)
	}
	return sets, nil
}

// decodeChunk is how many bytes of lines one decoding task takes.
const decodeChunk = 1 << 20

// decodeLines decodes one record set per non-blank line of data and hands
// them to each in order, a chunk of whole lines at a time, on the
// caller's goroutine, with what after made of them. Chunks are decoded
// (and after runs) on every core, a few ahead of each (inOrder), so what
// each does (build the zone) overlaps decoding. It returns every record
// set.
//
// Every chunk decodes straight into its own range of the one result
// slice, sized by counting lines (a fast scan), so no set is copied
// afterwards; blank lines, which leave a range partly empty, cost a copy
// of the following parts down (on the caller's goroutine, before each
// sees them: a chunk only ever moves into room of its own or earlier
// chunks, never into one still being decoded).
func decodeLines[T any](data []byte, after func([]types.ResourceRecordSet) T, each func([]types.ResourceRecordSet, T)) ([]types.ResourceRecordSet, error) {
	var chunks [][]byte
	var offs []int // where each chunk's range starts; one more at the end
	lines := 0
	for len(data) > 0 {
		cut := len(data)
		if cut > decodeChunk {
			if i := bytes.IndexByte(data[decodeChunk:], '\n'); i >= 0 {
				cut = decodeChunk + i + 1
			}
		}
		offs = append(offs, lines)
		lines += bytes.Count(data[:cut], []byte("\n")) + 1
		chunks = append(chunks, data[:cut])
		data = data[cut:]
	}
	offs = append(offs, lines)
	all := make([]types.ResourceRecordSet, lines)
	type result struct {
		n   int // sets decoded
		aux T
		err error
	}
	results := make([]result, len(chunks))
	total := 0
	var err error
	inOrder(len(chunks), func(i int) {
		r := &results[i]
		dst := all[offs[i]:offs[i+1]]
		var slabs lineSlabs
		for rest := chunks[i]; len(rest) > 0; {
			var line []byte
			line, rest, _ = bytes.Cut(rest, []byte("\n"))
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			if r.err = slabs.decode(line, &dst[r.n]); r.err != nil {
				return
			}
			r.n++
		}
		r.aux = after(dst[:r.n])
	}, func(i int) bool {
		r := &results[i]
		if r.err != nil {
			err = fmt.Errorf("record set %d: %w", total+r.n+1, r.err)
			return false
		}
		part := all[total : total+r.n]
		if total != offs[i] {
			copy(part, all[offs[i]:offs[i]+r.n])
			clear(all[total+r.n : offs[i]+r.n]) // no stale pointers past the end
		}
		total += r.n
		each(part, r.aux)
		*r = result{}
		return true
	})
	if err != nil {
		return nil, err
	}
	return all[:total:total], nil
}

// converted is a part's record sets as ConvertRecordSet made them.
type converted struct {
	out  []RecordSet
	errs []error
}

func convertPart(part []types.ResourceRecordSet) converted {
	return converted{}.fill(part)
}

// fill converts part into c's slices (grown as needed).
func (c converted) fill(part []types.ResourceRecordSet) converted {
	c.out = slices.Grow(c.out[:0], len(part))[:len(part)]
	c.errs = slices.Grow(c.errs[:0], len(part))[:len(part)]
	for i := range part {
		c.out[i], c.errs[i] = convertSetPtr(&part[i])
	}
	return c
}

// loadSnapshotZone builds a zone from a snapshot file's record sets
// while they are decoded, with the header's serial in the SOA (as
// BuildZone(withSerial(sets, serial)) would, without a copy of every
// set). It returns the sets as the file holds them. The decoding
// goroutines also convert (ConvertRecordSet is pure): this goroutine
// only adds to the builder.
func loadSnapshotZone(path string, meta snapshotMeta, body []byte) ([]types.ResourceRecordSet, *zonestore.Zone, int, error) {
	zb := newZoneBuild(meta.Name, meta.ID)
	zb.b.Grow(meta.hint()) // most sets are one record: no regrowth while adding
	soa := false
	// The conversions of a part live until it is added: their slices are
	// reused by the parts after it (a few are in flight), so converting
	// writes to memory already touched instead of faulting in fresh pages
	// for every part.
	var bufs sync.Pool
	convert := func(part []types.ResourceRecordSet) converted {
		var c converted
		if p, ok := bufs.Get().(*converted); ok {
			c = *p
		}
		return c.fill(part)
	}
	sets, err := decodeSnapshotThen(path, meta, body, convert, func(part []types.ResourceRecordSet, c converted) {
		defer func() {
			clear(c.out) // no records kept alive from the pool
			clear(c.errs)
			bufs.Put(&c)
		}()
		for i := range part {
			in := &part[i]
			if !soa && in.Type == types.RRTypeSoa && len(in.ResourceRecords) == 1 { // as withSerial
				soa = true
				in = &withSerial(part[i:i+1], meta.Serial)[0]
				c.out[i], c.errs[i] = convertSetPtr(in)
			}
			zb.addConverted(in, &c.out[i], c.errs[i])
		}
	})
	if err != nil {
		return nil, nil, 0, err
	}
	z, skipped, err := zb.finish()
	return sets, z, len(skipped), err
}

// snapshotBatch is how long LoadSnapshots gathers loaded zones before it
// publishes them, all in one snapshot: a cold start of many zones
// publishes a few times, not once per zone and view, and zones that load
// early answer early.
const snapshotBatch = 100 * time.Millisecond

// LoadSnapshots publishes every zone in the snapshot directory, before any
// API call, so a new instance answers within a second of starting. Zones
// the config does not ask for are ignored. It returns how many zones were
// loaded; a broken file is reported and skipped (the next sync repairs it).
func (s *Syncer) LoadSnapshots() (int, error) {
	if s.cfg.SnapshotDir == "" {
		return 0, nil
	}
	files, err := filepath.Glob(filepath.Join(s.cfg.SnapshotDir, "*"+snapshotExt))
	if err != nil {
		return 0, err
	}
	wantID, wantName := s.configuredZones()
	// Zones load in parallel. GC tuning for the cold start is the
	// program's business (cmd/hybridns), never a library's.
	type result struct {
		path    string
		meta    snapshotMeta
		zone    *zonestore.Zone
		skipped int
		rsets   []types.ResourceRecordSet
		err     error
	}
	work := make(chan string)
	results := make(chan result)
	var wg sync.WaitGroup
	for range max(runtime.GOMAXPROCS(0), 1) {
		wg.Go(func() {
			for path := range work {
				r := result{path: path}
				var body []byte
				r.meta, body, r.err = openSnapshot(path)
				if r.err == nil && s.wanted(r.meta.ID, r.meta.Name, r.meta.Private, wantID, wantName) {
					if r.meta.Serial == 0 {
						r.meta.Serial = NextSerial(0, time.Now())
					}
					r.rsets, r.zone, r.skipped, r.err = loadSnapshotZone(path, r.meta, body)
				}
				results <- r
			}
		})
	}
	go func() {
		for _, p := range files {
			work <- p
		}
		close(work)
		wg.Wait()
		close(results)
	}()
	var errs []error
	var loaded []*zoneState
	batch := map[string][]*zonestore.Zone{}
	last := time.Now()
	publish := func() {
		// Under s.mu, as every publish of the syncer: the zone states and
		// the store agree for whoever looks next.
		s.store.PutZones(batch)
		clear(batch)
		last = time.Now()
	}
	for r := range results {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.path, r.err))
			continue
		}
		if r.zone == nil {
			continue // not a zone this config mirrors
		}
		meta, z := r.meta, r.zone
		st := newZoneState(meta.ID, meta.Name, meta.Private)
		st.vpcs, st.records, st.sets, st.ready, st.lastSync, st.checks, st.built = meta.VPCs, z.Records(), len(r.rsets), true, meta.Synced, healthChecks(r.rsets), z
		st.rsets, st.serial, st.hashing = r.rsets, meta.Serial, make(chan struct{})
		s.mu.Lock()
		st.views = s.viewsOf(st)
		s.zones[st.id] = st
		for _, v := range st.views {
			batch[v] = append(batch[v], z)
		}
		if time.Since(last) >= snapshotBatch {
			publish()
		}
		s.mu.Unlock()
		loaded = append(loaded, st)
		s.log.Info("zone loaded from snapshot", slog.String("zone", meta.Name), slog.String("zone_id", meta.ID),
			slog.Int("records", z.Records()), slog.Int("skipped", r.skipped), slog.Time("synced", meta.Synced))
	}
	s.mu.Lock()
	publish()
	// The snapshot stands for the zone list until the first listing, as
	// long as it holds every zone the config names.
	complete := len(loaded) > 0
	for id := range wantID {
		complete = complete && s.zones[id] != nil
	}
	for name := range wantName {
		complete = complete && slices.ContainsFunc(s.zoneIDsLocked(), func(id string) bool { return s.zones[id].name == name })
	}
	if complete {
		s.listed = true
	}
	s.mu.Unlock()
	go s.fingerprint(loaded)
	return len(loaded), errors.Join(errs...)
}

// fingerprint computes the change-detection hash of the zones loaded from
// the snapshot, smallest first, off the start-up path (seconds for a
// million records). Only a sync compares it, and SyncZone waits for it
// (zoneState.hashing). A version published meanwhile keeps its own hash.
func (s *Syncer) fingerprint(zones []*zoneState) {
	if s.fingerprintGate != nil {
		<-s.fingerprintGate // a test holds the hashes back
	}
	slices.SortFunc(zones, func(a, b *zoneState) int { return a.sets - b.sets })
	for _, z := range zones {
		s.mu.Lock()
		sets, pubs := z.rsets, z.pubs
		s.mu.Unlock()
		h := hashSets(sets)
		s.mu.Lock()
		if z.pubs == pubs {
			z.hash = h
		}
		close(z.hashing)
		s.mu.Unlock()
	}
}

func (s *Syncer) zoneIDsLocked() []string {
	ids := make([]string, 0, len(s.zones))
	for id := range s.zones {
		ids = append(ids, id)
	}
	return ids
}
