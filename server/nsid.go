package server

import (
	"encoding/binary"
	"encoding/hex"

	"github.com/miekg/dns"
)

// addNSID puts our NSID (RFC 5001) into m's OPT when the request's OPT
// asks for it with an NSID option (empty, as dig +nsid sends it; a
// non-empty one is treated the same, RFC 5001 §2.1 says to ignore its
// content). Without a configured NSID nothing is added.
func (s *Server) addNSID(m *dns.Msg, req *dns.OPT) {
	if len(s.cfg.NSID) == 0 {
		return
	}
	asked := false
	for _, o := range req.Option {
		if o.Option() == dns.EDNS0NSID {
			asked = true
			break
		}
	}
	if !asked {
		return
	}
	if opt := m.IsEdns0(); opt != nil {
		opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: hex.EncodeToString(s.cfg.NSID)})
	}
}

// hasOption reports whether the OPT rdata b (checked whole by
// fastOptions) carries an option with code.
func hasOption(b []byte, code uint16) bool {
	for len(b) >= 4 {
		if binary.BigEndian.Uint16(b) == code {
			return true
		}
		l := 4 + int(binary.BigEndian.Uint16(b[2:]))
		if l > len(b) {
			return false
		}
		b = b[l:]
	}
	return false
}
