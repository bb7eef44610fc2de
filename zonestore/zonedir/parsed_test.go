package zonedir

import (
	"os"
	"path/filepath"
	"testing"

	"hybridns/zonestore"
)

// TestScanTellsBytesParsed: Parsed hears, once per scan, how much zone text
// the scan parsed (what a process needs to decide to return a big load's
// garbage to the OS), and nothing for a scan that parsed nothing.
func TestScanTellsBytesParsed(t *testing.T) {
	dir := t.TempDir()
	a := zoneText("a.example.", 1, "192.0.2.10")
	b := zoneText("b.example.", 1, "192.0.2.20")
	writeOld(t, filepath.Join(dir, "a.example.zone"), a)
	writeOld(t, filepath.Join(dir, "b.example.zone"), b)
	l := New(dir, zonestore.NewStore(), zonestore.DefaultView, nil)
	var got []int64
	l.Parsed = func(n int64) { got = append(got, n) }
	if err := l.Scan(); err != nil {
		t.Fatal(err)
	}
	if err := l.Scan(); err != nil { // nothing changed: nothing parsed
		t.Fatal(err)
	}
	// A changed file is parsed even when it fails.
	writeOld(t, filepath.Join(dir, "b.example.zone"), "garbage\n")
	if err := l.Scan(); err == nil {
		t.Fatal("a broken file loaded")
	}
	want := []int64{int64(len(a) + len(b)), int64(len("garbage\n"))}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Parsed got %v, want %v", got, want)
	}
}

// TestReadFileExactSize: the file is read whole whatever its size relative
// to the buffer sized from its stat, and the size limit still holds.
func TestReadFileExactSize(t *testing.T) {
	dir := t.TempDir()
	root := resolvedDir(dir)
	for _, size := range []int{0, 1, 511, 512, 513, 70_000} {
		path := filepath.Join(root, "x.zone")
		data := make([]byte, size)
		for i := range data {
			data[i] = byte('a' + i%26)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, _, err := readFile(root, path, 1<<20)
		if err != nil || string(got) != string(data) {
			t.Errorf("size %d: read %d bytes, err %v", size, len(got), err)
		}
		if _, _, err := readFile(root, path, int64(size)-1); size > 0 && err == nil {
			t.Errorf("size %d: read past a limit of %d", size, size-1)
		}
	}
}
