package r53fake

import (
	"fmt"
	"strings"
)

// NormalizeName returns name in the form Route 53 stores and returns it
// (ROUTE53.md §2): lower-case, every byte outside [a-z0-9_-] written as a
// three-digit octal escape (\052 for '*'), labels separated by '.', and a
// trailing dot. Input may use raw characters, \ooo escapes or \X escapes, and
// the trailing dot is optional. Escape codes are octal, as Route 53 uses them
// (\052 is '*', \100 is '@'). The empty name and "." both give ".".
func NormalizeName(name string) string {
	if name == "" || name == "." {
		return "."
	}
	var labels [][]byte
	var cur []byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '\\' && i+3 < len(name) && name[i+1] <= '3' && isOctal(name[i+1]) && isOctal(name[i+2]) && isOctal(name[i+3]):
			v := (name[i+1]-'0')<<6 | (name[i+2]-'0')<<3 | (name[i+3] - '0')
			cur = append(cur, lower(v))
			i += 3
		case c == '\\' && i+1 < len(name):
			cur = append(cur, lower(name[i+1]))
			i++
		case c == '.':
			labels = append(labels, cur)
			cur = nil
		default:
			cur = append(cur, lower(c))
		}
	}
	if len(cur) > 0 {
		labels = append(labels, cur)
	}
	var b strings.Builder
	for _, l := range labels {
		for _, c := range l {
			if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "\\%03o", c)
			}
		}
		b.WriteByte('.')
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// nameSortKey is the Route 53 sort key of a normalized name: labels reversed,
// trailing dot kept, compared as bytes (ROUTE53.md §3.5).
func nameSortKey(normalized string) string {
	s := strings.TrimSuffix(normalized, ".")
	if s == "" {
		return "."
	}
	labels := strings.Split(s, ".")
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	return strings.Join(labels, ".") + "."
}

// inZone reports whether the normalized name is the zone apex or below it.
func inZone(name, zone string) bool {
	if zone == "." {
		return true
	}
	return name == zone || strings.HasSuffix(name, "."+zone)
}

// bareID strips everything up to the last '/', as the SDK does
// ("/hostedzone/Z1" → "Z1", "/change/C1" → "C1").
func bareID(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}
