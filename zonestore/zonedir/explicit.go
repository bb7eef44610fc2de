package zonedir

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"hybridns/zonestore"
)

// Entry is a zone listed with its file, as BIND's zone "NAME" { file
// "FILE"; }: any file name, relative to the directory or absolute.
type Entry struct {
	Origin string
	File   string
}

// SetZones lists zones by name and file besides the directory's
// <zone>.zone files; it applies from the next scan. A listed zone wins
// over a <zone>.zone file of the same name, which is then refused.
func (l *Loader) SetZones(entries []Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.explicit = nil
	for _, e := range entries {
		l.explicit = append(l.explicit, Entry{Origin: zonestore.Canonical(e.Origin), File: e.File})
	}
}

func (l *Loader) entryPath(e Entry) string {
	if filepath.IsAbs(e.File) {
		return e.File
	}
	return filepath.Join(l.dir, e.File)
}

// Unmatched returns the files of the directory that are no zone: not
// named <zone>.zone, not listed, not $INCLUDEd by a zone (as of the last
// scan). Hidden files are left out.
func (l *Loader) Unmatched() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.unmatched)
}

// reportUnmatched finds the unmatched files of a listing and logs each
// once, so a BIND-style db.corp.example is not silently ignored.
func (l *Loader) reportUnmatched(entries []os.DirEntry, explicit map[string]string) {
	included := map[string]bool{}
	for _, f := range l.files {
		for p := range f.includes {
			included[filepath.Clean(p)] = true
		}
	}
	var out []string
	for _, e := range entries {
		path := filepath.Join(l.dir, e.Name())
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") || OriginOf(e.Name()) != "" || included[filepath.Clean(path)] {
			continue
		}
		if _, ok := explicit[path]; ok {
			continue
		}
		out = append(out, path)
	}
	l.unmatched = out
	if l.reported == nil {
		l.reported = map[string]bool{}
	}
	for _, p := range out {
		if !l.reported[p] {
			l.reported[p] = true
			l.log.Warn("file in the zone directory matches no zone; not served (name it <zone>.zone or list it under zones:)", slog.String("file", p))
		}
	}
}

// ParseEntries loads, for `hybridns check`, what a Loader of dir with the
// explicit entries would serve, under the same rules; it also returns the
// files that match no zone. Errors are joined.
func ParseEntries(dir string, entries []Entry, o Options) ([]*zonestore.Zone, []string, error) {
	l := &Loader{dir: dir, files: map[string]*fileState{}, opts: o.withDefaults()}
	l.SetZones(entries)
	listing, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("zone dir: %w", err)
	}
	root := resolvedDir(dir)
	explicit := map[string]string{}
	var jobs []Entry
	for _, e := range l.explicit {
		p := l.entryPath(e)
		explicit[p] = e.Origin
		jobs = append(jobs, Entry{Origin: e.Origin, File: p})
	}
	for _, e := range listing {
		origin := OriginOf(e.Name())
		p := filepath.Join(dir, e.Name())
		if origin == "" || e.IsDir() {
			continue
		}
		if _, ok := explicit[p]; !ok {
			jobs = append(jobs, Entry{Origin: origin, File: p})
		}
	}
	var zones []*zonestore.Zone
	var errs []error
	owner := map[string]string{}
	for _, j := range jobs {
		if o, ok := owner[j.Origin]; ok {
			errs = append(errs, fmt.Errorf("%s: zone %s is already served from %s; not read", j.File, j.Origin, o))
			continue
		}
		owner[j.Origin] = j.File
		data, _, err := readFile(root, j.File, l.opts.MaxBytes)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		z, inc, err := parseFile(root, j.File, data, j.Origin, l.opts)
		l.files[j.File] = &fileState{origin: j.Origin, includes: inc}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		zones = append(zones, z)
	}
	l.log = discardLogger()
	l.reportUnmatched(listing, explicit)
	return zones, l.unmatched, errors.Join(errs...)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// ParseFile loads one zone file for origin as `named-checkzone` does, its
// $INCLUDEs restricted to the file's directory.
func ParseFile(path, origin string, o Options) (*zonestore.Zone, error) {
	o = o.withDefaults()
	root := resolvedDir(filepath.Dir(path))
	data, _, err := readFile(root, path, o.MaxBytes)
	if err != nil {
		return nil, err
	}
	z, _, err := parseFile(root, path, data, origin, o)
	return z, err
}
