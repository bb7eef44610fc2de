package zonestore

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"hybridns/zonestore/internal/zonegen"
)

// scaleRecords is the size of the zone BenchmarkParseZoneScale loads
// (ZONE_SCALE_RECORDS overrides it; the figure is a million).
func scaleRecords() int {
	if n, err := strconv.Atoi(os.Getenv("ZONE_SCALE_RECORDS")); err == nil && n >= 6 {
		return n
	}
	return 1_000_000
}

var scaleZone = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	if err := zonegen.Write(&b, "scale.example.", scaleRecords()); err != nil {
		panic(err)
	}
	return b.Bytes()
})

// BenchmarkParseZoneScale parses and builds a generated zone of a million
// records (see zonestore/internal/zonegen), the load-time figure of issue 13: in
// chunks on every CPU (as the daemon does) and in one pass.
func BenchmarkParseZoneScale(b *testing.B) {
	data := scaleZone()
	for _, bc := range []struct {
		name string
		t    parseTuning
	}{{"parallel", parseTuning{}}, {"one-pass", parseTuning{workers: 1}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				z, err := parseData(data, "scale.example.", "scale.example.zone", ParseOptions{}, bc.t)
				if err != nil {
					b.Fatal(err)
				}
				if z.Records() != scaleRecords() {
					b.Fatalf("%d records, want %d", z.Records(), scaleRecords())
				}
			}
		})
	}
}

// scaleText is a generated zone of n records for scale.example.
func scaleText(n int) string {
	var b strings.Builder
	if err := zonegen.Write(&b, "scale.example.", n); err != nil {
		panic(err)
	}
	return b.String()
}
