// Command zonegen writes a synthetic zone file of a given number of records
// (see internal/zonegen) for load-time and memory measurements.
//
//	go run ./test/bench/zonegen -origin scale.example. -records 1000000 -out DIR/scale.example.zone
package main

import (
	"flag"
	"fmt"
	"os"

	"hybridns/internal/zonegen"
)

func main() {
	origin := flag.String("origin", "scale.example.", "zone apex, fully qualified")
	records := flag.Int("records", 1_000_000, "number of records (at least 6)")
	out := flag.String("out", "", "zone file to write (required)")
	flag.Parse()
	if *out == "" || *records < 6 || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	f, err := os.Create(*out)
	if err == nil {
		err = zonegen.Write(f, *origin, *records)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "zonegen:", err)
		os.Exit(1)
	}
}
