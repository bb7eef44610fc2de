package zonestore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

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
func ParseZoneWith(r io.Reader, origin, file string, o ParseOptions) (*Zone, error) {
	maxRecords := o.MaxRecords
	origin = Canonical(origin)
	zp := dns.NewZoneParser(r, origin, file)
	zp.SetIncludeAllowed(o.Include != nil)
	if o.Include != nil {
		zp.SetIncludeFS(o.Include)
	}
	b := NewBuilder(origin)
	b.SetSource(file)
	var errs []error
	n := 0
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if n++; maxRecords > 0 && n > maxRecords {
			return nil, fmt.Errorf("%s: %w: more than %d", file, ErrTooManyRecords, maxRecords)
		}
		if err := b.Add(rr); err != nil {
			// The parser knows the line of the record it just returned only
			// through the error path; name the record instead.
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
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
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return z, nil
}
