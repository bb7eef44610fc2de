package zonestore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/miekg/dns"
)

// maxParseErrors bounds how many record errors one file reports; past that
// the rest is noise.
const maxParseErrors = 20

// ParseZone reads RFC 1035 zone-file text for origin. file names the source
// in every error ("corp.example.zone:12:3: ..."). $INCLUDE is refused here:
// only a caller that controls which files are opened allows it (see
// ParseOptions.Include).
func ParseZone(r io.Reader, origin, file string) (*Zone, error) {
	return ParseZoneLimit(r, origin, file, 0)
}

// ErrTooManyRecords is returned by ParseZoneLimit for text that yields more
// records than allowed.
var ErrTooManyRecords = errors.New("too many records")

// ParseZoneLimit is ParseZone with a bound on the records the text yields,
// $GENERATE expansions included (a few hundred bytes can generate millions);
// past maxRecords it stops reading and fails. 0 means no bound.
func ParseZoneLimit(r io.Reader, origin, file string, maxRecords int) (*Zone, error) {
	return ParseZoneWith(r, origin, file, ParseOptions{MaxRecords: maxRecords})
}

// ParseOptions bound and widen what a zone file may do.
type ParseOptions struct {
	// MaxRecords bounds the records the text yields, $GENERATE and
	// $INCLUDE included; 0 means no bound.
	MaxRecords int
	// Include, when set, allows $INCLUDE and is the only way included
	// files are opened (the caller decides which files it hands out). The
	// parser asks it for the path of the included file joined to the
	// directory of file, without the leading slash (fs.FS rules).
	Include fs.FS
}

// ParseZoneWith is ParseZoneLimit with $INCLUDE through o.Include. It reads
// r whole and parses it as ParseZoneData does.
func ParseZoneWith(r io.Reader, origin, file string, o ParseOptions) (*Zone, error) {
	data, err := readAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return ParseZoneData(data, origin, file, o)
}

// readAll is io.ReadAll in one allocation when r knows its size (a file,
// a bytes or strings reader), not a doubling buffer's worth of garbage.
func readAll(r io.Reader) ([]byte, error) {
	size := int64(-1)
	switch v := r.(type) {
	case interface{ Len() int }:
		size = int64(v.Len())
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	}
	if size < 0 || size > 1<<31 {
		return io.ReadAll(r)
	}
	// ReadFrom wants MinRead bytes free before it reads to EOF.
	b := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

// ParseZoneData parses the zone-file text data for origin (see ParseZone and
// ParseOptions); it does not keep data. Zone-rule errors name the line of
// the record ("file:12: www.corp.example.: CNAME and other data"); a record
// read from an included file is named by the line of its $INCLUDE.
//
// A large file is cut into chunks parsed on every CPU (see planChunks) and
// fed to the builder in file order, so the zone, and which TTL or duplicate
// wins, are those of one pass from the top. Nothing per record is kept for
// error messages: when anything fails, the file is parsed again the slow
// way (parseExact), which yields exactly the errors of a single pass.
func ParseZoneData(data []byte, origin, file string, o ParseOptions) (*Zone, error) {
	return parseData(data, Canonical(origin), file, o, parseTuning{})
}

// parseTuning overrides how parseData splits work; zero values mean the
// defaults (tests make chunks tiny to put boundaries everywhere).
type parseTuning struct {
	chunk   int // target chunk size in bytes
	workers int // parsing goroutines
	minSize int // smallest file parsed in chunks
}

func parseData(data []byte, origin, file string, o ParseOptions, t parseTuning) (*Zone, error) {
	t = t.withDefaults()
	b := NewBuilder(origin)
	b.SetSource(file)
	if len(data) >= t.minSize {
		// About a record a line: a big zone builds without regrowing its
		// arrays (what a small file would save is not worth the count).
		b.Grow(bytes.Count(data, []byte{'\n'}))
	}
	var ok bool
	if chunks := planChunks(data, origin, t); len(chunks) > 1 {
		ok = feedParallel(b, data, chunks, file, o.MaxRecords, t)
	} else {
		ok = feedSequential(b, data, origin, file, o)
	}
	if !ok {
		return parseExact(data, origin, file, o)
	}
	z, err := b.Build()
	if err != nil {
		return nil, buildErrors(err, data, origin, file, o)
	}
	return z, nil
}

// tooMany is the error of a file with more than max records.
func tooMany(file string, max int) error {
	return fmt.Errorf("%s: %w: more than %d", file, ErrTooManyRecords, max)
}

// newParser returns a zone parser over data for origin with $INCLUDE
// through o.Include (refused when nil).
func newParser(r io.Reader, origin, file string, o ParseOptions) *dns.ZoneParser {
	zp := dns.NewZoneParser(r, origin, file)
	zp.SetIncludeAllowed(o.Include != nil)
	if o.Include != nil {
		zp.SetIncludeFS(o.Include)
	}
	return zp
}

// feedSequential parses data in one pass straight into b. It reports false
// at the first problem of any kind; parseExact then says what it is.
func feedSequential(b *Builder, data []byte, origin, file string, o ParseOptions) bool {
	zp := newParser(bytes.NewReader(data), origin, file, o)
	n := 0
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if n++; o.MaxRecords > 0 && n > o.MaxRecords {
			return false
		}
		// The record is ours to hand over: no copy.
		if b.AddOwned(rr) != nil {
			return false
		}
	}
	return zp.Err() == nil
}

// parseExact is the reference parse: one pass, counting lines so that
// record errors name theirs. It runs for files that fail, so it may spend.
func parseExact(data []byte, origin, file string, o ParseOptions) (*Zone, error) {
	lr := &lineReader{r: bytes.NewReader(data)}
	zp := newParser(lr, origin, file, o)
	b := NewBuilder(origin)
	b.SetSource(file)
	var errs []error
	n := 0
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if n++; o.MaxRecords > 0 && n > o.MaxRecords {
			return nil, tooMany(file, o.MaxRecords)
		}
		if err := b.AddOwned(rr); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", file, lr.line(), err))
			if len(errs) == maxParseErrors {
				break
			}
		}
	}
	if err := zp.Err(); err != nil {
		// miekg's ParseError already reads "file: dns: ...: at line: L:C".
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	z, err := b.Build()
	if err != nil {
		return nil, buildErrors(err, data, origin, file, o)
	}
	return z, nil
}

// buildErrors names the line of each zone-rule error of Build ("name:
// problem"): the line of the owner's CNAME for a CNAME problem, else of the
// owner's first record. The lines come from parsing data again, for the
// named owners only: no per-record bookkeeping on the way that succeeds.
func buildErrors(err error, data []byte, origin, file string, o ParseOptions) error {
	errs := unjoin(err)
	want := map[string]bool{}
	for _, e := range errs {
		if name, _, ok := strings.Cut(e.Error(), ": "); ok {
			want[Canonical(name)] = true
		}
	}
	firstLine, cnameLine := ownerLines(data, origin, file, o, want)
	var out []error
	for _, e := range errs {
		msg := e.Error()
		name, rest, _ := strings.Cut(msg, ": ")
		line := firstLine[Canonical(name)]
		if strings.Contains(rest, "CNAME") {
			if l, ok := cnameLine[Canonical(name)]; ok {
				line = l
			}
		}
		if line > 0 && !strings.HasPrefix(msg, "zone ") {
			out = append(out, fmt.Errorf("%s:%d: %s", file, line, msg))
		} else {
			out = append(out, fmt.Errorf("%s: %s", file, msg))
		}
	}
	return errors.Join(out...)
}

// ownerLines returns, for the owners in want, the line of their first
// record and of their first CNAME.
func ownerLines(data []byte, origin, file string, o ParseOptions, want map[string]bool) (first, cname map[string]int) {
	first, cname = map[string]int{}, map[string]int{}
	lr := &lineReader{r: bytes.NewReader(data)}
	zp := newParser(lr, origin, file, o)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		owner := Canonical(rr.Header().Name)
		if !want[owner] {
			continue
		}
		if _, ok := first[owner]; !ok {
			first[owner] = lr.line()
		}
		if _, ok := cname[owner]; !ok && rr.Header().Rrtype == dns.TypeCNAME {
			cname[owner] = lr.line()
		}
	}
	return first, cname
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// lineReader counts the lines the zone parser has consumed: when it
// returns a record it has just read the newline that ends it. The parser
// reads through ReadByte only (it is an io.ByteReader, so miekg adds no
// buffer of its own).
type lineReader struct {
	r       *bytes.Reader
	lines   int
	last    byte
	sawByte bool
}

func (l *lineReader) ReadByte() (byte, error) {
	c, err := l.r.ReadByte()
	if err == nil {
		if c == '\n' {
			l.lines++
		}
		l.last, l.sawByte = c, true
	}
	return c, err
}

func (l *lineReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for _, c := range p[:n] {
		if c == '\n' {
			l.lines++
		}
	}
	if n > 0 {
		l.last, l.sawByte = p[n-1], true
	}
	return n, err
}

// line is the line of the record just returned: the one whose newline was
// consumed last, or the last line when it has none.
func (l *lineReader) line() int {
	if l.sawByte && l.last != '\n' {
		return l.lines + 1
	}
	return max(l.lines, 1)
}
