package server

import (
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// UpdateRule is one BIND update-policy rule:
//
//	(grant|deny) IDENTITY RULETYPE [NAME] [TYPES…]
//
// RULETYPE is name, subdomain, zonesub (no NAME), wildcard, self, selfsub
// or selfwild. IDENTITY is the TSIG key name that signed the update ("*"
// or "*.example." match several keys). Without TYPES a rule covers every
// type but RRSIG, NS, SOA, NSEC and NSEC3; ANY covers every type but NSEC
// and NSEC3. Rules are tried in order and the first match decides.
type UpdateRule struct {
	Grant    bool
	Identity string // canonical; "*." for any
	Kind     string
	Name     string // canonical; empty for zonesub
	Types    []uint16
	Any      bool // TYPES included ANY
	text     string
}

func (r UpdateRule) String() string { return r.text }

// ParseUpdateRule reads one rule in BIND's syntax (a trailing ';' is
// allowed, so rules can be pasted from named.conf).
func ParseUpdateRule(text string) (UpdateRule, error) {
	f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(text), ";"))
	r := UpdateRule{text: strings.Join(f, " ")}
	if len(f) < 3 {
		return r, fmt.Errorf("update-policy rule %q: want (grant|deny) IDENTITY RULETYPE [NAME] [TYPES…]", text)
	}
	switch strings.ToLower(f[0]) {
	case "grant":
		r.Grant = true
	case "deny":
	default:
		return r, fmt.Errorf("update-policy rule %q: starts with %q, want grant or deny", text, f[0])
	}
	r.Identity = dns.CanonicalName(f[1])
	r.Kind = strings.ToLower(f[2])
	rest := f[3:]
	switch r.Kind {
	case "zonesub":
	case "name", "subdomain", "wildcard", "self", "selfsub", "selfwild":
		if len(rest) == 0 {
			return r, fmt.Errorf("update-policy rule %q: %s needs a NAME", text, r.Kind)
		}
		if _, ok := dns.IsDomainName(rest[0]); !ok {
			return r, fmt.Errorf("update-policy rule %q: %q is not a name", text, rest[0])
		}
		r.Name = dns.CanonicalName(rest[0])
		rest = rest[1:]
		if r.Kind == "wildcard" && !strings.HasPrefix(r.Name, "*.") {
			return r, fmt.Errorf("update-policy rule %q: wildcard needs a name starting with *.", text)
		}
	default:
		return r, fmt.Errorf("update-policy rule %q: rule type %q is not supported (name, subdomain, zonesub, wildcard, self, selfsub, selfwild)", text, f[2])
	}
	for _, ts := range rest {
		if strings.EqualFold(ts, "ANY") {
			r.Any = true
			continue
		}
		t, ok := dns.StringToType[strings.ToUpper(ts)]
		if !ok {
			return r, fmt.Errorf("update-policy rule %q: unknown type %q", text, ts)
		}
		r.Types = append(r.Types, t)
	}
	return r, nil
}

// ParseUpdatePolicy reads a zone's rules, reporting every bad one.
func ParseUpdatePolicy(lines []string) ([]UpdateRule, []error) {
	var rules []UpdateRule
	var errs []error
	for _, l := range lines {
		r, err := ParseUpdateRule(l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules = append(rules, r)
	}
	return rules, errs
}

// allowUpdate decides whether signer may change (name, t) in zone: the
// first matching rule wins; no match is a denial. An unsigned update has
// no identity and matches nothing.
func allowUpdate(rules []UpdateRule, zone, signer, name string, t uint16) bool {
	if signer == "" {
		return false
	}
	for _, r := range rules {
		if r.matches(zone, signer, name, t) {
			return r.Grant
		}
	}
	return false
}

func (r UpdateRule) matches(zone, signer, name string, t uint16) bool {
	if !identityMatches(r.Identity, signer) {
		return false
	}
	switch r.Kind {
	case "name":
		if name != r.Name {
			return false
		}
	case "subdomain":
		if !isSubdomain(name, r.Name) {
			return false
		}
	case "zonesub":
		if !isSubdomain(name, zone) {
			return false
		}
	case "wildcard":
		if !isSubdomain(name, r.Name[2:]) || name == r.Name[2:] {
			return false
		}
	case "self":
		if name != signer {
			return false
		}
	case "selfsub":
		if !isSubdomain(name, signer) {
			return false
		}
	case "selfwild":
		if !isSubdomain(name, signer) || name == signer {
			return false
		}
	}
	switch {
	case r.Any:
		return t != dns.TypeNSEC && t != dns.TypeNSEC3 || slices.Contains(r.Types, t)
	case len(r.Types) > 0:
		return slices.Contains(r.Types, t)
	default:
		switch t {
		case dns.TypeRRSIG, dns.TypeNS, dns.TypeSOA, dns.TypeNSEC, dns.TypeNSEC3:
			return false
		}
		return true
	}
}

func identityMatches(pattern, signer string) bool {
	if pattern == "*." || pattern == signer {
		return true
	}
	if strings.HasPrefix(pattern, "*.") {
		return isSubdomain(signer, pattern[2:]) && signer != pattern[2:]
	}
	return false
}

// isSubdomain compares label by label: "x\.allowed.example." is a label
// "x.allowed" under example., not a name under allowed.example.
func isSubdomain(name, parent string) bool { return zonestore.InZone(name, parent) }

// AllowUpdate is the update-policy decision for other write paths (the HTTP
// API, dyndns2): identity stands where a TSIG key name stands for UPDATE.
func AllowUpdate(rules []UpdateRule, zone, identity, name string, t uint16) bool {
	return allowUpdate(rules, zone, identity, name, t)
}
