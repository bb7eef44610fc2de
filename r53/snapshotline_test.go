package r53

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// lineCorpus is record sets of every kind as the snapshot writes them.
func lineCorpus(t testing.TB) [][]byte {
	t.Helper()
	weighted := rrset("w.example.", "A", 60, "192.0.2.1")
	weighted.SetIdentifier, weighted.Weight, weighted.HealthCheckId = aws.String("one"), aws.Int64(10), aws.String("hc-1")
	failover := rrset("f.example.", "A", 60, "192.0.2.2")
	failover.SetIdentifier, failover.Failover = aws.String("p"), types.ResourceRecordSetFailoverPrimary
	latency := rrset("l.example.", "AAAA", 60, "2001:db8::1")
	latency.SetIdentifier, latency.Region = aws.String("eu"), types.ResourceRecordSetRegionEuWest1
	multi := rrset("m.example.", "A", 60, "192.0.2.3", "192.0.2.4")
	multi.SetIdentifier, multi.MultiValueAnswer = aws.String("m1"), aws.Bool(true)
	alias := types.ResourceRecordSet{Name: aws.String("a.example."), Type: "A",
		AliasTarget: &types.AliasTarget{DNSName: aws.String("lb.amazonaws.com."), HostedZoneId: aws.String("Z1"), EvaluateTargetHealth: true}}
	geo := rrset("g.example.", "A", 60, "192.0.2.5")
	geo.SetIdentifier, geo.GeoLocation = aws.String("de"), &types.GeoLocation{CountryCode: aws.String("DE")}
	sets := []types.ResourceRecordSet{
		rrset("example.", "SOA", 900, "ns-1.awsdns-1.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"),
		rrset("example.", "TXT", 300, `"v=spf1 -all"`, `"two \"quoted\" words"`),
		rrset(`\052.example.`, "A", 300, "192.0.2.9"),
		rrset("ünïcode.example.", "TXT", 300, `"héllo"`),
		rrset("empty.example.", "A", 300),
		weighted, failover, latency, multi, alias, geo,
		{Name: aws.String("tp.example."), Type: "A", TrafficPolicyInstanceId: aws.String("tp-1")},
		{Name: aws.String("neg.example."), Type: "A", TTL: aws.Int64(-1), Weight: aws.Int64(0)},
	}
	var out [][]byte
	for _, rs := range sets {
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(rs); err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}
	out = append(out,
		[]byte(`{"Name":"x.example.","Type":"A","TTL":60,"ResourceRecords":[]}`),
		[]byte(` { "Name" : "x.example." , "ResourceRecords" : [ { } , {"Value":null} ] } `),
		[]byte(`{"name":"lower.example."}`),
		[]byte(`{"Name":"x.","TTL":1.5}`),
		[]byte(`{"Name":"x.","TTL":01}`),
		[]byte(`{"Name":"x.","TTL":99999999999999999999}`),
		[]byte(`{"Name":"x."} trailing`),
		[]byte(`{"Name":"x.","Name":"y."}`),
		[]byte(`{}`),
		[]byte(`{"Name":"bad\xffutf8."}`),
		[]byte(`{"Name":"x.","MultiValueAnswer":tru}`),
		// The constant runs after fields they reset, and before junk.
		[]byte(`{"Weight":3,"Failover":"PRIMARY","Region":"eu-west-1",`+string(plainMiddle)+`"TTL":1,`+string(plainEnd)),
		[]byte(`{"Name":"x.",`+string(plainEnd)+`,`),
		[]byte(`{"Name":"x.",`+string(plainMiddle)+`}`),
	)
	return out
}

// sameAsJSON checks that the direct path, where it takes a line, decodes
// it as encoding/json does, and that decodeSetLine always does.
func sameAsJSON(t *testing.T, line []byte) {
	var want types.ResourceRecordSet
	werr := json.Unmarshal(line, &want)
	var fast types.ResourceRecordSet
	if decodeSetFast(line, &fast, new(lineSlabs)) {
		if werr != nil {
			t.Fatalf("%s: direct path took a line encoding/json rejects (%v)", line, werr)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%s: direct path\n%#v\nencoding/json\n%#v", line, fast, want)
		}
	}
	var got types.ResourceRecordSet
	gerr := decodeSetLine(line, &got)
	if (gerr != nil) != (werr != nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: decodeSetLine %#v (%v), encoding/json %#v (%v)", line, got, gerr, want, werr)
	}
}

func TestDecodeSetLineMatchesJSON(t *testing.T) {
	fast := 0
	for _, line := range lineCorpus(t) {
		sameAsJSON(t, line)
		var rs types.ResourceRecordSet
		if decodeSetFast(line, &rs, new(lineSlabs)) {
			fast++
		}
	}
	// The runs the direct path skips whole must be what the encoder
	// writes for a plain set, or that speed-up is silently lost.
	plain := lineCorpus(t)[0]
	if !bytes.Contains(plain, plainMiddle) || !bytes.Contains(plain, plainEnd) {
		t.Errorf("a plain line %s lacks the runs %s / %s", plain, plainMiddle, plainEnd)
	}
	// Plain, weighted, failover, latency, multivalue, traffic-policy and
	// the hand-written plain lines take the direct path.
	if fast < 10 {
		t.Errorf("only %d lines took the direct path", fast)
	}
}

func FuzzDecodeSetLine(f *testing.F) {
	for _, line := range lineCorpus(f) {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.IndexByte(line, '\n') >= 0 {
			return // one line per record set
		}
		sameAsJSON(t, line)
	})
}

// TestReadSnapshotLargeFile: a snapshot of many chunks decodes in order,
// and an error names the record set's number.
func TestReadSnapshotLargeFile(t *testing.T) {
	dir := t.TempDir()
	var sets []types.ResourceRecordSet
	for i := range 20_000 {
		sets = append(sets, rrset(strings.Repeat("x", i%50)+".example.", "A", int64(i), "192.0.2.1"))
	}
	path := filepath.Join(dir, "Z1"+snapshotExt)
	writeSnapshotFile(t, path, snapshotMeta{ID: "Z1", Name: "example."}, sets)
	_, got, err := readSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sets) {
		t.Fatal("read back differs")
	}
	data, _ := os.ReadFile(path)
	lines := bytes.Split(data, []byte("\n"))
	lines[15_001] = []byte(`{"Name":`)
	if err := os.WriteFile(path, bytes.Join(lines, []byte("\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readSnapshot(path); err == nil || !strings.Contains(err.Error(), "record set 15001:") {
		t.Fatalf("err = %v, want it to name record set 15001", err)
	}
}

// BenchmarkDecodeSetLine: one plain record-set line, by encoding/json and
// by the direct path (with its blocks, as decodeLines uses it).
func BenchmarkDecodeSetLine(b *testing.B) {
	var buf bytes.Buffer
	json.NewEncoder(&buf).Encode(rrset("h12345.big.example.", "A", 300, "10.0.48.57"))
	line := bytes.TrimSpace(buf.Bytes())
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var rs types.ResourceRecordSet
			if err := json.Unmarshal(line, &rs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		var slabs lineSlabs
		for b.Loop() {
			var rs types.ResourceRecordSet
			if err := slabs.decode(line, &rs); err != nil {
				b.Fatal(err)
			}
		}
	})
}
