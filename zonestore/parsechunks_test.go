package zonestore

import (
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"testing/iotest"
)

const soaLines = "@ 300 IN SOA ns1 hostmaster ( 1 3600 600\n  86400 300 )\n@ IN NS ns1\nns1 IN A 192.0.2.53\n"

// parallelCases are zone files with what can go wrong when a file is cut
// into chunks. parallel says whether the chunker must cut it (else it must
// leave it to the one-pass parse).
var parallelCases = []struct {
	name, text string
	parallel   bool
}{
	{"plain", "$TTL 300\n" + soaLines + "a A 192.0.2.1\nb A 192.0.2.2\nc AAAA 2001:db8::1\n", true},
	{"parentheses spanning lines, owner-like continuation lines",
		"$TTL 300\n" + soaLines + "txt IN TXT (\n\"part1\"\npart2 )\nmx MX (\n10\nmail )\nafter A 192.0.2.1\n", true},
	{"blank owners", "$TTL 300\n" + soaLines + "www A 192.0.2.1\n     AAAA 2001:db8::1\n\tTXT \"x\"\nnext A 192.0.2.2\n  A 192.0.2.3\n", true},
	{"origin and ttl change mid-file, relative names and @",
		"$ORIGIN corp.example.\n$TTL 300\n" + soaLines + "a A 192.0.2.1\n$ORIGIN sub.corp.example.\n@ A 192.0.2.2\nb A 192.0.2.3\n$TTL 60\nc A 192.0.2.4\n$ORIGIN deeper\n@ TXT \"d\"\ne CNAME @\nf.corp.example. 90 A 192.0.2.5\ng A 192.0.2.6\n", true},
	{"lower-case directives, comments after them", "$ttl 120 ; two minutes\n" + soaLines + "$origin sub ; relative\nx A 192.0.2.1\n", true},
	{"comments with parentheses and quotes",
		"$TTL 300\n" + soaLines + "a A 192.0.2.1 ; comment ( with \" quote\nb A 192.0.2.2 ; ) closing\nc TXT \"semi;colon\" ; real ( comment\nd TXT ( \"x\" ; comment ) inside parens\n e )\nf A 192.0.2.3\n", true},
	{"escaped characters",
		"$TTL 300\n" + soaLines + "a\\;b TXT \"x\\\"y ( \"\nesc\\(x A 192.0.2.1\nc TXT \"a\\\\\" \"(\"\nd TXT x\\\"y\ne TXT \\(\nf A 192.0.2.2\n", true},
	{"$ORIGIN @, a directive last without newline", "$TTL 300\n" + soaLines + "$ORIGIN @\nx A 192.0.2.1\n$TTL 60", true},
	{"quoted string across lines", "$TTL 300\n" + soaLines + "t TXT \"line1\nline2 A 1\"\nu A 192.0.2.1\n", true},
	{"CRLF", strings.ReplaceAll("$ORIGIN corp.example.\n$TTL 300 ; c\n"+soaLines+"a A 192.0.2.1\nb TXT ( \"x\"\n\"y\" )\nc A 192.0.2.2\n$ORIGIN sub\nd A 192.0.2.3\n", "\n", "\r\n"), true},
	{"no $TTL: default from the last explicit TTL",
		soaLines + "a 60 A 192.0.2.1\nb A 192.0.2.2\nc 90 A 192.0.2.3\n d A 192.0.2.4\ne A 192.0.2.5\n", true},
	{"no $TTL: sentinel-looking TTL", soaLines + "a 2125315823 A 192.0.2.1\nb A 192.0.2.2\n", true},
	{"no $TTL: explicit TTL 0 then inherited", soaLines + "a 0 A 192.0.2.1\nb A 192.0.2.2\nc A 192.0.2.3\n", true},
	{"no TTL anywhere", "@ IN SOA ns1 hm 1 2 3 4 5\n@ NS ns1\n", true},
	{"blank owner with no TTL before any", "@ IN SOA ns1 hm 1 2 3 4 5\nb IN A 192.0.2.1\n A 192.0.2.2\n", true},
	{"first TTL of an RRset wins across chunks, duplicates",
		"$TTL 300\n" + soaLines + "a 60 A 192.0.2.1\na 120 A 192.0.2.2\na 30 A 192.0.2.1\nb A 192.0.2.9\n", true},
	{"wildcards and underscores", "$TTL 300\n" + soaLines + "*.w A 192.0.2.1\n_sip._tcp SRV 0 5 5060 sip\n-dash A 192.0.2.2\n", true},
	{"syntax error in a later chunk", "$TTL 300\n" + soaLines + "a A 192.0.2.1\nb A 999.0.2.1\nc A 192.0.2.3\n", true},
	{"syntax error at a chunk start", "$TTL 300\n" + soaLines + "a A 192.0.2.1\nbad BOGUSTYPE x\nc A 192.0.2.3\n", true},
	{"record outside the zone in a later chunk", "$TTL 300\n" + soaLines + "a A 192.0.2.1\nhost.other.example. A 192.0.2.1\nc A 192.0.2.3\n", true},
	{"zone-rule errors", "$TTL 300\n" + soaLines + "www A 192.0.2.80\nwww CNAME web\nmail CNAME a\nmail CNAME b\nsub SOA ns1 hm 1 2 3 4 5\n", true},
	{"no SOA", "$TTL 300\n@ NS ns1\nns1 A 192.0.2.1\n", true},
	{"extra closing parenthesis", "$TTL 300\n" + soaLines + "a A 192.0.2.1 )\nb A 192.0.2.2\n", false},
	{"unbalanced parenthesis", "$TTL 300\n" + soaLines + "a TXT ( \"x\"\nb A 192.0.2.2\n", false},
	{"unterminated quote", "$TTL 300\n" + soaLines + "a TXT \"x\nb A 192.0.2.2\n", false},
	{"$GENERATE", "$TTL 300\n" + soaLines + "$GENERATE 1-3 h$ A 192.0.2.$\nz A 192.0.2.9\n", false},
	{"$INCLUDE", "$TTL 300\n" + soaLines + "$INCLUDE inc.zone\nz A 192.0.2.9\n", false},
	{"directive with a quote", "$TTL 300\n" + soaLines + "$ORIGIN \"x\"\nz A 192.0.2.9\n", false},
	{"bad $ORIGIN", "$TTL 300\n" + soaLines + "$ORIGIN a..b\nz A 192.0.2.9\n", false},
	{"bad $TTL", "$TTL 300\n" + soaLines + "a A 192.0.2.1\n$TTL forever\nz A 192.0.2.9\n", true},
	{"directive without value", "$TTL 300\n" + soaLines + "$TTL\nz A 192.0.2.9\n", false},
}

// outcome is what a parse gives, in comparable form: the zone as text
// (names, TTLs, rdata) or the error text (Build reports zone-rule errors
// in map order: sorted here).
func outcome(z *Zone, err error) string {
	if err != nil {
		lines := strings.Split(err.Error(), "\n")
		slices.Sort(lines)
		return "error: " + strings.Join(lines, "\n")
	}
	var lines []string
	for _, rr := range z.RRs() {
		lines = append(lines, rr.String())
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

var includeFS = fstest.MapFS{"inc.zone": {Data: []byte("i A 192.0.2.7\n")}}

// TestParallelParseIsOnePass: cut into chunks at every possible line and
// parsed on several goroutines, every file gives exactly what the one-pass
// parse gives: the same records and TTLs, or the same errors with the same
// line numbers.
func TestParallelParseIsOnePass(t *testing.T) {
	for _, tc := range parallelCases {
		for _, o := range []ParseOptions{{}, {MaxRecords: 5}, {Include: includeFS}} {
			want := outcome(parseExact([]byte(tc.text), "corp.example.", "db.corp", o))
			for _, size := range []int{1, 7, 40} {
				tune := parseTuning{chunk: size, workers: 3, minSize: 1}
				chunks := planChunks([]byte(tc.text), "corp.example.", tune)
				if size == 1 && (len(chunks) > 1) != tc.parallel {
					t.Errorf("%s: %d chunks; want parallel=%v", tc.name, len(chunks), tc.parallel)
				}
				got := outcome(parseData([]byte(tc.text), "corp.example.", "db.corp", o, tune))
				if got != want {
					t.Errorf("%s (chunk %d, %+v):\ngot:\n%s\nwant:\n%s", tc.name, size, o, got, want)
				}
			}
		}
	}
}

// TestParallelParseChunkStarts: chunks start only at lines with an owner
// name outside parentheses, quotes and comments, carry the $ORIGIN and $TTL
// in effect there, and cover the file exactly.
func TestParallelParseChunkStarts(t *testing.T) {
	text := "$ORIGIN corp.example.\n$TTL 300\n@ SOA ns1 hm (\n1 2 3\n4 5 )\n  NS ns1\nt TXT \"a\nb\"\n; c\nx A 192.0.2.1\n$ORIGIN sub\n$TTL 60 ; m\ny A 192.0.2.2\n"
	chunks := planChunks([]byte(text), "corp.example.", parseTuning{chunk: 1, workers: 2, minSize: 1})
	type start struct{ line, origin, ttl string }
	var got []start
	end := 0
	for _, c := range chunks {
		if c.start != end {
			t.Errorf("chunk starts at %d, previous ended at %d", c.start, end)
		}
		end = c.end
		line, _, _ := strings.Cut(text[c.start:], "\n")
		got = append(got, start{line, c.origin, c.ttlLine})
	}
	if end != len(text) {
		t.Errorf("chunks end at %d of %d", end, len(text))
	}
	want := []start{
		{"$ORIGIN corp.example.", "corp.example.", ""},
		{"@ SOA ns1 hm (", "corp.example.", "$TTL 300"},
		{"t TXT \"a", "corp.example.", "$TTL 300"},
		{"x A 192.0.2.1", "corp.example.", "$TTL 300"},
		{"y A 192.0.2.2", "sub.corp.example.", "$TTL 60 ; m"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("chunks:\n%q\nwant:\n%q", got, want)
	}
}

// TestParallelParseLargeFile: a generated file big enough for the default
// chunking parses into the same zone as the one-pass parse, and more
// records than allowed fail the same way.
func TestParallelParseLargeFile(t *testing.T) {
	data := []byte(scaleText(60_000))
	if n := len(planChunks(data, "scale.example.", parseTuning{workers: 2, minSize: 1})); n < 2 {
		t.Fatalf("%d chunks of %d bytes", n, len(data))
	}
	tune := parseTuning{workers: 2, minSize: 1}
	// Every chunk parses on its own: no fallback to the one-pass parse.
	if !feedParallel(NewBuilder("scale.example."), data, planChunks(data, "scale.example.", tune), "scale.zone", 0, tune) {
		t.Fatal("the chunked parse gave up")
	}
	z, err := parseData(data, "scale.example.", "scale.zone", ParseOptions{}, tune)
	if err != nil {
		t.Fatal(err)
	}
	if z.Records() != 60_000 {
		t.Errorf("%d records", z.Records())
	}
	if got, want := outcome(z, nil), outcome(parseExact(data, "scale.example.", "scale.zone", ParseOptions{})); got != want {
		t.Error("parallel and one-pass zones differ")
	}
	_, err = parseData(data, "scale.example.", "scale.zone", ParseOptions{MaxRecords: 59_999}, tune)
	if !errors.Is(err, ErrTooManyRecords) || err.Error() != "scale.zone: too many records: more than 59999" {
		t.Errorf("over the limit: %v", err)
	}
}

// FuzzParallelParse: for any text, the chunked parse and the one-pass parse
// agree.
func FuzzParallelParse(f *testing.F) {
	for _, tc := range parallelCases {
		f.Add(tc.text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		want := outcome(parseExact([]byte(text), "corp.example.", "db.corp", ParseOptions{}))
		got := outcome(parseData([]byte(text), "corp.example.", "db.corp", ParseOptions{}, parseTuning{chunk: 1, workers: 2, minSize: 1}))
		if got != want {
			t.Errorf("got:\n%s\nwant:\n%s", got, want)
		}
	})
}

// TestParseZoneWithReaders: whatever the reader (one that knows its length,
// a file, one that does not), ParseZoneWith reads it whole; a read error
// names the file.
func TestParseZoneWithReaders(t *testing.T) {
	text := "$TTL 300\n" + soaLines + "a A 192.0.2.1\n"
	want := outcome(parseExact([]byte(text), "corp.example.", "db.corp", ParseOptions{}))
	path := t.TempDir() + "/db.corp"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, r := range map[string]io.Reader{
		"strings": strings.NewReader(text),
		"file":    f,
		"unsized": iotest.OneByteReader(strings.NewReader(text)),
	} {
		if got := outcome(ParseZoneWith(r, "corp.example.", "db.corp", ParseOptions{})); got != want {
			t.Errorf("%s: got\n%s\nwant\n%s", name, got, want)
		}
	}
	boom := errors.New("boom")
	_, err = ParseZoneWith(iotest.ErrReader(boom), "corp.example.", "db.corp", ParseOptions{})
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "db.corp: ") {
		t.Errorf("read error: %v", err)
	}
}
