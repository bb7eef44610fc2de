package zonedir

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestExplicitZonesAndUnmatchedFiles: a zone listed with any file name is
// served (db.corp.example, BIND style); a listed zone wins over a
// <zone>.zone file of the same name; a file that is no zone is reported
// once, not silently ignored; an $INCLUDEd file is not.
func TestExplicitZonesAndUnmatchedFiles(t *testing.T) {
	dir := t.TempDir()
	writeOld(t, filepath.Join(dir, "db.corp.example"), zoneText("corp.example.", 1, "192.0.2.10"))
	writeOld(t, filepath.Join(dir, "corp.example.zone"), zoneText("corp.example.", 1, "192.0.2.99"))
	writeOld(t, filepath.Join(dir, "other.example.zone"), zoneText("other.example.", 1, "192.0.2.20")+"$INCLUDE extra.inc\n")
	writeOld(t, filepath.Join(dir, "extra.inc"), "more 60 IN A 192.0.2.21\n")
	writeOld(t, filepath.Join(dir, "db.forgotten.example"), zoneText("forgotten.example.", 1, "192.0.2.30"))
	writeOld(t, filepath.Join(dir, ".hidden"), "x")
	l, store, logs := newLoader(dir)
	l.SetZones([]Entry{{Origin: "corp.example", File: "db.corp.example"}})
	err := l.Scan()
	if got := answer(store, "www.corp.example."); got != "192.0.2.10" {
		t.Errorf("listed zone: %s, want the listed file's 192.0.2.10", got)
	}
	if err == nil || !strings.Contains(err.Error(), "corp.example.zone: zone corp.example. is already served from "+filepath.Join(dir, "db.corp.example")) {
		t.Errorf("the shadowed <zone>.zone file is not reported: %v", err)
	}
	if got := answer(store, "more.other.example."); got != "192.0.2.21" {
		t.Errorf("$INCLUDEd record: %s", got)
	}
	want := []string{filepath.Join(dir, "db.forgotten.example")}
	if got := l.Unmatched(); !slices.Equal(got, want) {
		t.Errorf("unmatched %v, want %v", got, want)
	}
	if n := strings.Count(logs.String(), "matches no zone"); n != 1 {
		t.Errorf("unmatched file logged %d times, want 1:\n%s", n, logs)
	}
	_ = l.Scan()
	if n := strings.Count(logs.String(), "matches no zone"); n != 1 {
		t.Errorf("unmatched file logged again on a rescan")
	}

	// Changing an included file reloads its zone.
	writeOld(t, filepath.Join(dir, "extra.inc"), "more 60 IN A 192.0.2.22\n")
	_ = l.Scan()
	if got := answer(store, "more.other.example."); got != "192.0.2.22" {
		t.Errorf("after the included file changed: %s", got)
	}

	// ParseEntries (hybridns check) agrees.
	zones, unmatched, err := ParseEntries(dir, []Entry{{Origin: "corp.example", File: "db.corp.example"}}, Options{})
	if len(zones) != 2 || !slices.Equal(unmatched, want) || err == nil {
		t.Errorf("ParseEntries: %d zones, unmatched %v, err %v", len(zones), unmatched, err)
	}
}

// TestIncludeStaysInside: $INCLUDE reads files inside the zone directory
// only: not ../, not an absolute path elsewhere, not a symlink out.
func TestIncludeStaysInside(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	os.WriteFile(secret, []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644)
	for name, inc := range map[string]string{
		"dotdot":   "",
		"absolute": "$INCLUDE " + secret + "\n",
		"symlink":  "$INCLUDE link\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.Symlink(secret, filepath.Join(dir, "link"))
			if inc == "" {
				rel, _ := filepath.Rel(dir, secret)
				inc = "$INCLUDE " + rel + "\n"
			}
			path := filepath.Join(dir, "x.example.zone")
			writeOld(t, path, zoneText("x.example.", 1, "192.0.2.1")+inc)
			l, store, _ := newLoader(dir)
			err := l.Scan()
			if err == nil || strings.Contains(err.Error(), "root:x") {
				t.Fatalf("include outside the directory: %v", err)
			}
			if !strings.Contains(err.Error(), "outside the zone directory") {
				t.Errorf("reason: %v", err)
			}
			if got := answer(store, "www.x.example."); got != "servfail" {
				t.Errorf("zone with a refused include answers %s, want servfail (claimed, never forwarded)", got)
			}
		})
	}
}
