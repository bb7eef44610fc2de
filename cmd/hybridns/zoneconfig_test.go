package main

import (
	"strings"
	"testing"
	"time"
)

// TestZoneFileKeys: the zone-file safety keys parse, reach the loader's
// options, and are range-checked.
func TestZoneFileKeys(t *testing.T) {
	dir := t.TempDir()
	c, err := parseConfig([]byte("listen: [\"127.0.0.1:5300\"]\nzone_dir: "+dir+"\nzone_max_bytes: 1048576\nzone_max_records: 5000\nzone_quiet: 2s\nzone_serial_must_increase: true\n"), "z.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	o := c.zoneOptions()
	if o.MaxBytes != 1<<20 || o.MaxRecords != 5000 || o.Quiet != 2*time.Second || !o.SerialMustIncrease {
		t.Fatalf("%+v", o)
	}
	c, err = parseConfig([]byte("listen: [\"127.0.0.1:5300\"]\nzone_max_bytes: -1\nzone_max_records: -5\nzone_quiet: -1s\n"), "z.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.validate()
	for _, key := range []string{"zone_max_bytes", "zone_max_records", "zone_quiet"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s out of range not reported: %v", key, err)
		}
	}
}
