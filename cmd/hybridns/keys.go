package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/miekg/dns"
	"github.com/urfave/cli/v2"

	"hybridns/r53"
	"hybridns/server"
	"hybridns/zonestore/reverse"
)

// TSIGKeyConfig is one key in the config file. Secret is base64, as
// tsig-keygen prints it; it is never logged or printed back.
type TSIGKeyConfig struct {
	Name      string `yaml:"name"`
	Algorithm string `yaml:"algorithm"`
	Secret    string `yaml:"secret"`
	// View binds the key to a view: requests signed with it are treated
	// as that view's clients (BIND's match-clients { key …; }).
	View string `yaml:"view"`
}

// tsigKeys returns every configured key: inline ones and those of the BIND
// key files, each problem reported (never a secret).
func (c *Config) tsigKeys() ([]server.TSIGKey, []error) {
	var keys []server.TSIGKey
	var errs []error
	seen := map[string]bool{}
	add := func(where string, k TSIGKeyConfig) {
		key, err := server.NewTSIGKey(k.Name, k.Algorithm, k.Secret, k.View)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			return
		}
		if seen[key.Name] {
			errs = append(errs, fmt.Errorf("%s: tsig key %s defined twice", where, key.Name))
			return
		}
		if k.View != "" && !c.hasView(k.View) {
			errs = append(errs, fmt.Errorf("%s: tsig key %s: view %q is not configured", where, key.Name, k.View))
		}
		seen[key.Name] = true
		keys = append(keys, key)
	}
	for _, k := range c.TSIGKeys {
		add(c.where(0)+": tsig_keys", k)
	}
	for _, path := range c.TSIGKeyFiles {
		if !filepath.IsAbs(path) && c.file != "" {
			path = filepath.Join(filepath.Dir(c.file), path) // relative to the config file
		}
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: tsig_key_files: %w", c.where(0), err))
			continue
		}
		fileKeys, err := parseBINDKeys(string(data))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		for _, k := range fileKeys {
			add(path, k)
		}
	}
	return keys, errs
}

func (c *Config) hasView(name string) bool {
	for _, v := range c.Views {
		if v.Name == name {
			return true
		}
	}
	return false
}

// updatePolicies parses update_policy: zone → BIND update-policy rules.
func (c *Config) updatePolicies() (map[string][]server.UpdateRule, []error) {
	out := map[string][]server.UpdateRule{}
	var errs []error
	for zone, lines := range c.UpdatePolicy {
		if _, ok := dns.IsDomainName(zone); !ok {
			errs = append(errs, fmt.Errorf("%s: update_policy: %q is not a zone name", c.where(0), zone))
			continue
		}
		rules, rerrs := server.ParseUpdatePolicy(lines)
		for _, e := range rerrs {
			errs = append(errs, fmt.Errorf("%s: update_policy %s: %w", c.where(0), zone, e))
		}
		out[dns.CanonicalName(zone)] = rules
	}
	return out, errs
}

// parseBINDKeys reads the key statements of a BIND key file, as
// tsig-keygen and rndc-confgen write them:
//
//	key "name" { algorithm hmac-sha256; secret "base64"; };
func parseBINDKeys(text string) ([]TSIGKeyConfig, error) {
	toks, err := bindTokens(text)
	if err != nil {
		return nil, err
	}
	var keys []TSIGKeyConfig
	for i := 0; i < len(toks); {
		if toks[i] != "key" || i+2 >= len(toks) || toks[i+2] != "{" {
			return nil, fmt.Errorf("key file: expected `key \"NAME\" {`, found %q", toks[i])
		}
		k := TSIGKeyConfig{Name: toks[i+1]}
		i += 3
		for i < len(toks) && toks[i] != "}" {
			if i+2 >= len(toks) || toks[i+2] != ";" {
				return nil, fmt.Errorf("key file: key %s: expected `%s VALUE;`", k.Name, toks[i])
			}
			switch toks[i] {
			case "algorithm":
				k.Algorithm = toks[i+1]
			case "secret":
				k.Secret = toks[i+1]
			default:
				return nil, fmt.Errorf("key file: key %s: unknown clause %q", k.Name, toks[i])
			}
			i += 3
		}
		if i+1 >= len(toks) || toks[i] != "}" || toks[i+1] != ";" {
			return nil, fmt.Errorf("key file: key %s: missing `};`", k.Name)
		}
		i += 2
		if k.Algorithm == "" || k.Secret == "" {
			return nil, fmt.Errorf("key file: key %s: needs algorithm and secret", k.Name)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("key file: no key statement")
	}
	return keys, nil
}

// bindTokens splits named.conf-style text: quoted strings, words, and the
// punctuation { } ;, with #, // and /* */ comments removed.
func bindTokens(s string) ([]string, error) {
	var out []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#' || strings.HasPrefix(s[i:], "//"):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, errors.New("key file: unterminated comment")
			}
			i += end + 4
		case c == '{' || c == '}' || c == ';':
			out = append(out, string(c))
			i++
		case c == '"':
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				return nil, errors.New("key file: unterminated string")
			}
			out = append(out, s[i+1:i+1+end])
			i += end + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n{};\"", rune(s[j])) {
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out, nil
}

// keygenCmd prints a new key in both forms, like tsig-keygen.
func keygenCmd(c *cli.Context) error {
	name := c.Args().First()
	if name == "" {
		return errors.New("usage: hybridns keygen [--algorithm hmac-sha256] NAME")
	}
	alg := c.String("algorithm")
	size := map[string]int{"hmac-md5": 16, "hmac-sha1": 20, "hmac-sha224": 28, "hmac-sha256": 32, "hmac-sha384": 48, "hmac-sha512": 64}[alg]
	if size == 0 {
		return fmt.Errorf("keygen: unknown algorithm %q", alg)
	}
	raw := make([]byte, size)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	secret := base64.StdEncoding.EncodeToString(raw)
	if _, err := server.NewTSIGKey(name, alg, secret, ""); err != nil {
		return err
	}
	name = strings.TrimSuffix(name, ".")
	fmt.Fprintf(c.App.Writer, "# BIND key file (tsig_key_files, nsupdate -k, named.conf):\nkey \"%s\" {\n\talgorithm %s;\n\tsecret \"%s\";\n};\n", name, alg, secret)
	fmt.Fprintf(c.App.Writer, "# hybridns config (tsig_keys):\n# - {name: %s, algorithm: %s, secret: \"%s\"}\n", name, alg, secret)
	return nil
}

// r53Updater routes an UPDATE to the syncer that mirrors the zone it
// names: the one writer for every path that changes Route 53.
type r53Updater struct {
	syncers []*r53.Syncer
	synth   *reverse.Synth // synthesized reverse zones catch up before the reply
}

func (u r53Updater) Update(ctx context.Context, up server.Update) (server.UpdateResult, error) {
	id, ok := strings.CutPrefix(up.ZoneSource, "route53:")
	if !ok {
		return server.UpdateResult{Rcode: dns.RcodeRefused}, fmt.Errorf("zone %s comes from %s, which takes no updates", up.Zone, up.ZoneSource)
	}
	for _, s := range u.syncers {
		if !s.Mirrors(id) {
			continue
		}
		res, err := s.Update(ctx, id, up.Prereqs, up.Updates, up.Permit)
		if err == nil && res.ChangeID != "" && u.synth != nil {
			u.synth.Sync()
		}
		return server.UpdateResult{Rcode: res.Rcode}, err
	}
	return server.UpdateResult{Rcode: dns.RcodeRefused}, fmt.Errorf("zone %s (%s): %w", up.Zone, id, r53.ErrNotMirrored)
}
