// Package zonedir serves a directory of zone files: one zone per file named
// "<zone>.zone", loaded into a zonestore.Store, reloaded when a file changes.
//
// What the directory claims, the server keeps:
//   - A zone file that exists claims its zone from the first scan. Until a
//     good version of it has loaded, the zone is published as
//     zonestore.Unavailable (names in it get SERVFAIL, never a forwarded
//     answer) and Ready reports it.
//   - A file that fails to load later is reported and the zone's loaded
//     version keeps serving.
//   - A changed file is read only once it is quiet: no event in the
//     directory and no change of the file for Options.Quiet; a file that
//     changes while it is read is read again later.
//   - Only regular files are read, never more than Options.MaxBytes, and a
//     zone may not yield more than Options.MaxRecords records. A symlink is
//     followed only when it resolves inside the directory (Kubernetes
//     ConfigMap mounts); a FIFO or device is never opened.
//   - Only a file that is really gone (not listed, and lstat says it does
//     not exist) removes its zone; a failed stat or open keeps it, and a
//     failed directory listing keeps every zone.
package zonedir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"hybridns/zonestore"
)

// Suffix is the file-name suffix of zone files.
const Suffix = ".zone"

// Defaults of Options.
const (
	// DefaultMaxBytes bounds a zone file's size: 128 MiB holds well over
	// a million records of ordinary text.
	DefaultMaxBytes = 128 << 20
	// DefaultMaxRecords bounds the records of one zone, $GENERATE
	// expansions included (834 bytes can generate 1.3 million).
	DefaultMaxRecords = 1_000_000
	// DefaultQuiet is how long a changed file must stay unchanged, with no
	// event in the directory, before it is read.
	DefaultQuiet = 200 * time.Millisecond
)

// Options bound what a zone file may cost and say when a changed file is
// accepted. Zero values mean the defaults.
type Options struct {
	MaxBytes   int64
	MaxRecords int
	Quiet      time.Duration
	// SerialMustIncrease refuses a changed file whose SOA serial is not
	// greater (RFC 1982) than the loaded version's; otherwise it loads
	// with a warning, as BIND does.
	SerialMustIncrease bool
}

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = DefaultMaxRecords
	}
	if o.Quiet <= 0 {
		o.Quiet = DefaultQuiet
	}
	return o
}

// Loader keeps the zones of one directory in a store's view.
type Loader struct {
	dir   string
	view  string
	store *zonestore.Store
	log   *slog.Logger

	mu   sync.Mutex // serializes scans
	opts Options
	// explicit zones (BIND's zone "name" { file "…"; }): path → origin,
	// besides the <zone>.zone files of the directory.
	explicit  []Entry
	unmatched []string        // files of the directory that are no zone, last scan
	reported  map[string]bool // unmatched files already logged
	files     map[string]*fileState
	// edits gathers a scan's zone changes: a scan publishes once, however
	// many files it loads (a start with thousands of zones is one swap).
	edits  zonestore.Edits
	listed bool            // the directory has been listed once
	dups   map[string]bool // files refused for a zone another file serves, reported

	evMu      sync.Mutex
	lastEvent time.Time // of the directory watch

	kick     chan struct{} // a scan deferred a file: scan again after Quiet
	quietFor atomic.Int64  // opts.Quiet, for Watch without taking mu
	ready    atomic.Pointer[error]

	// Reject, when set, vetoes a zone before it is published (for example a
	// zone whose name equals a forwarding rule). It must not block.
	Reject func(origin string) error

	// Parsed, when set, is told after every scan that parsed zone text how
	// many bytes it parsed (included files not counted), so the process
	// can return what a big load left behind to the OS (process tuning is
	// not the library's to do). It must not block.
	Parsed func(bytes int64)
	parsed int64 // bytes parsed by the scan in progress

	// Test hooks: called once Watch watches, and after every scan.
	onWatching func()
	onScan     func(error)
}

// stamp identifies one version of a file without reading it.
type stamp struct {
	info os.FileInfo // of the file itself (after resolving symlinks)
}

func (s stamp) valid() bool { return s.info != nil }

func (s stamp) same(o stamp) bool {
	return s.info != nil && o.info != nil && os.SameFile(s.info, o.info) &&
		s.info.Size() == o.info.Size() && s.info.ModTime().Equal(o.info.ModTime())
}

type fileState struct {
	origin string
	// loaded is the version published (nil zone: none yet); failed is the
	// last version that was refused, so it is not reported again.
	loaded     stamp
	zone       *zonestore.Zone
	sum        [32]byte
	failed     stamp
	failedErr  string
	candidate  stamp // a changed version waiting to be quiet
	seenAt     time.Time
	claimed    bool // an Unavailable placeholder is published for it
	explicit   bool // listed in the config, not found by its name
	lastReason string
	includes   map[string]stamp // files $INCLUDEd by the last version read
	loadedAt   time.Time        // when zone was published
	triedAt    time.Time        // when a version was last read or refused
}

// New returns a loader for dir publishing into view of store.
func New(dir string, store *zonestore.Store, view string, log *slog.Logger) *Loader {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Loader{
		dir:   dir,
		view:  view,
		store: store,
		log:   log.With(slog.String("component", "zonedir"), slog.String("dir", dir)),
		opts:  Options{}.withDefaults(),
		files: map[string]*fileState{},
		dups:  map[string]bool{},
		kick:  make(chan struct{}, 1),
	}
	l.quietFor.Store(int64(l.opts.Quiet))
	l.updateReady()
	return l
}

// SetOptions replaces the loader's options; they apply from the next scan.
func (l *Loader) SetOptions(o Options) {
	l.mu.Lock()
	l.opts = o.withDefaults()
	l.quietFor.Store(int64(l.opts.Quiet))
	l.mu.Unlock()
}

// OriginOf returns the zone name a file name stands for, or "" if the file is
// not a zone file.
func OriginOf(file string) string {
	base := filepath.Base(file)
	if !strings.HasSuffix(base, Suffix) || strings.HasPrefix(base, ".") {
		return ""
	}
	name := strings.TrimSuffix(base, Suffix)
	if name == "" {
		return ""
	}
	if name == "root" {
		return "."
	}
	return zonestore.Canonical(name)
}

// Parse loads every zone file of dir without publishing anything, for
// `hybridns check`, under the same rules as a Loader (regular files inside
// dir only, size and record limits). It returns all errors joined.
func Parse(dir string, o Options) ([]*zonestore.Zone, error) {
	o = o.withDefaults()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("zone dir: %w", err)
	}
	root := resolvedDir(dir)
	var zones []*zonestore.Zone
	var errs []error
	for _, e := range entries {
		origin := OriginOf(e.Name())
		if origin == "" || e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, _, err := readFile(root, path, o.MaxBytes)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		z, _, err := parseFile(root, path, data, origin, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		zones = append(zones, z)
	}
	return zones, errors.Join(errs...)
}

// resolvedDir is dir with every symlink resolved, the base symlinked zone
// files must stay within.
func resolvedDir(dir string) string {
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	if a, err := filepath.Abs(dir); err == nil {
		dir = a
	}
	return dir
}

// errChanging says a file changed while it was read; it is read again once
// quiet.
var errChanging = errors.New("file changed while being read")

// probe finds the file path stands for without opening it: path itself, or
// what its symlinks resolve to when that is inside root. It must be a
// regular file within the size limit.
func probe(root, path string, maxBytes int64) (string, stamp, error) {
	li, err := os.Lstat(path)
	if err != nil {
		return "", stamp{}, err
	}
	target := path
	if li.Mode()&fs.ModeSymlink != 0 {
		r, err := filepath.EvalSymlinks(path)
		if err != nil {
			return "", stamp{}, fmt.Errorf("%s: symlink does not resolve: %w", path, err)
		}
		if r, err = filepath.Abs(r); err != nil {
			return "", stamp{}, fmt.Errorf("%s: %w", path, err)
		}
		if rel, err := filepath.Rel(root, r); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
			return "", stamp{}, fmt.Errorf("%s: symlink resolves outside the zone directory (to %s); not read", path, r)
		}
		target = r
		if li, err = os.Lstat(target); err != nil {
			return "", stamp{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	if !li.Mode().IsRegular() {
		return "", stamp{}, fmt.Errorf("%s: not a regular file (%s); not read", path, fileType(li.Mode()))
	}
	if li.Size() > maxBytes {
		return "", stamp{}, fmt.Errorf("%s: %d bytes, more than the limit of %d; not read", path, li.Size(), maxBytes)
	}
	return target, stamp{info: li}, nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return m.Type().String()
}

// readFile reads the zone file path (see probe) and returns its content and
// the version read. It never blocks on a FIFO or device: the file is opened
// non-blocking and must still be the regular file probed.
func readFile(root, path string, maxBytes int64) ([]byte, stamp, error) {
	target, st, err := probe(root, path, maxBytes)
	if err != nil {
		return nil, stamp{}, err
	}
	f, err := openNoBlock(target)
	if err != nil {
		return nil, stamp{}, err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return nil, stamp{}, err
	}
	if !before.Mode().IsRegular() || !os.SameFile(before, st.info) {
		return nil, stamp{}, fmt.Errorf("%s: %w", path, errChanging) // swapped since the probe
	}
	// Sized from the stat, in one allocation: a doubling buffer would
	// leave as much garbage again as a big file's text.
	buf := bytes.NewBuffer(make([]byte, 0, min(before.Size(), maxBytes)+bytes.MinRead))
	_, err = buf.ReadFrom(io.LimitReader(f, maxBytes+1))
	data := buf.Bytes()
	if err != nil {
		return nil, stamp{}, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > maxBytes {
		return nil, stamp{}, fmt.Errorf("%s: more than the limit of %d bytes; not read", path, maxBytes)
	}
	after, err := f.Stat()
	if err != nil {
		return nil, stamp{}, err
	}
	if a := (stamp{info: after}); !a.same(stamp{info: before}) || int64(len(data)) != after.Size() {
		return nil, stamp{}, fmt.Errorf("%s: %w", path, errChanging)
	}
	return data, stamp{info: after}, nil
}

// Ready returns nil once the directory has been listed and every zone file
// in it has loaded a good version; otherwise it says what is missing. It
// never waits for a scan in progress.
func (l *Loader) Ready() error { return *l.ready.Load() }

// updateReady recomputes what Ready returns; with mu held.
func (l *Loader) updateReady() {
	var err error
	var missing []string
	for _, f := range l.files {
		if f.zone == nil {
			missing = append(missing, f.origin)
		}
	}
	switch {
	case !l.listed:
		err = fmt.Errorf("zone dir %s not read yet", l.dir)
	case len(missing) > 0:
		slices.Sort(missing)
		err = fmt.Errorf("zone(s) never loaded: %s", strings.Join(missing, " "))
	}
	l.ready.Store(&err)
}

// Scan brings the store in line with the directory: new and changed files
// are parsed and published once quiet, removed files' zones are dropped. It
// returns the errors of files that failed; their zones keep their previous
// data, or answer SERVFAIL if they have none.
func (l *Loader) Scan() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.parsed = 0
	err := l.scanLocked(time.Now())
	l.updateReady()
	if l.Parsed != nil && l.parsed > 0 {
		l.Parsed(l.parsed)
	}
	if l.onScan != nil {
		l.onScan(err)
	}
	return err
}

// Rescan is Scan that also retries files refused before even if they have
// not changed: a new config may change the verdict (a forwarding rule gone,
// a higher limit).
func (l *Loader) Rescan() error {
	l.mu.Lock()
	for _, f := range l.files {
		f.failed, f.failedErr = stamp{}, ""
	}
	l.mu.Unlock()
	return l.Scan()
}

func (l *Loader) scanLocked(now time.Time) error {
	l.edits = zonestore.Edits{}
	defer func() { l.store.Apply(&l.edits) }()
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		err = fmt.Errorf("zone dir %s: %w", l.dir, err)
		loaded := 0
		for _, f := range l.files {
			if f.zone != nil {
				loaded++
			}
		}
		if loaded > 0 {
			l.log.Error("zone dir unreadable; the zones loaded from it keep serving", slog.Int("zones", loaded), slog.Any("err", err))
		} else {
			l.log.Error("zone dir unreadable; no zone of it has loaded", slog.Any("err", err))
		}
		return err
	}
	l.listed = true
	root := resolvedDir(l.dir)
	seen := map[string]bool{}
	explicit := map[string]string{} // path → origin
	for _, e := range l.explicit {
		explicit[l.entryPath(e)] = e.Origin
	}
	// One file per zone: a file already serving (or claiming) a zone keeps
	// it; another file for the same name (Corp.example.zone beside
	// corp.example.zone) is refused. A zone listed explicitly comes first.
	owner := map[string]string{}
	for path, origin := range explicit {
		seen[path] = true
		if f := l.files[path]; f != nil && f.origin == origin {
			owner[origin] = path
		}
	}
	for _, e := range entries {
		if origin := OriginOf(e.Name()); origin != "" && !e.IsDir() {
			path := filepath.Join(l.dir, e.Name())
			if _, ok := explicit[path]; ok {
				continue
			}
			seen[path] = true
			if l.files[path] != nil {
				if _, taken := owner[origin]; !taken {
					owner[origin] = path
				}
			}
		}
	}
	var errs []error
	type job struct{ path, origin string }
	var jobs []job
	for _, e := range l.explicit {
		jobs = append(jobs, job{l.entryPath(e), e.Origin})
	}
	for _, e := range entries {
		origin := OriginOf(e.Name())
		if origin == "" || e.IsDir() {
			continue
		}
		if _, ok := explicit[filepath.Join(l.dir, e.Name())]; ok {
			continue
		}
		jobs = append(jobs, job{filepath.Join(l.dir, e.Name()), origin})
	}
	for _, j := range jobs {
		path, origin := j.path, j.origin
		if o, ok := owner[origin]; ok && o != path {
			err := fmt.Errorf("%s: zone %s is already served from %s; not read", path, origin, o)
			if !l.dups[path] {
				l.dups[path] = true
				l.log.Error("zone file refused", slog.Any("err", err))
			}
			errs = append(errs, err)
			continue
		}
		delete(l.dups, path)
		owner[origin] = path
		if err := l.scanFile(root, path, origin, now); err != nil {
			errs = append(errs, err)
		}
		if f := l.files[path]; f != nil {
			_, f.explicit = explicit[path]
		}
	}
	l.reportUnmatched(entries, explicit)
	for path, f := range l.files {
		if seen[path] {
			continue
		}
		// Listed no more; removed only if the path itself is gone (not
		// replaced in the meantime) or it was a zone the config listed.
		if _, err := os.Lstat(path); !f.explicit && !errors.Is(err, os.ErrNotExist) {
			continue
		}
		delete(l.files, path)
		if f.zone != nil || f.claimed {
			l.edits.Delete(l.view, f.origin)
		}
		l.log.Info("zone removed", slog.String("zone", f.origin), slog.String("file", path))
	}
	return errors.Join(errs...)
}

// quiet reports whether a changed file may be read now: no event in the
// directory for Quiet, and the file unchanged for Quiet (its modification
// time that old, or this very version seen that long ago).
func (l *Loader) quiet(f *fileState, st stamp, now time.Time) bool {
	l.evMu.Lock()
	last := l.lastEvent
	l.evMu.Unlock()
	if now.Sub(last) < l.opts.Quiet {
		return false
	}
	if now.Sub(st.info.ModTime()) >= l.opts.Quiet {
		return true
	}
	return f.candidate.same(st) && now.Sub(f.seenAt) >= l.opts.Quiet
}

// later asks Watch to scan again after Quiet.
func (l *Loader) later() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (l *Loader) scanFile(root, path, origin string, now time.Time) error {
	f := l.files[path]
	if f != nil && f.origin != origin {
		// The config lists this file for another zone now.
		if f.zone != nil || f.claimed {
			l.edits.Delete(l.view, f.origin)
		}
		delete(l.files, path)
		f = nil
	}
	if f == nil {
		f = &fileState{origin: origin}
		l.files[path] = f
	}
	_, st, err := probe(root, path, l.opts.MaxBytes)
	if err != nil {
		return l.refuse(f, path, stamp{}, err)
	}
	if (st.same(f.loaded) || st.same(f.failed)) && !includesChanged(root, f.includes, l.opts.MaxBytes) {
		return nil // unchanged since it was loaded or refused, its $INCLUDEs too
	}
	if !l.quiet(f, st, now) {
		if !f.candidate.same(st) {
			f.candidate, f.seenAt = st, now
		}
		l.claim(f, path, "zone file is being written; waiting for it to be quiet")
		l.later()
		return nil
	}
	data, st, err := readFile(root, path, l.opts.MaxBytes)
	if errors.Is(err, errChanging) {
		f.candidate = stamp{}
		l.claim(f, path, "zone file changed while read; waiting for it to be quiet")
		l.later()
		return nil
	}
	if err != nil {
		return l.refuse(f, path, stamp{}, err)
	}
	f.candidate = stamp{}
	sum := sha256.Sum256(data)
	if f.zone != nil && sum == f.sum && !includesChanged(root, f.includes, l.opts.MaxBytes) {
		f.loaded = st // touched, same content
		return nil
	}
	z, inc, err := parseFile(root, path, data, origin, l.opts)
	l.parsed += int64(len(data))
	f.includes = inc
	if err == nil && l.Reject != nil {
		if err = l.Reject(origin); err != nil {
			err = fmt.Errorf("%s: %w", path, err)
		}
	}
	var warn string
	if err == nil && f.zone != nil {
		old, cur := f.zone.Serial(), z.Serial()
		switch {
		case cur == old:
			warn = "zone serial unchanged"
		case int32(cur-old) < 0:
			warn = "zone serial went backwards"
		}
		if warn != "" && l.opts.SerialMustIncrease {
			err = fmt.Errorf("%s: %s (%d, loaded: %d) and zone serials must increase", path, warn, cur, old)
		}
	}
	if err != nil {
		return l.refuse(f, path, st, err)
	}
	if warn != "" {
		l.log.Warn(warn+"; loading it anyway", slog.String("zone", origin), slog.String("file", path),
			slog.Uint64("serial", uint64(z.Serial())), slog.Uint64("previous", uint64(f.zone.Serial())))
	}
	l.edits.Put(l.view, z)
	f.loaded, f.zone, f.sum, f.claimed = st, z, sum, false
	f.loadedAt, f.triedAt = now, now
	f.failed, f.failedErr, f.lastReason = stamp{}, "", ""
	l.log.Info("zone loaded", slog.String("zone", origin), slog.String("file", path),
		slog.Int("records", z.Records()), slog.Uint64("serial", uint64(z.Serial())))
	return nil
}

// refuse records a version of a file that cannot be served (st is zero
// when the file could not be examined: it is tried again every scan) and
// says truthfully what serves meanwhile.
func (l *Loader) refuse(f *fileState, path string, st stamp, err error) error {
	msg := err.Error()
	f.triedAt = time.Now()
	if st.valid() {
		f.failed = st
	} else if f.failedErr == msg {
		return err // same problem as last scan: reported already
	}
	f.failedErr = msg
	if f.zone != nil {
		l.log.Error("zone file rejected; the loaded version keeps serving", slog.String("zone", f.origin),
			slog.Uint64("serial", uint64(f.zone.Serial())), slog.Any("err", err))
		return err
	}
	l.claim(f, path, "")
	l.log.Error("zone file rejected; the zone has never loaded and answers SERVFAIL until it does",
		slog.String("zone", f.origin), slog.Any("err", err))
	return err
}

// claim publishes a placeholder for a zone file that has no loaded version,
// so its names get SERVFAIL rather than fall through to a forwarder.
func (l *Loader) claim(f *fileState, path, reason string) {
	if f.zone != nil {
		return
	}
	if !f.claimed {
		l.edits.Put(l.view, zonestore.Unavailable(f.origin, path))
		f.claimed = true
	}
	if reason != "" && reason != f.lastReason {
		f.lastReason = reason
		l.log.Info(reason+"; the zone answers SERVFAIL until it loads", slog.String("zone", f.origin), slog.String("file", path))
	}
}

// Watch rescans the directory once it has been quiet (Options.Quiet) after
// any change to it, and every poll interval as a fallback for file systems
// without inotify, until ctx ends. Call Scan once before. When the
// directory cannot be watched (no inotify, its limits reached) it says so
// and polls.
func (l *Loader) Watch(ctx context.Context, poll time.Duration) error {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w, err := fsnotify.NewWatcher(); err != nil {
		l.log.Error("zone dir cannot be watched; polling", slog.Duration("every", poll), slog.Any("err", err))
	} else {
		defer w.Close()
		if err := w.Add(l.dir); err != nil {
			l.log.Error("zone dir cannot be watched; polling", slog.Duration("every", poll), slog.Any("err", err))
		} else {
			events, errs = w.Events, w.Errors
		}
	}
	if l.onWatching != nil {
		l.onWatching()
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	arm := func() {
		timer.Reset(time.Duration(l.quietFor.Load()))
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			l.evMu.Lock()
			l.lastEvent = time.Now()
			l.evMu.Unlock()
			l.log.Debug("zone dir event", slog.String("event", ev.String()))
			// Writers work in several steps; wait for quiet before parsing.
			arm()
		case <-l.kick:
			arm()
		case err, ok := <-errs:
			if !ok {
				return nil
			}
			l.log.Warn("zone dir watch error", slog.Any("err", err))
		case <-timer.C:
			_ = l.Scan()
		case <-tick.C:
			_ = l.Scan()
		}
	}
}
