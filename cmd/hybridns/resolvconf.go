package main

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// resolvConfKeyword, as an upstream, stands for the nameservers of the
// system's resolv.conf (CoreDNS: forward . /etc/resolv.conf).
const resolvConfKeyword = "resolv.conf"

const defaultResolvConf = "/etc/resolv.conf"

// resolvConfPort is the port of resolv.conf nameservers (the file has no
// way to say another); a variable so that tests can point a resolv.conf
// at a loopback upstream on a free port.
var resolvConfPort uint16 = 53

// usesResolvConf reports whether any upstream is the resolv.conf keyword.
func (c *Config) usesResolvConf() bool {
	for _, u := range c.ForwardDefault {
		if strings.EqualFold(strings.TrimSpace(u), resolvConfKeyword) {
			return true
		}
	}
	for _, r := range c.Forward {
		for _, u := range r.Upstreams {
			if strings.EqualFold(strings.TrimSpace(u), resolvConfKeyword) {
				return true
			}
		}
	}
	return false
}

// resolvConfPath is resolv_conf, relative to the config file's directory,
// or /etc/resolv.conf.
func (c *Config) resolvConfPath() string {
	return c.path(cmp.Or(c.ResolvConf, defaultResolvConf))
}

// loadResolvConf reads the nameservers of resolv.conf when an upstream
// names it; they are kept in the config, so a reload that finds them
// changed builds a new forwarder.
func (c *Config) loadResolvConf() error {
	c.resolvServers = nil
	if !c.usesResolvConf() {
		return nil
	}
	path := c.resolvConfPath()
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: upstream resolv.conf: %w", c.where(c.lineOf("resolv_conf")), err)
	}
	servers, err := parseResolvConf(data, resolvConfPort)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(servers) == 0 {
		return fmt.Errorf("%s: upstream resolv.conf: the file lists no nameserver", path)
	}
	c.resolvServers = servers
	return nil
}

// parseResolvConf returns the nameserver addresses of a resolv.conf as
// IP:port, in the file's order. Like the C library it reads "nameserver
// IP" lines and ignores the rest; an address it cannot read is an error
// (the C library would skip it silently).
func parseResolvConf(data []byte, port uint16) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: nameserver %q: not an IP address", n, f[1])
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("line %d: nameserver %s: link-local addresses with a zone are not supported as upstreams", n, f[1])
		}
		out = append(out, netip.AddrPortFrom(a.Unmap(), port).String())
	}
	return out, sc.Err()
}

// expandUpstreams replaces the resolv.conf keyword by its nameservers.
func (c *Config) expandUpstreams(ups []string) ([]string, error) {
	var out []string
	for _, u := range ups {
		if !strings.EqualFold(strings.TrimSpace(u), resolvConfKeyword) {
			out = append(out, u)
			continue
		}
		if c.resolvServers == nil {
			if err := c.loadResolvConf(); err != nil {
				return nil, err
			}
		}
		for _, s := range c.resolvServers {
			if !containsString(out, s) {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// path resolves a path given in the config file: relative to the file's
// directory, as BIND reads its "directory" and nginx its includes.
func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.file == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.file), p)
}
