package main

import (
	"fmt"
	"os"
)

// maxNSID bounds the identifier: it rides in every reply that asks for it.
const maxNSID = 128

// nsidBytes is the NSID (RFC 5001) the config asks for: nsid: hostname
// is the machine's host name (as BIND's server-id hostname), any other
// text is sent as written; unset or empty: none.
func (c *Config) nsidBytes() ([]byte, error) {
	switch c.NSID {
	case "":
		return nil, nil
	case "hostname":
		h, err := os.Hostname()
		if err != nil || h == "" {
			return nil, fmt.Errorf("%s: nsid: hostname: the host name is unknown (%v); write the identifier instead", c.where(c.lineOf("nsid")), err)
		}
		if len(h) > maxNSID {
			h = h[:maxNSID]
		}
		return []byte(h), nil
	}
	if len(c.NSID) > maxNSID {
		return nil, fmt.Errorf("%s: nsid: %d bytes: want at most %d", c.where(c.lineOf("nsid")), len(c.NSID), maxNSID)
	}
	return []byte(c.NSID), nil
}
