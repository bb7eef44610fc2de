package r53

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
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
	meta.Sets = len(sets)
	w := bufio.NewWriterSize(tmp, 1<<16)
	enc := json.NewEncoder(w)
	err = enc.Encode(meta)
	for i := 0; err == nil && i < len(sets); i++ {
		err = enc.Encode(sets[i])
	}
	if err == nil {
		err = w.Flush()
	}
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

func (s *Syncer) removeSnapshot(id string) {
	if s.cfg.SnapshotDir != "" {
		os.Remove(filepath.Join(s.cfg.SnapshotDir, id+snapshotExt))
	}
}

// readSnapshot reads one snapshot file.
func readSnapshot(path string) (snapshotMeta, []types.ResourceRecordSet, error) {
	var meta snapshotMeta
	f, err := os.Open(path)
	if err != nil {
		return meta, nil, err
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(f, 1<<16))
	if err := dec.Decode(&meta); err != nil {
		return meta, nil, fmt.Errorf("%s: header: %w", path, err)
	}
	sets := make([]types.ResourceRecordSet, 0, min(max(meta.Sets, 0), 1<<20)) // the header is only a hint
	for dec.More() {
		var rs types.ResourceRecordSet
		if err := dec.Decode(&rs); err != nil {
			return meta, nil, fmt.Errorf("%s: record set %d: %w", path, len(sets)+1, err)
		}
		sets = append(sets, rs)
	}
	if len(sets) != meta.Sets {
		return meta, nil, fmt.Errorf("%s: %d record sets, header says %d (truncated?)", path, len(sets), meta.Sets)
	}
	return meta, sets, nil
}

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
		sets    int
		zone    *zonestore.Zone
		skipped int
		checks  []string
		hash    [32]byte
		rsets   []types.ResourceRecordSet
		err     error
	}
	work := make(chan string)
	results := make(chan result)
	var wg sync.WaitGroup
	for range max(runtime.GOMAXPROCS(0), 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for path := range work {
				r := result{path: path}
				var sets []types.ResourceRecordSet
				r.meta, sets, r.err = readSnapshot(path)
				if r.err == nil && s.wanted(r.meta.ID, r.meta.Name, r.meta.Private, wantID, wantName) {
					var skipped []Skipped
					if r.meta.Serial == 0 {
						r.meta.Serial = NextSerial(0, time.Now())
					}
					r.rsets = sets
					r.zone, skipped, r.err = BuildZone(r.meta.Name, r.meta.ID, withSerial(sets, r.meta.Serial))
					r.skipped, r.sets, r.checks, r.hash = len(skipped), len(sets), healthChecks(sets), hashSets(sets)
				}
				results <- r
			}
		}()
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
	loaded := 0
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
		st.vpcs, st.hash, st.records, st.sets, st.ready, st.lastSync, st.checks, st.built = meta.VPCs, r.hash, z.Records(), r.sets, true, meta.Synced, r.checks, z
		st.rsets, st.serial = r.rsets, meta.Serial
		s.mu.Lock()
		st.views = s.viewsOf(st)
		s.zones[st.id] = st
		for _, v := range st.views {
			s.store.PutZone(v, z)
		}
		s.mu.Unlock()
		loaded++
		s.log.Info("zone loaded from snapshot", slog.String("zone", meta.Name), slog.String("zone_id", meta.ID),
			slog.Int("records", z.Records()), slog.Int("skipped", r.skipped), slog.Time("synced", meta.Synced))
	}
	s.mu.Lock()
	// The snapshot stands for the zone list until the first listing, as
	// long as it holds every zone the config names.
	complete := loaded > 0
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
	return loaded, errors.Join(errs...)
}

func (s *Syncer) zoneIDsLocked() []string {
	ids := make([]string, 0, len(s.zones))
	for id := range s.zones {
		ids = append(ids, id)
	}
	return ids
}
