package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"hybridns/forwarder"
)

// Messages about the config name where a value came from: FILE:LINE:COLUMN
// for the config file (the YAML node tree is kept), the flag or
// environment variable that set it, and never a Go type or function name.

// at returns where the value at path ("forward[2].upstreams[0]",
// "cache.max_ttl") was set: the flag or variable that overrode the file,
// else FILE:LINE:COLUMN of the value (of its nearest enclosing node when
// the file does not set it), else the file name.
func (c *Config) at(path string) string {
	if src := c.flagFor(path); src != "" {
		return src
	}
	if c.file == "" {
		return "flags"
	}
	if n := c.nodeAt(path); n != nil {
		return fmt.Sprintf("%s:%d:%d", c.file, n.Line, n.Column)
	}
	return c.file
}

// flagFor names the flag (or environment variable) that set path, "" when
// none did.
func (c *Config) flagFor(path string) string {
	key := stripIndexes(path)
	for k, src := range c.fromFlags {
		if key == k || strings.HasPrefix(key, k+".") {
			return src
		}
	}
	return ""
}

func stripIndexes(path string) string {
	var b strings.Builder
	depth := 0
	for _, r := range path {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// nodeAt returns the value node at path, or the deepest enclosing node the
// file has; nil without a document.
func (c *Config) nodeAt(path string) *yaml.Node {
	if c.root == nil || len(c.root.Content) != 1 {
		return nil
	}
	n := c.root.Content[0]
	for _, part := range strings.Split(path, ".") {
		name, idxs := part, []int(nil)
		if i := strings.IndexByte(part, '['); i >= 0 {
			name = part[:i]
			for _, s := range strings.Split(strings.TrimSuffix(part[i+1:], "]"), "][") {
				v, err := strconv.Atoi(s)
				if err != nil {
					return n
				}
				idxs = append(idxs, v)
			}
		}
		if name != "" {
			if n.Kind != yaml.MappingNode {
				return n
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == name {
					n, found = n.Content[i+1], true
					break
				}
			}
			if !found {
				return n
			}
		}
		for _, ix := range idxs {
			if n.Kind != yaml.SequenceNode || ix >= len(n.Content) {
				return n
			}
			n = n.Content[ix]
		}
	}
	return n
}

// checkNodes walks the document against the Config type: every key must be
// one the type has (else "unknown key", with the nearest known one), and
// every value must decode into its field (else what was expected, in
// words). It returns every problem, each at its line and column.
func (c *Config) checkNodes(doc *yaml.Node) []error {
	if doc == nil || len(doc.Content) != 1 {
		return nil
	}
	var errs []error
	walkNode(c.file, doc.Content[0], reflect.TypeOf(Config{}), "", &errs)
	return errs
}

var durationType = reflect.TypeOf(time.Duration(0))

func walkNode(file string, n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	bad := func(n *yaml.Node, format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		if path != "" {
			msg = path + ": " + msg
		}
		*errs = append(*errs, fmt.Errorf("%s:%d:%d: %s", file, n.Line, n.Column, msg))
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // key: (nothing) is the zero value
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			bad(n, "want a duration like 30s, 5m or 24h, not %s", kindWords(n))
			return
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			if _, ierr := strconv.Atoi(n.Value); ierr == nil && n.Value != "0" {
				bad(n, "%s: a duration needs a unit: %ss, %sms, %sm …", n.Value, n.Value, n.Value, n.Value)
				return
			}
			if n.Value != "0" {
				bad(n, "%q is not a duration: write it like 30s, 5m or 24h", n.Value)
			}
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			bad(n, "want a mapping of keys (%s), not %s", strings.Join(structKeys(t), ", "), kindWords(n))
			return
		}
		keys := structKeys(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := structField(t, k.Value)
			sub := k.Value
			if path != "" {
				sub = path + "." + k.Value
			}
			if !ok {
				msg := fmt.Sprintf("unknown key %q", k.Value)
				if path != "" {
					msg = fmt.Sprintf("unknown key %q in %s", k.Value, path)
				}
				if s := suggestKey(k.Value, keys, path); s != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", s)
				}
				*errs = append(*errs, fmt.Errorf("%s:%d:%d: %s", file, k.Line, k.Column, msg))
				continue
			}
			walkNode(file, v, f.Type, sub, errs)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			bad(n, "want a list, like [%s], not %s", exampleItem(n), kindWords(n))
			return
		}
		for i, item := range n.Content {
			walkNode(file, item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			bad(n, "want a mapping (key: value lines), not %s", kindWords(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkNode(file, n.Content[i+1], t.Elem(), path+"."+n.Content[i].Value, errs)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			bad(n, "want a single value, not %s", kindWords(n))
			return
		}
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			switch t.Kind() {
			case reflect.Bool:
				bad(n, "%q: want true or false", n.Value)
			case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				bad(n, "%q: want a whole number", n.Value)
			case reflect.Float64, reflect.Float32:
				bad(n, "%q: want a number", n.Value)
			default:
				bad(n, "%q: not a valid value", n.Value)
			}
		}
	}
}

func kindWords(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return fmt.Sprintf("%q", n.Value)
}

func exampleItem(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && n.Value != "" {
		return strconv.Quote(n.Value)
	}
	return "…"
}

func structKeys(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			out = append(out, name)
		}
	}
	return out
}

func structField(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); yamlName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

// suggestKey finds the known key nearest to an unknown one: a close
// spelling at the same level (BIND's zone-dir for zone_dir), or the same
// name one level elsewhere (vpc_cidr for aws.vpc_cidr).
func suggestKey(key string, known []string, path string) string {
	norm := strings.ReplaceAll(strings.ToLower(key), "-", "_")
	best, bestD := "", 1<<30
	for _, k := range known {
		if d := editDistance(norm, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" && (bestD <= 2 || bestD*3 <= len(key)) {
		return best
	}
	if path == "" {
		// A top-level key that lives in a section.
		for _, f := range reflect.VisibleFields(reflect.TypeOf(Config{})) {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() != reflect.Struct || ft == durationType || yamlName(f) == "" {
				continue
			}
			if slices.Contains(structKeys(ft), norm) {
				return yamlName(f) + "." + norm
			}
		}
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// cidrProblem says in words what is wrong with a network, "" when it
// parses.
func cidrProblem(s string) string {
	if _, err := netip.ParsePrefix(s); err == nil {
		return ""
	}
	if hint := bindHintValue(s); hint != "" {
		return hint
	}
	addr, bits, ok := strings.Cut(s, "/")
	if !ok {
		if a, err := netip.ParseAddr(s); err == nil {
			return fmt.Sprintf("a network needs a prefix length: %s/%d for this one address", s, a.BitLen())
		}
		return "want a network like 10.0.0.0/8 or fd00::/8"
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return fmt.Sprintf("%q is not an IP address; want a network like 10.0.0.0/8 or fd00::/8", addr)
	}
	if n, err := strconv.Atoi(bits); err != nil || n < 0 || n > a.BitLen() {
		return fmt.Sprintf("prefix length %q: want 0 to %d", bits, a.BitLen())
	}
	return "want a network like 10.0.0.0/8 or fd00::/8"
}

// bindHintValue recognizes values written as in named.conf and says how
// to write them here.
func bindHintValue(s string) string {
	f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(s), ";"))
	if len(f) == 3 && strings.EqualFold(f[1], "port") {
		if a, err := netip.ParseAddr(f[0]); err == nil {
			if p, err := strconv.ParseUint(f[2], 10, 16); err == nil {
				return fmt.Sprintf("BIND's %q is written %s here", s, netip.AddrPortFrom(a, uint16(p)))
			}
		}
	}
	if strings.ContainsAny(s, "{};") {
		return "looks like named.conf syntax; write one value per list item, like [10.0.0.0/8, 192.0.2.1]"
	}
	return ""
}

// fromEnvOrFlag names a flag for messages: the environment variable when
// the value came from it (the flag is not on the command line), else the
// flag.
func fromEnvOrFlag(flag, env string) string {
	for _, a := range os.Args[1:] {
		if a == "--" {
			break
		}
		if a == "--"+flag || a == "-"+flag || strings.HasPrefix(a, "--"+flag+"=") || strings.HasPrefix(a, "-"+flag+"=") {
			return "--" + flag
		}
	}
	if env != "" && os.Getenv(env) != "" {
		return env
	}
	return "--" + flag
}

// checkUpstreams checks each upstream spelling as the forwarder will read
// it, at its position.
func (c *Config) checkUpstreams(key, label string, ups []string) []error {
	var errs []error
	for i, u := range ups {
		t := strings.TrimSpace(u)
		if strings.EqualFold(t, resolvConfKeyword) || strings.EqualFold(t, "vpc") {
			continue // resolved (and checked) elsewhere
		}
		if _, err := forwarderParseUpstream(t); err == nil {
			continue
		}
		msg := "want IP, IP:port, [IPv6]:port, vpc or resolv.conf"
		if h := bindHintValue(t); h != "" {
			msg = h
		} else if _, _, err := net.SplitHostPort(t); err == nil || !strings.ContainsAny(t, ":") {
			if _, aerr := netip.ParseAddr(strings.Trim(hostOf(t), "[]")); aerr != nil {
				msg = "an upstream is an IP address, not a host name (resolving it would depend on ourselves); want IP, IP:port, [IPv6]:port, vpc or resolv.conf"
			}
		}
		errs = append(errs, fmt.Errorf("%s: %s %q: %s", c.at(fmt.Sprintf("%s[%d]", key, i)), label+" upstream", u, msg))
	}
	return errs
}

func hostOf(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return s
}

// forwarderParseUpstream is the forwarder's reading of an upstream.
func forwarderParseUpstream(s string) (string, error) { return forwarder.ParseUpstream(s, "") }

// sortByPosition orders the problems in the file by line and column, the
// others (flags, whole-file) first, keeping their order otherwise.
func (c *Config) sortByPosition(errs []error) {
	pos := func(e error) (int, int) {
		rest, ok := strings.CutPrefix(e.Error(), c.file+":")
		if !ok || c.file == "" {
			return 0, 0
		}
		ls, rest, _ := strings.Cut(rest, ":")
		cs, _, _ := strings.Cut(rest, ":")
		l, err := strconv.Atoi(ls)
		if err != nil {
			return 0, 0
		}
		col, _ := strconv.Atoi(cs)
		return l, col
	}
	slices.SortStableFunc(errs, func(a, b error) int {
		la, ca := pos(a)
		lb, cb := pos(b)
		if la != lb {
			return la - lb
		}
		return ca - cb
	})
}

var forwarderRuleErr = regexp.MustCompile(`^rule (\d+) \("[^"]*"\): (.*)$`)

// checkForwarder builds the forwarding rules as serve would (no cache, no
// health checks, closed at once), so that what only the forwarder judges
// — an upstream that is our own listen address, one listed twice — comes
// with every other problem, at the rule's position.
func (c *Config) checkForwarder() []error {
	if len(c.Forward) == 0 && len(c.ForwardDefault) == 0 {
		return nil
	}
	trial := *c
	trial.Cache.Entries = -1
	off := 0
	trial.Upstream.MaxFails = &off
	f, err := buildForwarder(&trial, nil)
	if err == nil {
		if f != nil {
			f.Close()
		}
		return nil
	}
	var errs []error
	for _, e := range unjoin(err) {
		msg := strings.TrimPrefix(e.Error(), "forwarder: ")
		if m := forwarderRuleErr.FindStringSubmatch(msg); m != nil {
			i, _ := strconv.Atoi(m[1])
			switch {
			case i < len(c.Forward):
				errs = append(errs, fmt.Errorf("%s: forward %s: %s", c.at(fmt.Sprintf("forward[%d]", i)), c.Forward[i].Zone, m[2]))
				continue
			case i == len(c.Forward) && len(c.ForwardDefault) > 0:
				errs = append(errs, fmt.Errorf("%s: forward_default: %s", c.at("forward_default"), m[2]))
				continue
			default:
				errs = append(errs, fmt.Errorf("%s: built-in AWS rule: %s", c.at("aws"), m[2]))
				continue
			}
		}
		errs = append(errs, fmt.Errorf("%s: forwarding: %s", c.at("forward"), msg))
	}
	return errs
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// hasForwardErr: a forwarding rule or upstream is already reported (the
// trial forwarder would only repeat it).
func hasForwardErr(errs []error) bool {
	for _, e := range errs {
		msg := e.Error()
		if strings.Contains(msg, ": forward") || strings.Contains(msg, "aws.vpc_cidr") || strings.Contains(msg, "listen ") {
			return true
		}
	}
	return false
}
