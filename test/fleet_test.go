package test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"hybridns/test/r53fake"
	"hybridns/test/refserver"
)

const fleetSecret = "ZmxlZXQta2V5LXNlY3JldC1mb3ItaHlicmlkbnMtZm9sbG93ZXJzLTAxMjM0NQ=="

// render is a reply as comparable text: rcode, AA, and the answer's records
// sorted (TTLs left out: they count down on a cache, not here, but the
// point is the data).
func render(r *dns.Msg) string {
	var rrs []string
	for _, rr := range r.Answer {
		s := rr.String()
		rrs = append(rrs, strings.ToLower(rr.Header().Name)+" "+dns.TypeToString[rr.Header().Rrtype]+" "+strings.TrimSpace(s[len(rr.Header().String()):]))
	}
	slices.Sort(rrs)
	return fmt.Sprintf("%s aa=%v %s", dns.RcodeToString[r.Rcode], r.Authoritative, strings.Join(rrs, " | "))
}

// TestFollowerFleet: one primary mirrors the Route 53 fake (a public and a
// private zone of one name in two views, weighted, failover with a health
// check, an alias); two followers consume its catalog with one key and
// follow it by NOTIFY + IXFR. For clients of each view the followers
// answer as the primary does (weighted by distribution), they make no
// Route 53 call, a change reaches them within a second or so of the
// primary's sync, a health flip travels too, and with the primary killed
// they keep answering.
func TestFollowerFleet(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETFAKE")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	f := r53fake.New()
	url := f.Start(t)
	pub := f.CreateZone("shop.example", false)
	priv := f.CreateZone("shop.example", true, r53fake.VPC{ID: "vpc-prod", Region: "us-east-1"})
	f.AddHealthCheck("hc-primary", true)
	weighted := func(rs types.ResourceRecordSet, id string, w int64) types.ResourceRecordSet {
		rs.SetIdentifier, rs.Weight = aws.String(id), aws.Int64(w)
		return rs
	}
	failover := func(rs types.ResourceRecordSet, id string, role types.ResourceRecordSetFailover, hc string) types.ResourceRecordSet {
		rs.SetIdentifier, rs.Failover = aws.String(id), role
		if hc != "" {
			rs.HealthCheckId = aws.String(hc)
		}
		return rs
	}
	seed(t, f, pub,
		r53set("www.shop.example", "A", 300, "198.51.100.10"),
		weighted(r53set("canary.shop.example", "A", 60, "198.51.100.21"), "stable", 3),
		weighted(r53set("canary.shop.example", "A", 60, "198.51.100.22"), "canary", 1),
		failover(r53set("fo.shop.example", "A", 60, "198.51.100.31"), "primary", types.ResourceRecordSetFailoverPrimary, "hc-primary"),
		failover(r53set("fo.shop.example", "A", 60, "198.51.100.32"), "secondary", types.ResourceRecordSetFailoverSecondary, ""),
		types.ResourceRecordSet{Name: aws.String("lb.shop.example"), Type: "A",
			AliasTarget: &types.AliasTarget{DNSName: aws.String("www.shop.example."), HostedZoneId: aws.String(pub)}},
		r53set("mail.shop.example", "MX", 300, "10 www.shop.example."),
	)
	seed(t, f, priv, r53set("www.shop.example", "A", 60, "10.0.0.10"), r53set("db.shop.example", "A", 60, "10.0.0.20"))

	dir := t.TempDir()
	primaryPort, err := refserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	primaryAddr := fmt.Sprintf("127.0.0.1:%d", primaryPort)
	views := `views:
  - name: prod
    clients: [127.0.0.2/32]
`
	// The followers first: the primary's NOTIFY targets must exist.
	var followers []*refserver.Server
	var followerHTTP []string
	for i := range 2 {
		fdir := filepath.Join(dir, fmt.Sprintf("f%d", i))
		os.MkdirAll(fdir, 0o755)
		hp, _ := refserver.FreePort()
		followerHTTP = append(followerHTTP, fmt.Sprintf("127.0.0.1:%d", hp))
		cfg := filepath.Join(fdir, "hybridns.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`
http_listen: %s
lame_duck: 0s
snapshot_dir: %s
%stsig_keys:
  - {name: fleet-key, algorithm: hmac-sha256, secret: "%s"}
follow:                                  # a follower of another hybridns
  primaries: ["%s"]
  key: fleet-key
  catalog: catalog.hybridns.
`, followerHTTP[i], filepath.Join(fdir, "snap"), views, fleetSecret, primaryAddr)), 0o644)
		fol := refserver.Start(t, "hybridns", 0, nil, func(_ string, port int) ([]string, error) {
			return []string{bin, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--config", cfg}, nil
		})
		followers = append(followers, fol)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("follower %d log:\n%s", i, fol.Log())
			}
		})
	}
	pcfg := filepath.Join(dir, "primary.yaml")
	hp, _ := refserver.FreePort()
	primaryHTTP := fmt.Sprintf("127.0.0.1:%d", hp)
	os.WriteFile(pcfg, []byte(fmt.Sprintf(`
http_listen: %s
lame_duck: 0s
snapshot_dir: %s
%s    vpcs: [vpc-prod]
tsig_keys:
  - {name: fleet-key, algorithm: hmac-sha256, secret: "%s"}
transfer:
  - {keys: [fleet-key], view: "*", notify: ["%s", "%s"]}
catalog:
  zone: catalog.hybridns.
route53:
  zones: [%s, %s]
  endpoint: %s
  interval: 1h
  health_interval: 1s
  rps: 50
  burst: 20
`, primaryHTTP, filepath.Join(dir, "psnap"), views, fleetSecret, followers[0].Addr, followers[1].Addr, pub, priv, url)), 0o644)
	primary := refserver.Start(t, "hybridns", primaryPort, []refserver.Zone{{Origin: "shop.example."}}, func(_ string, port int) ([]string, error) {
		return []string{bin, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--config", pcfg}, nil
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("primary log:\n%s", primary.Log())
		}
	})

	for i, fol := range followers {
		eventually(t, 15*time.Second, fmt.Sprintf("follower %d has both views' zones", i), func() bool {
			return firstA(askFrom(t, "127.0.0.1", fol.Addr, "www.shop.example.", dns.TypeA)) == "198.51.100.10" &&
				firstA(askFrom(t, "127.0.0.2", fol.Addr, "www.shop.example.", dns.TypeA)) == "10.0.0.10"
		})
		eventually(t, 5*time.Second, "follower ready", func() bool {
			code, _ := httpStatus(t, "GET", "http://"+followerHTTP[i]+"/readyz")
			return code == 200
		})
	}

	t.Run("same answers for clients of each view", func(t *testing.T) {
		for _, src := range []string{"127.0.0.1", "127.0.0.2"} {
			for _, q := range []struct {
				name  string
				qtype uint16
			}{{"www", dns.TypeA}, {"lb", dns.TypeA}, {"fo", dns.TypeA}, {"mail", dns.TypeMX}, {"db", dns.TypeA},
				{"nope", dns.TypeA}, {"www", dns.TypeAAAA}, {"", dns.TypeNS}} {
				name := strings.TrimPrefix(q.name+".shop.example.", ".")
				want := render(askFrom(t, src, primary.Addr, name, q.qtype))
				for i, fol := range followers {
					if got := render(askFrom(t, src, fol.Addr, name, q.qtype)); got != want {
						t.Errorf("%s %s from %s: follower %d says %q, primary %q", name, dns.TypeToString[q.qtype], src, i, got, want)
					}
				}
			}
		}
	})

	t.Run("weighted answers by distribution", func(t *testing.T) {
		const n = 4000
		for _, server := range append([]*refserver.Server{primary}, followers...) {
			canary := 0
			for range n {
				if firstA(askFrom(t, "127.0.0.1", server.Addr, "canary.shop.example.", dns.TypeA)) == "198.51.100.22" {
					canary++
				}
			}
			if got := float64(canary) / n; math.Abs(got-0.25) > 0.04 {
				t.Errorf("%s: weight 1 of 4 answered %.3f of the time", server.Addr, got)
			}
		}
	})

	t.Run("no Route 53 request from a follower", func(t *testing.T) {
		for i := range followers {
			_, metrics := httpStatus(t, "GET", "http://"+followerHTTP[i]+"/metrics")
			for _, line := range strings.Split(metrics, "\n") {
				if strings.HasPrefix(line, "hybridns_route53_requests_total{") && !strings.HasSuffix(line, " 0") {
					t.Errorf("follower %d made Route 53 requests: %s", i, line)
				}
			}
		}
		// Every request the fake saw is one the primary counted. The
		// primary keeps polling and counts a request when its answer is
		// back: the fake's count is taken first, and the primary's must
		// reach it.
		seen := len(f.Requests())
		var counted float64
		primaryCounted := func() bool {
			_, metrics := httpStatus(t, "GET", "http://"+primaryHTTP+"/metrics")
			counted = 0
			for _, line := range strings.Split(metrics, "\n") {
				if strings.HasPrefix(line, "hybridns_route53_requests_total{") {
					var v float64
					fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
					counted += v
				}
			}
			return counted >= float64(seen)
		}
		eventually(t, 5*time.Second, fmt.Sprintf("the primary counts the %d requests the fake saw", seen), primaryCounted)
		t.Logf("Route 53 requests for 1 primary + %d followers: %d (the primary's own: %.0f); %d independent mirrors would each make the primary's", len(followers), seen, counted, len(followers)+1)
	})

	t.Run("a change reaches the followers", func(t *testing.T) {
		seed(t, f, pub, r53set("www.shop.example", "A", 300, "198.51.100.11"))
		if code, body := httpStatus(t, "POST", "http://"+primaryHTTP+"/sync?zone="+pub); code != 200 {
			t.Fatalf("POST /sync: %d %s", code, body)
		}
		eventually(t, 10*time.Second, "the primary has it", func() bool {
			return firstA(askFrom(t, "127.0.0.1", primary.Addr, "www.shop.example.", dns.TypeA)) == "198.51.100.11"
		})
		swapped := time.Now()
		for i, fol := range followers {
			eventually(t, 5*time.Second, fmt.Sprintf("follower %d has it", i), func() bool {
				return firstA(askFrom(t, "127.0.0.1", fol.Addr, "www.shop.example.", dns.TypeA)) == "198.51.100.11"
			})
		}
		t.Logf("follower lag after the primary's swap: %v", time.Since(swapped).Round(time.Millisecond))
	})

	t.Run("health travels with the data", func(t *testing.T) {
		f.SetHealth("hc-primary", false)
		eventually(t, 10*time.Second, "the primary fails over", func() bool {
			return firstA(askFrom(t, "127.0.0.1", primary.Addr, "fo.shop.example.", dns.TypeA)) == "198.51.100.32"
		})
		for i, fol := range followers {
			eventually(t, 5*time.Second, fmt.Sprintf("follower %d fails over", i), func() bool {
				return firstA(askFrom(t, "127.0.0.1", fol.Addr, "fo.shop.example.", dns.TypeA)) == "198.51.100.32"
			})
		}
	})

	t.Run("primary killed, followers keep answering", func(t *testing.T) {
		primary.Signal(syscall.SIGKILL)
		primary.Wait(5 * time.Second)
		for i, fol := range followers {
			if got := firstA(askFrom(t, "127.0.0.2", fol.Addr, "db.shop.example.", dns.TypeA)); got != "10.0.0.20" {
				t.Errorf("follower %d without its primary: %s", i, got)
			}
			if code, _ := httpStatus(t, "GET", "http://"+followerHTTP[i]+"/readyz"); code != 200 {
				t.Errorf("follower %d not ready without its primary: %d", i, code)
			}
		}
	})
}
