package test

import (
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/test/refserver"
)

// TestNSIDConfig: `nsid: TEXT` and `nsid: hostname` are what dig +nsid
// shows, over UDP and TCP.
func TestNSIDConfig(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	host, _ := os.Hostname()
	for _, tc := range []struct{ cfg, want string }{{"nsid: dns-a.eu-west-1\n", "dns-a.eu-west-1"}, {"nsid: hostname\n", host}} {
		dir, zones := writeZoneDir(t)
		hyb, _ := opsInstance(t, bin, "lame_duck: 0s\nzone_dir: "+dir+"\n"+tc.cfg, zones)
		for _, netw := range []string{"udp", "tcp"} {
			m := new(dns.Msg)
			m.SetQuestion("www.e2e.test.", dns.TypeA)
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
			c := &dns.Client{Net: netw, Timeout: 2 * time.Second}
			r, _, err := c.Exchange(m, hyb.Addr)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			for _, o := range r.IsEdns0().Option {
				if n, ok := o.(*dns.EDNS0_NSID); ok {
					b, _ := hex.DecodeString(n.Nsid)
					got = string(b)
				}
			}
			if got != tc.want || len(r.Answer) != 1 {
				t.Errorf("%s %q: NSID %q, answers %d; want %q", netw, tc.cfg, got, len(r.Answer), tc.want)
			}
		}
	}
}
