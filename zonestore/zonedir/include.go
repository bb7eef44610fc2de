package zonedir

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"hybridns/zonestore"
)

// includeFS hands the zone parser the files a zone file $INCLUDEs: only
// regular files inside the zone directory (symlinks resolved), within the
// size limit; anything else is refused with the reason. It records what it
// opened, so a change to an included file reloads the zone and the file is
// not reported as matching no zone.
type includeFS struct {
	root     string // resolved zone directory
	abs      bool   // the zone file's path was absolute: names lost their "/"
	maxBytes int64
	opened   map[string]stamp
}

func (f *includeFS) Open(name string) (fs.File, error) {
	p := filepath.FromSlash(name)
	if f.abs {
		p = string(filepath.Separator) + p
	}
	target, st, err := probe(f.root, p, f.maxBytes)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return nil, err
	}
	if rel, err := filepath.Rel(f.root, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return nil, fmt.Errorf("%s is outside the zone directory; $INCLUDE reads only files inside it", p)
	}
	fh, err := openNoBlock(target)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, f.maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > f.maxBytes {
		return nil, fmt.Errorf("%s: more than the limit of %d bytes; not read", p, f.maxBytes)
	}
	if f.opened == nil {
		f.opened = map[string]stamp{}
	}
	f.opened[p] = st
	return &memFile{Reader: bytes.NewReader(data), name: filepath.Base(p), size: int64(len(data))}, nil
}

// memFile is an included file, read whole.
type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (m *memFile) Stat() (fs.FileInfo, error) { return memInfo{m.name, m.size}, nil }
func (m *memFile) Close() error               { return nil }

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

// parseFile parses the content of the zone file path for origin, its
// $INCLUDEs restricted to root; it returns the zone and the included files.
func parseFile(root, path string, data []byte, origin string, o Options) (*zonestore.Zone, map[string]stamp, error) {
	inc := &includeFS{root: root, abs: filepath.IsAbs(path), maxBytes: o.MaxBytes}
	z, err := zonestore.ParseZoneData(data, origin, path, zonestore.ParseOptions{MaxRecords: o.MaxRecords, Include: inc})
	return z, inc.opened, err
}

// includesChanged reports whether any included file differs from the
// version read.
func includesChanged(root string, inc map[string]stamp, maxBytes int64) bool {
	for p, st := range inc {
		_, now, err := probe(root, p, maxBytes)
		if err != nil || !now.same(st) {
			return true
		}
	}
	return false
}
