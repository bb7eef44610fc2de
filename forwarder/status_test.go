package forwarder

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"hybridns/forwarder/fwdtest"
)

// TestFlushTree: Flush(name) drops the name and everything below it and
// nothing else (rndc flushtree); Flush("") drops everything.
func TestFlushTree(t *testing.T) {
	up, n := fwdtest.Upstream(t, aHandler("192.0.2.1", 300))
	f, err := New(Config{Rules: []Rule{{Suffix: ".", Upstreams: []string{up}}, {Suffix: "corp.example.", Upstreams: []string{up}, Policy: PolicySequential}}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ask := func(name string) {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		if _, err := f.Resolve(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"corp.example.", "a.corp.example.", "b.a.corp.example.", "notcorp.example.", "www.example.org."}
	for _, name := range names {
		ask(name)
	}
	if n.Load() != 5 {
		t.Fatalf("upstream queries %d, want 5", n.Load())
	}
	if got := f.Flush("Corp.Example"); got != 3 {
		t.Errorf("Flush(corp.example) dropped %d entries, want 3", got)
	}
	for _, name := range names {
		ask(name)
	}
	if n.Load() != 8 {
		t.Errorf("upstream queries %d after the flush, want 8 (the three flushed names asked again)", n.Load())
	}
	if got := f.Flush(""); got != 5 {
		t.Errorf("Flush(all) dropped %d, want 5", got)
	}
	if st := f.Stats(); st.CacheSize != 0 || st.CacheBytes != 0 {
		t.Errorf("after flushing all: %d entries, %d bytes", st.CacheSize, st.CacheBytes)
	}
	rules := f.Rules()
	if len(rules) != 2 || rules[0].Suffix != "corp.example." || rules[0].Policy != PolicySequential || rules[1].Suffix != "." ||
		len(rules[1].Upstreams) != 1 || rules[1].Upstreams[0].Addr != up || !rules[1].Upstreams[0].Up || rules[1].Upstreams[0].Answers == 0 {
		t.Errorf("Rules() = %+v", rules)
	}
}
