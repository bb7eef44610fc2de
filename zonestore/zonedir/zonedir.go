// Package zonedir serves a directory of zone files: one zone per file named
// "<zone>.zone", loaded into a zonestore.Store, reloaded when a file changes.
// A file that fails to parse is reported and the zone's previous version
// keeps serving; a removed file removes its zone.
package zonedir

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"hybridns/zonestore"
)

// Suffix is the file-name suffix of zone files.
const Suffix = ".zone"

// Loader keeps the zones of one directory in a store's view.
type Loader struct {
	dir   string
	view  string
	store *zonestore.Store
	log   *slog.Logger

	mu    sync.Mutex // serializes scans
	files map[string]fileState
	// Reject, when set, vetoes a zone before it is published (for example a
	// zone whose name equals a forwarding rule). It must not block.
	Reject func(origin string) error
}

type fileState struct {
	size    int64
	modTime time.Time
	origin  string
	ok      bool // the last parse succeeded
}

// New returns a loader for dir publishing into view of store.
func New(dir string, store *zonestore.Store, view string, log *slog.Logger) *Loader {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Loader{
		dir:   dir,
		view:  view,
		store: store,
		log:   log.With(slog.String("component", "zonedir"), slog.String("dir", dir)),
		files: map[string]fileState{},
	}
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
// `hybridns check`. It returns all errors joined.
func Parse(dir string) ([]*zonestore.Zone, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("zone dir: %w", err)
	}
	var zones []*zonestore.Zone
	var errs []error
	for _, e := range entries {
		origin := OriginOf(e.Name())
		if origin == "" || e.IsDir() {
			continue
		}
		z, err := parseFile(filepath.Join(dir, e.Name()), origin)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		zones = append(zones, z)
	}
	return zones, errors.Join(errs...)
}

func parseFile(path, origin string) (*zonestore.Zone, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return zonestore.ParseZone(f, origin, path)
}

// Scan brings the store in line with the directory: new and changed files
// are parsed and published, removed files' zones are dropped. It returns the
// errors of files that failed; their zones keep their previous data.
func (l *Loader) Scan() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		err = fmt.Errorf("zone dir %s: %w", l.dir, err)
		l.log.Error("scan failed, serving previous zones", slog.Any("err", err))
		return err
	}
	seen := map[string]bool{}
	var errs []error
	for _, e := range entries {
		origin := OriginOf(e.Name())
		if origin == "" {
			continue
		}
		path := filepath.Join(l.dir, e.Name())
		info, err := os.Stat(path) // follows symlinks (ConfigMap-style mounts)
		if err != nil || info.IsDir() {
			continue
		}
		seen[path] = true
		prev, known := l.files[path]
		st := fileState{size: info.Size(), modTime: info.ModTime(), origin: origin}
		if known && prev.size == st.size && prev.modTime.Equal(st.modTime) {
			continue
		}
		z, err := parseFile(path, origin)
		if err == nil && l.Reject != nil {
			err = l.Reject(origin)
			if err != nil {
				err = fmt.Errorf("%s: %w", path, err)
			}
		}
		l.files[path] = st
		if err != nil {
			errs = append(errs, err)
			l.log.Error("zone file rejected, previous version keeps serving", slog.String("zone", origin), slog.Any("err", err))
			continue
		}
		st.ok = true
		l.files[path] = st
		l.store.PutZone(l.view, z)
		l.log.Info("zone loaded", slog.String("zone", origin), slog.String("file", path),
			slog.Int("records", z.Records()), slog.Uint64("serial", uint64(z.Serial())))
	}
	for path, st := range l.files {
		if seen[path] {
			continue
		}
		delete(l.files, path)
		l.store.DeleteZone(l.view, st.origin)
		l.log.Info("zone removed", slog.String("zone", st.origin), slog.String("file", path))
	}
	return errors.Join(errs...)
}

// Watch rescans the directory within debounce of any change to it, and every
// poll interval as a fallback for file systems without inotify, until ctx
// ends. Call Scan once before.
func (l *Loader) Watch(ctx context.Context, debounce, poll time.Duration) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", l.dir, err)
	}
	defer w.Close()
	if err := w.Add(l.dir); err != nil {
		return fmt.Errorf("watch %s: %w", l.dir, err)
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			l.log.Debug("zone dir event", slog.String("event", ev.String()))
			// Editors write in several steps; wait for quiet before parsing.
			if timer == nil {
				timer = time.NewTimer(debounce)
			} else {
				timer.Reset(debounce)
			}
			fire = timer.C
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			l.log.Warn("zone dir watch error", slog.Any("err", err))
		case <-fire:
			fire = nil
			_ = l.Scan()
		case <-tick.C:
			_ = l.Scan()
		}
	}
}
