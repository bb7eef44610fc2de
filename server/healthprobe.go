package server

import (
	"bytes"
	"crypto/rand"
	"sync"

	"github.com/miekg/dns"
)

// healthOptionCode is the EDNS local-use option (RFC 6891 §9) that marks
// our own health probe (/healthz asks the listener it serves); its data is
// a per-process nonce, so no client can hide its queries from the metrics
// by sending it.
const healthOptionCode = 65074

var (
	healthOnce  sync.Once
	healthNonce [16]byte
)

func probeNonce() []byte {
	healthOnce.Do(func() { _, _ = rand.Read(healthNonce[:]) })
	return healthNonce[:]
}

// HealthProbe returns a query for the health check to send to our own
// listener: any reply proves the DNS side answers. The handler answers it
// (NOERROR, empty) without counting it as a client query, so /healthz
// polling does not show in hybridns_queries_total.
func (s *Server) HealthProbe() *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeSOA)
	m.RecursionDesired = false
	m.SetEdns0(dns.MinMsgSize, false)
	o := m.IsEdns0()
	o.Option = append(o.Option, &dns.EDNS0_LOCAL{Code: healthOptionCode, Data: append([]byte(nil), probeNonce()...)})
	return m
}

// isHealthProbe reports whether r is our own HealthProbe.
func isHealthProbe(r *dns.Msg) bool {
	o := soleOPT(r)
	if o == nil {
		return false
	}
	for _, opt := range o.Option {
		if l, ok := opt.(*dns.EDNS0_LOCAL); ok && l.Code == healthOptionCode {
			return bytes.Equal(l.Data, probeNonce())
		}
	}
	return false
}
