package zonestore

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"testing"

	"hybridns/internal/zonegen"
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
// records (see internal/zonegen), the load-time figure of issue 13.
func BenchmarkParseZoneScale(b *testing.B) {
	data := scaleZone()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		z, err := ParseZoneLimit(bytes.NewReader(data), "scale.example.", "scale.example.zone", 0)
		if err != nil {
			b.Fatal(err)
		}
		if z.Records() != scaleRecords() {
			b.Fatalf("%d records, want %d", z.Records(), scaleRecords())
		}
	}
}
