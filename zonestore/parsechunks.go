package zonestore

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Parallel parsing of one zone file.
//
// miekg's ZoneParser carries this from one line to the next: the $ORIGIN,
// the default TTL (set by $TTL, or else by the last record that gave a TTL
// explicitly), the previous owner (for lines that start with a blank), and
// the lexer's position inside parentheses, quotes and comments. A chunk
// that starts at a line beginning with an owner name, outside parentheses,
// quotes and comments, needs only the first two; planChunks finds such
// lines by mirroring the lexer's rules for \, ", ;, ( and ) and tracks the
// $ORIGIN and $TTL directives. Whatever it cannot follow ($INCLUDE,
// $GENERATE, a directive with quotes or escapes, unbalanced parentheses)
// leaves the file to the one-pass parse.
//
// The default TTL set by a record (files without $TTL) is only known once
// the chunks before are parsed. Such a chunk is parsed with a sentinel
// default; if any of its records carries the sentinel it is parsed again,
// in order, with the real default, which the last record of the previous
// chunk gives (its TTL is the default the parser holds after it).

// Defaults of parseTuning.
const (
	defaultChunkSize   = 1 << 20
	defaultMinParallel = 4 << 20
)

// ttlSentinel is the default TTL a chunk is parsed with when the default
// depends on the records before it. A record that really has this TTL only
// costs its chunk a second parse.
const ttlSentinel = 0x7ead_beef

// chunk is data[start:end], a run of whole lines that starts with an owner
// name, with the parser state in effect at start.
type chunk struct {
	start, end int
	origin     string // absolute
	ttlLine    string // the last $TTL directive line before start, or ""
}

// withDefaults fills in what t leaves zero.
func (t parseTuning) withDefaults() parseTuning {
	if t.workers <= 0 {
		t.workers = runtime.GOMAXPROCS(0)
	}
	if t.chunk <= 0 {
		t.chunk = defaultChunkSize
	}
	if t.minSize <= 0 {
		t.minSize = defaultMinParallel
	}
	return t
}

// planChunks cuts data into chunks of about t.chunk bytes for parsing in
// parallel, or returns nil when the file is small, there is one CPU, or
// the file does things the chunker does not follow.
func planChunks(data []byte, origin string, t parseTuning) []chunk {
	t = t.withDefaults()
	workers, size, minSize := t.workers, t.chunk, t.minSize
	if workers < 2 || len(data) < minSize {
		return nil
	}
	var chunks []chunk
	cur := chunk{origin: origin}
	ttlLine := ""
	quote, commt, escape := false, false, false
	brace := 0
	lineStart := true
	for i := 0; i < len(data); i++ {
		c := data[i]
		if lineStart {
			lineStart = false
			switch {
			case c == '$':
				eol := bytes.IndexByte(data[i:], '\n')
				if eol < 0 {
					eol = len(data)
				} else {
					eol += i
				}
				word, value, ok := plainDirective(data[i:eol])
				if !ok {
					return nil
				}
				switch word {
				case "$TTL":
					ttlLine = string(data[i:eol])
				case "$ORIGIN":
					if origin, ok = absoluteName(value, origin); !ok {
						return nil
					}
				default: // $INCLUDE, $GENERATE
					return nil
				}
				// No quote, parenthesis or escape on the line: only its
				// newline matters.
				i = eol - 1
				continue
			case isOwnerStart(c) && i-cur.start >= size:
				cur.end = i
				chunks = append(chunks, cur)
				cur = chunk{start: i, origin: origin, ttlLine: ttlLine}
			}
		}
		if commt {
			if c == '\n' {
				commt = false
				lineStart = brace == 0
			}
			continue
		}
		switch c {
		case '\\':
			escape = !escape
			continue
		case '"':
			if !escape {
				quote = !quote
			}
		case ';':
			if !escape && !quote {
				commt = true
			}
		case '(', ')':
			if escape || quote {
				break
			}
			if c == '(' {
				brace++
			} else if brace--; brace < 0 {
				return nil
			}
		case '\n':
			lineStart = !quote && brace == 0
		}
		escape = false
	}
	if quote || brace != 0 {
		return nil
	}
	cur.end = len(data)
	return append(chunks, cur)
}

// isOwnerStart reports whether a line starting with c starts with an owner
// name the chunker may cut before.
func isOwnerStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '*' || c == '@' || c == '_' || c == '-'
}

// plainDirective splits a directive line "$WORD value [; comment]" that has
// nothing the lexer treats specially besides the comment; ok is false for
// anything else (the line is left to the one-pass parse).
func plainDirective(line []byte) (word, value string, ok bool) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if k := bytes.IndexByte(line, ';'); k >= 0 {
		line = line[:k]
	}
	for _, c := range line {
		if (c < 0x21 || c > 0x7e) && c != ' ' && c != '\t' || c == '"' || c == '(' || c == ')' || c == '\\' {
			return "", "", false
		}
	}
	f := strings.FieldsFunc(string(line), func(r rune) bool { return r == ' ' || r == '\t' })
	if len(f) != 2 || line[len(f[0])] != ' ' && line[len(f[0])] != '\t' {
		return "", "", false
	}
	return strings.ToUpper(f[0]), f[1], true
}

// absoluteName is miekg's toAbsoluteName, which $ORIGIN applies.
func absoluteName(name, origin string) (string, bool) {
	if name == "@" {
		return origin, origin != ""
	}
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return "", false
	}
	if dns.IsFqdn(name) {
		return name, true
	}
	if origin == "" {
		return "", false
	}
	if origin == "." {
		return name + origin, true
	}
	return name + "." + origin, true
}

type chunkResult struct {
	rrs []dns.RR
	err error
}

// errChunkEnd fails a chunk whose last record was read up to the end of
// the chunk: a record without rdata, or rdata short of fields that miekg
// takes from the next line. Where the chunk ends the one-pass parse sees
// the next chunk's first line, not the end of the input, so it may read
// that record otherwise.
var errChunkEnd = errors.New("record read up to the end of a chunk")

// parseChunk parses one chunk. def is the default TTL it starts with when
// no $TTL precedes it (nil: none, the state at the top of a file); last
// says it ends the file.
func parseChunk(data []byte, c chunk, file string, def *uint32, last bool) chunkResult {
	r := &prefixReader{data: data[c.start:c.end]}
	if c.ttlLine != "" {
		r.pre = c.ttlLine + "\n"
	}
	zp := dns.NewZoneParser(r, c.origin, file)
	if c.ttlLine == "" && def != nil {
		zp.SetDefaultTTL(*def)
	}
	rrs := make([]dns.RR, 0, (c.end-c.start)/40+1)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if r.eof && !last {
			return chunkResult{err: errChunkEnd}
		}
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return chunkResult{err: err}
	}
	return chunkResult{rrs: rrs}
}

// feedParallel parses chunks on t.workers goroutines (a few chunks ahead
// of the builder, so memory stays bounded) and adds their records to b in
// file order. It reports false at the first problem of any kind, as
// feedSequential does.
func feedParallel(b *Builder, data []byte, chunks []chunk, file string, maxRecords int, t parseTuning) bool {
	workers := t.withDefaults().workers
	results := make([]chan chunkResult, len(chunks))
	for i := range results {
		results[i] = make(chan chunkResult, 1)
	}
	ahead := make(chan struct{}, 2*workers)
	done := make(chan struct{})
	var next atomic.Int64
	var wg sync.WaitGroup
	defer func() {
		close(done)
		wg.Wait()
	}()
	sentinel := uint32(ttlSentinel)
	for range workers {
		wg.Go(func() {
			for {
				select {
				case ahead <- struct{}{}:
				case <-done:
					return
				}
				select {
				case <-done: // select picks at random when both are ready
					return
				default:
				}
				i := int(next.Add(1) - 1)
				if i >= len(chunks) {
					return
				}
				var def *uint32
				if i > 0 {
					def = &sentinel
				}
				results[i] <- parseChunk(data, chunks[i], file, def, i == len(chunks)-1)
			}
		})
	}
	// def is the default TTL the parser would hold at the start of the
	// next chunk if no $TTL came before it; defKnown is false when the
	// records do not tell (a last record with TTL 0 may have had none).
	var def *uint32
	defKnown := true
	n := 0
	for i, c := range chunks {
		res := <-results[i]
		results[i] = nil
		<-ahead
		if res.err == nil && i > 0 && c.ttlLine == "" && hasTTL(res.rrs, sentinel) {
			if !defKnown || def == nil {
				return false
			}
			res = parseChunk(data, c, file, def, i == len(chunks)-1)
		}
		if res.err != nil {
			return false
		}
		if k := len(res.rrs); k > 0 {
			ttl := res.rrs[k-1].Header().Ttl
			def, defKnown = &ttl, ttl != 0
		}
		for j, rr := range res.rrs {
			if n++; maxRecords > 0 && n > maxRecords {
				return false
			}
			// The record is ours to hand over: no copy.
			if b.AddOwned(rr) != nil {
				return false
			}
			res.rrs[j] = nil // garbage now, not held until the chunk ends
		}
	}
	return true
}

func hasTTL(rrs []dns.RR, ttl uint32) bool {
	for _, rr := range rrs {
		if rr.Header().Ttl == ttl {
			return true
		}
	}
	return false
}

// prefixReader reads pre, then data: a chunk with the directive that is in
// effect at its start put in front.
type prefixReader struct {
	pre  string
	data []byte
	i    int  // offset into pre, then len(pre) + offset into data
	eof  bool // a read found the end
}

func (r *prefixReader) ReadByte() (byte, error) {
	switch i := r.i; {
	case i < len(r.pre):
		r.i++
		return r.pre[i], nil
	case i-len(r.pre) < len(r.data):
		r.i++
		return r.data[i-len(r.pre)], nil
	}
	r.eof = true
	return 0, io.EOF
}

func (r *prefixReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c, err := r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		p[n] = c
		n++
	}
	return n, nil
}
