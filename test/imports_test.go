package test

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportRules guards the package layout of ARCHITECTURE.md: zonestore
// knows nothing of AWS or the network, forwarder knows nothing of zones,
// server reaches the forwarder and Route 53 only through interfaces.
func TestImportRules(t *testing.T) {
	root := repoRoot(t)
	rules := []struct {
		pkg   string
		allow []string // import path prefixes besides the standard library
	}{
		{"zonestore", []string{"github.com/miekg/dns"}},
		{"zonestore/zonedir", []string{"github.com/miekg/dns", "github.com/fsnotify/fsnotify", "hybridns/zonestore"}},
		{"forwarder", []string{"github.com/miekg/dns", "github.com/hashicorp/golang-lru/v2", "golang.org/x/sync", "golang.org/x/time"}},
		{"server", []string{"github.com/miekg/dns", "hybridns/zonestore", "golang.org/x/net", "golang.org/x/sys", "github.com/prometheus/", "github.com/pires/go-proxyproto", "golang.org/x/time"}},
		{"server/api", []string{"github.com/miekg/dns", "hybridns/zonestore", "hybridns/server"}},
		{"zonestore/reverse", []string{"github.com/miekg/dns", "hybridns/zonestore"}},
		{"r53", []string{"github.com/miekg/dns", "hybridns/zonestore", "github.com/aws/", "golang.org/x/time", "golang.org/x/sync"}},
	}
	for _, r := range rules {
		dir := filepath.Join(root, r.pkg)
		p, err := build.ImportDir(dir, 0)
		if err != nil {
			// A missing or empty package is a failure, not a skip: the
			// rule would otherwise pass by checking nothing.
			t.Errorf("%s: cannot check its imports: %v", r.pkg, err)
			continue
		}
		if len(p.GoFiles) == 0 {
			t.Errorf("%s: no Go files to check", r.pkg)
			continue
		}
	imports:
		for _, imp := range p.Imports {
			if !strings.Contains(strings.Split(imp, "/")[0], ".") && !strings.HasPrefix(imp, "hybridns") {
				continue // standard library
			}
			for _, a := range r.allow {
				if strings.HasPrefix(imp, a) {
					continue imports
				}
			}
			t.Errorf("%s imports %s, which the layout forbids", r.pkg, imp)
		}
	}
}
