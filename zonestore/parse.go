package zonestore

import (
	"bufio"
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

// ParseZoneWith is ParseZoneLimit with $INCLUDE through o.Include.
// Zone-rule errors name the line of the record ("file:12: www.corp.example.:
// CNAME and other data"); a record read from an included file is named by
// the line of its $INCLUDE.
func ParseZoneWith(r io.Reader, origin, file string, o ParseOptions) (*Zone, error) {
	maxRecords := o.MaxRecords
	origin = Canonical(origin)
	lr := &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
	zp := dns.NewZoneParser(lr, origin, file)
	zp.SetIncludeAllowed(o.Include != nil)
	if o.Include != nil {
		zp.SetIncludeFS(o.Include)
	}
	b := NewBuilder(origin)
	b.SetSource(file)
	var errs []error
	n := 0
	firstLine := map[string]int{} // owner → line of its first record
	cnameLine := map[string]int{} // owner → line of its CNAME
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if n++; maxRecords > 0 && n > maxRecords {
			return nil, fmt.Errorf("%s: %w: more than %d", file, ErrTooManyRecords, maxRecords)
		}
		line := lr.line()
		owner := Canonical(rr.Header().Name)
		if _, ok := firstLine[owner]; !ok {
			firstLine[owner] = line
		}
		if rr.Header().Rrtype == dns.TypeCNAME {
			if _, ok := cnameLine[owner]; !ok {
				cnameLine[owner] = line
			}
		}
		if err := b.Add(rr); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", file, line, err))
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
		var out []error
		for _, e := range unjoin(err) {
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
		return nil, errors.Join(out...)
	}
	return z, nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// lineReader counts the lines the zone parser has consumed: when it
// returns a record it has just read the newline that ends it.
type lineReader struct {
	r       *bufio.Reader
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
