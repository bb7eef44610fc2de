package zonestore

import (
	"errors"
	"fmt"
	"io"

	"github.com/miekg/dns"
)

// maxParseErrors bounds how many record errors one file reports; past that
// the rest is noise.
const maxParseErrors = 20

// ParseZone reads RFC 1035 zone-file text for origin. file names the source
// in every error ("corp.example.zone:12:3: ..."). $INCLUDE is refused: a zone
// directory must be self-contained and must not read arbitrary files.
func ParseZone(r io.Reader, origin, file string) (*Zone, error) {
	origin = Canonical(origin)
	zp := dns.NewZoneParser(r, origin, file)
	zp.SetIncludeAllowed(false)
	b := NewBuilder(origin)
	b.SetSource(file)
	var errs []error
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
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
