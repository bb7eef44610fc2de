package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"go.yaml.in/yaml/v3"

	"hybridns/server"
	"hybridns/zonestore"
)

// TransferConfig is one zone-transfer rule: every condition given must
// hold (a listed key signed the request AND the client is in a listed
// network). View: none = the default view's zones, a view name = that
// view's zones (private ones only under a key), "*" = every view.
type TransferConfig struct {
	Keys     []string `yaml:"keys"`
	Networks []string `yaml:"networks"`
	View     string   `yaml:"view"`
	// Notify lists secondaries (IP or IP:port, default port 53) told of
	// every new version of the zones this rule covers.
	Notify []string `yaml:"notify"`
	// NotifyNS also notifies the zone's NS hosts whose addresses are in
	// the served zones (never Route 53's awsdns-* servers).
	NotifyNS bool `yaml:"notify_ns"`
}

// CatalogConfig names the RFC 9432 catalog zone kept per view.
type CatalogConfig struct {
	Zone string `yaml:"zone"`
	// View limits the catalog to one view (default: the default view and
	// every configured view, each its own catalog).
	View *string `yaml:"view"`
}

// JournalConfig bounds the IXFR journal of each zone.
type JournalConfig struct {
	Versions int      `yaml:"versions"`  // default 100
	MaxBytes ByteSize `yaml:"max_bytes"` // default 64MiB
}

// ByteSize reads 1048576, "64MiB", "512KiB", "1GiB", "10MB".
type ByteSize int64

func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = ByteSize(v)
	return nil
}

func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.m
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with KiB, MiB, GiB, KB, MB or GB", s)
	}
	return v * mult, nil
}

// notifyAddr completes a NOTIFY target to IP:port.
func notifyAddr(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return net.JoinHostPort(a.String(), "53"), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return "", fmt.Errorf("notify %q: want IP or IP:port", s)
	}
	return ap.String(), nil
}

// transferRules validates and converts the transfer rules.
func (c *Config) transferRules(keys []server.TSIGKey) ([]server.TransferRule, []error) {
	var out []server.TransferRule
	var errs []error
	byName := map[string]server.TSIGKey{}
	for _, k := range keys {
		byName[k.Name] = k
	}
	for i, r := range c.Transfer {
		where := fmt.Sprintf("%s: transfer[%d]", c.where(0), i)
		rule := server.TransferRule{View: r.View, NotifyNS: r.NotifyNS}
		if len(r.Keys) == 0 && len(r.Networks) == 0 {
			errs = append(errs, fmt.Errorf("%s: needs keys or networks (a rule for everyone would hand every zone to anyone)", where))
		}
		// A view not (yet) configured is accepted: its clients see only
		// the public zones, which is all such a rule can hand out.
		if r.View != "" && len(r.Keys) == 0 {
			errs = append(errs, fmt.Errorf("%s: a rule for view %q needs keys: private zones move only under TSIG", where, r.View))
		}
		for _, name := range r.Keys {
			k, ok := byName[dns.CanonicalName(name)]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: key %q is not defined in tsig_keys or tsig_key_files", where, name))
				continue
			}
			if k.View != "" && r.View != server.AnyView && r.View != k.View {
				errs = append(errs, fmt.Errorf("%s: key %s is bound to view %q, the rule is for view %q", where, k.Name, k.View, r.View))
			}
			rule.Keys = append(rule.Keys, k.Name)
		}
		for _, p := range r.Networks {
			pfx, err := netip.ParsePrefix(p)
			if err != nil {
				if a, err2 := netip.ParseAddr(p); err2 == nil {
					pfx = netip.PrefixFrom(a, a.BitLen())
				} else {
					errs = append(errs, fmt.Errorf("%s: network %q: %w", where, p, err))
					continue
				}
			}
			rule.Networks = append(rule.Networks, pfx.Masked())
		}
		for _, n := range r.Notify {
			a, err := notifyAddr(n)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
				continue
			}
			rule.Notify = append(rule.Notify, a)
		}
		out = append(out, rule)
	}
	if c.Catalog.Zone != "" {
		if _, ok := dns.IsDomainName(c.Catalog.Zone); !ok {
			errs = append(errs, fmt.Errorf("%s: catalog.zone %q: not a domain name", c.where(0), c.Catalog.Zone))
		}
	} else if c.Catalog.View != nil {
		errs = append(errs, fmt.Errorf("%s: catalog.view without catalog.zone", c.where(0)))
	}
	if c.Journal.Versions < 0 || c.Journal.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("%s: journal: versions and max_bytes must not be negative", c.where(0)))
	}
	return out, errs
}

// catalogViews is server.Config.CatalogViews for cfg.
func (c *Config) catalogViews() []string {
	if c.Catalog.View == nil {
		return nil
	}
	return []string{*c.Catalog.View}
}

func (c *Config) journalConfig() zonestore.JournalConfig {
	return zonestore.JournalConfig{Versions: c.Journal.Versions, MaxBytes: int64(c.Journal.MaxBytes)}
}
