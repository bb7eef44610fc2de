package r53

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"
)

var update = flag.Bool("update", false, "rewrite r53/testdata/convert/*.golden from the current output")

// listOutput is the shape of `aws route53 list-resource-record-sets` output, which
// decodes straight into the SDK types.
type listOutput struct {
	ResourceRecordSets []types.ResourceRecordSet
}

func loadRecordSets(t *testing.T, path string) []types.ResourceRecordSet {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var out listOutput
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out.ResourceRecordSets
}

// render prints a converted record set as zone-file text: a comment line with the
// policy and alias, then the RRs.
func render(b *strings.Builder, i int, rs RecordSet, err error) {
	if err != nil {
		fmt.Fprintf(b, "; [%d] ERROR %v\n", i, err)
		return
	}
	fmt.Fprintf(b, "; [%d] %s %s ttl=%d %s", i, rs.Name, dns.TypeToString[rs.Type], rs.TTL, rs.Policy.Kind())
	p := rs.Policy
	if p.SetIdentifier != "" {
		fmt.Fprintf(b, " set-id=%s", p.SetIdentifier)
	}
	if p.Weight != nil {
		fmt.Fprintf(b, " weight=%d", *p.Weight)
	}
	if p.Failover != "" {
		fmt.Fprintf(b, " failover=%s", p.Failover)
	}
	if p.Region != "" {
		fmt.Fprintf(b, " region=%s", p.Region)
	}
	if g := p.Geo; g != nil {
		fmt.Fprintf(b, " geo=continent:%q,country:%q,subdivision:%q", g.Continent, g.Country, g.Subdivision)
	}
	if c := p.CIDR; c != nil {
		fmt.Fprintf(b, " cidr=collection:%s,location:%s", c.CollectionID, c.LocationName)
	}
	if g := p.GeoProximity; g != nil {
		fmt.Fprintf(b, " geoproximity=region:%q,local-zone-group:%q,lat:%q,lon:%q,bias:%d",
			g.Region, g.LocalZoneGroup, g.Latitude, g.Longitude, g.Bias)
	}
	if p.HealthCheckID != "" {
		fmt.Fprintf(b, " health-check=%s", p.HealthCheckID)
	}
	if a := rs.Alias; a != nil {
		fmt.Fprintf(b, " alias=%s zone=%s evaluate-target-health=%t", a.DNSName, a.HostedZoneID, a.EvaluateTargetHealth)
	}
	b.WriteByte('\n')
	for _, rr := range rs.RRs {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
}

func TestConvertGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "convert", "*.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		t.Run(strings.TrimSuffix(filepath.Base(in), ".json"), func(t *testing.T) {
			var b strings.Builder
			for i, set := range loadRecordSets(t, in) {
				rs, err := ConvertRecordSet(set)
				if err == nil {
					checkRecordSet(t, set, rs)
				}
				render(&b, i+1, rs, err)
			}
			golden := strings.TrimSuffix(in, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./r53 -run TestConvertGolden -update)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("%s differs from output (rerun with -update and review the diff):\n got:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// checkRecordSet asserts the invariants every converted set must hold.
func checkRecordSet(t *testing.T, in types.ResourceRecordSet, rs RecordSet) {
	t.Helper()
	if want := canonicalViaWire(t, rs.Name); rs.Name != want {
		t.Errorf("%s: owner %q, miekg gives %q for the same wire name", aws.ToString(in.Name), rs.Name, want)
	}
	if strings.ToLower(rs.Name) != rs.Name {
		t.Errorf("owner %q is not lower case", rs.Name)
	}
	if rs.Alias != nil {
		if rs.RRs != nil || rs.TTL != 0 {
			t.Errorf("%s: alias set has RRs %v TTL %d", rs.Name, rs.RRs, rs.TTL)
		}
		if want := canonicalViaWire(t, rs.Alias.DNSName); rs.Alias.DNSName != want || strings.ToLower(want) != want {
			t.Errorf("alias target %q, want %q", rs.Alias.DNSName, strings.ToLower(want))
		}
		if strings.HasPrefix(rs.Alias.HostedZoneID, "/") {
			t.Errorf("alias zone %q keeps its prefix", rs.Alias.HostedZoneID)
		}
		return
	}
	if len(rs.RRs) != len(in.ResourceRecords) {
		t.Fatalf("%s: %d RRs for %d values", rs.Name, len(rs.RRs), len(in.ResourceRecords))
	}
	for _, rr := range rs.RRs {
		h := rr.Header()
		if h.Name != rs.Name || h.Rrtype != rs.Type || h.Class != dns.ClassINET || h.Ttl != rs.TTL {
			t.Errorf("header %v, want %s %d IN %s", h, rs.Name, rs.TTL, dns.TypeToString[rs.Type])
		}
		// The text must parse back to the same RR, and be stable through the wire.
		back, err := dns.NewRR(rr.String())
		if err != nil {
			t.Errorf("%q does not parse back: %v", rr.String(), err)
			continue
		}
		// Compare in wire-canonical form: miekg keeps hex fields as typed when it
		// parses text but lower-case when it unpacks, so IsDuplicate of a parsed and
		// an unpacked DS differs on case alone.
		if back, err = wireCanonical(back); err != nil || !dns.IsDuplicate(rr, back) || back.String() != rr.String() {
			t.Errorf("text round trip changed %q to %v (%v)", rr.String(), back, err)
		}
		if w, err := wireCanonical(rr); err != nil || !dns.IsDuplicate(rr, w) || w.String() != rr.String() {
			t.Errorf("wire round trip changed %q to %v (%v)", rr.String(), w, err)
		}
	}
}

// canonicalViaWire is the reference for names: pack with miekg, lower-case, unpack.
func canonicalViaWire(t *testing.T, name string) string {
	t.Helper()
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		t.Fatalf("pack %q: %v", name, err)
	}
	s, _, err := dns.UnpackDomainName(buf[:n], 0)
	if err != nil {
		t.Fatalf("unpack %q: %v", name, err)
	}
	return s
}

func TestConvertErrors(t *testing.T) {
	ttl := aws.Int64(300)
	vals := func(v ...string) []types.ResourceRecord {
		var out []types.ResourceRecord
		for _, s := range v {
			out = append(out, types.ResourceRecord{Value: aws.String(s)})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   types.ResourceRecordSet
		is   error    // errors.Is target, if any
		want []string // substrings of the message, in order
	}{
		{
			name: "bad A value",
			in:   types.ResourceRecordSet{Name: aws.String("www.example.com."), Type: types.RRTypeA, TTL: ttl, ResourceRecords: vals("192.0.2.1", "192.0.2.999")},
			want: []string{"convert www.example.com. A: ", `value 2 "192.0.2.999": `, "bad A"},
		},
		{
			name: "bad TXT value in weighted set",
			in: types.ResourceRecordSet{Name: aws.String("www.example.com."), Type: types.RRTypeTxt, TTL: ttl, SetIdentifier: aws.String("x"),
				Weight: aws.Int64(1), ResourceRecords: vals(`"ok"`, `"bad\9"`)},
			want: []string{"convert www.example.com. TXT (set-id x): ", "value 2 ", "octal"},
		},
		{
			name: "alias with records",
			in: types.ResourceRecordSet{Name: aws.String("\\052.example.com."), Type: types.RRTypeA, ResourceRecords: vals("192.0.2.1"),
				AliasTarget: &types.AliasTarget{DNSName: aws.String("example.com."), HostedZoneId: aws.String("Z1")}},
			want: []string{`convert \052.example.com. A: `, "alias record set has 1 resource records"},
		},
		{
			name: "non-alias without records",
			in:   types.ResourceRecordSet{Name: aws.String("x.example.com."), Type: types.RRTypeA, TTL: ttl},
			want: []string{"convert x.example.com. A: ", "neither resource records nor alias target"},
		},
		{
			name: "traffic policy",
			in:   types.ResourceRecordSet{Name: aws.String("x.example.com."), Type: types.RRTypeA, TrafficPolicyInstanceId: aws.String("tp-1")},
			is:   ErrTrafficPolicy,
			want: []string{"convert x.example.com. A: ", "tp-1"},
		},
		{
			name: "unknown type",
			in:   types.ResourceRecordSet{Name: aws.String("x.example.com."), Type: "LOC", TTL: ttl, ResourceRecords: vals("52 22 23.000 N 4 53 32.000 E -2.00m")},
			is:   ErrUnsupportedType,
			want: []string{"convert x.example.com. LOC: ", `unsupported record type "LOC"`},
		},
		{
			name: "comment would drop text",
			in:   types.ResourceRecordSet{Name: aws.String("_dmarc.example.com."), Type: types.RRTypeTxt, TTL: ttl, ResourceRecords: vals("v=DMARC1; p=reject")},
			want: []string{"convert _dmarc.example.com. TXT: ", "value 1 ", "comment"},
		},
		{
			name: "two records in one value",
			in:   types.ResourceRecordSet{Name: aws.String("x.example.com."), Type: types.RRTypeA, TTL: ttl, ResourceRecords: vals("192.0.2.1\ny. 1 IN A 192.0.2.2")},
			want: []string{"convert x.example.com. A: ", "control character"},
		},
		{
			name: "empty value",
			in:   types.ResourceRecordSet{Name: aws.String("x.example.com."), Type: types.RRTypeMx, TTL: ttl, ResourceRecords: vals(" ")},
			want: []string{"convert x.example.com. MX: ", "empty value"},
		},
		{
			name: "bad name",
			in:   types.ResourceRecordSet{Name: aws.String("a..example.com."), Type: types.RRTypeA, TTL: ttl, ResourceRecords: vals("192.0.2.1")},
			want: []string{"convert a..example.com. A: ", "name: empty label"},
		},
		{
			name: "missing name",
			in:   types.ResourceRecordSet{Type: types.RRTypeA, TTL: ttl, ResourceRecords: vals("192.0.2.1")},
			want: []string{"convert  A: missing name"},
		},
		{
			name: "policy without set identifier",
			in:   types.ResourceRecordSet{Name: aws.String("x.example.com."), Type: types.RRTypeA, TTL: ttl, Region: "us-east-1", ResourceRecords: vals("192.0.2.1")},
			want: []string{"convert x.example.com. A: ", "latency record set without set identifier"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := ConvertRecordSet(tc.in)
			if err == nil {
				t.Fatalf("no error, got %+v", rs)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			msg := err.Error()
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q (in order)", msg, w)
				}
				rest = rest[i+len(w):]
			}
			if !strings.HasPrefix(msg, "convert ") {
				t.Errorf("error %q does not start by naming the set", msg)
			}
		})
	}
}

// TestUnescapeNameEveryByte checks UnescapeName and EscapeName against miekg for a
// label holding each of the 256 byte values: the API form (\ooo for every byte
// outside [a-z0-9_-]) must unescape to exactly what dns.UnpackDomainName prints for
// that wire name, and escape back to the API form.
func TestUnescapeNameEveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if 'A' <= b && b <= 'Z' {
			continue // folded to lower case; covered below
		}
		wire := []byte{3, 'a', b, 'b', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0}
		miekg, _, err := dns.UnpackDomainName(wire, 0)
		if err != nil {
			t.Fatal(err)
		}
		api := "a" + string(b) + "b.example."
		if !('a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
			api = fmt.Sprintf(`a\%03ob.example.`, b)
		}
		got, err := UnescapeName(api)
		if err != nil || got != miekg {
			t.Errorf("UnescapeName(%q) = %q, %v; miekg unpacks the wire name as %q", api, got, err, miekg)
		}
		if back := EscapeName(got); back != api {
			t.Errorf("EscapeName(%q) = %q, want %q", got, back, api)
		}
		// The canonical name must also survive miekg's own text parser.
		if rr, err := dns.NewRR(got + " 60 IN A 192.0.2.1"); err != nil || rr.Header().Name != got {
			t.Errorf("dns.NewRR with owner %q: %v, %v", got, rr, err)
		}
	}
}

func TestUnescapeName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`\052.example.com.`, `*.example.com.`},
		{`\052.example.com`, `*.example.com.`},
		{`*.example.com`, `*.example.com.`},
		{`prod\052.example.com.`, `prod*.example.com.`},
		{`a\100b.example.com.`, `a\@b.example.com.`},
		{`a@b.example.com.`, `a\@b.example.com.`},
		{`with\040space.example.com.`, `with\ space.example.com.`},
		{`a\057b.example.com.`, `a/b.example.com.`},
		{`dot\056in.example.com.`, `dot\.in.example.com.`},
		{`a\\.b.`, `a\\.b.`}, // \\ is a literal backslash (non-digit escape)
		{`a\.b.example.`, `a\.b.example.`},
		{`ctl\001\377.example.`, `ctl\001\255.example.`},
		{`WWW.Example.COM`, `www.example.com.`},
		{`\101BC.example.`, `abc.example.`}, // \101 octal is 'A', folded
		{`.`, `.`},
	} {
		got, err := UnescapeName(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("UnescapeName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "a..b.", ".a.", `a\`, `a\08`, `a\400`, `a\1`, `a\12`,
		strings.Repeat("a", 64) + ".com.", strings.Repeat("abcdefghi.", 26)} {
		if got, err := UnescapeName(bad); err == nil {
			t.Errorf("UnescapeName(%q) = %q, want an error", bad, got)
		}
	}
}

func TestEscapeNameRoundTrip(t *testing.T) {
	// Names exactly as the Route 53 API returns them.
	for _, api := range []string{
		".",
		"example.com.",
		`\052.example.com.`,
		`\052.sub.example.com.`,
		`prod\052.example.com.`,
		`marketing.\052.example.com.`,
		`a\100b.example.com.`,
		`with\040space.example.com.`,
		`a\057b.example.com.`,
		`dot\056inside.example.com.`,
		`quote\042semi\073paren\050\051.example.com.`,
		`back\134slash.example.com.`,
		`ctl\000\001\177\200\377.example.com.`,
		"_dmarc.example.com.",
		"_443._tcp.www.example.com.",
		"xn--bcher-kva.example.com.",
		strings.Repeat("a", 63) + ".example.com.",
	} {
		name, err := UnescapeName(api)
		if err != nil {
			t.Errorf("UnescapeName(%q): %v", api, err)
			continue
		}
		if got := EscapeName(name); got != api {
			t.Errorf("EscapeName(UnescapeName(%q)) = EscapeName(%q) = %q", api, name, got)
		}
	}
	// Input Route 53 would normalize: the round trip yields the normalized API form.
	for in, want := range map[string]string{
		"WWW.Example.COM": "www.example.com.",
		"*.example.com":   `\052.example.com.`,
		"a@b.example.com": `a\100b.example.com.`,
	} {
		name, err := UnescapeName(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := EscapeName(name); got != want {
			t.Errorf("EscapeName(UnescapeName(%q)) = %q, want %q", in, got, want)
		}
	}
	// miekg names with decimal escapes and uppercase escape to the API form too.
	if got := EscapeName(`A\064B\.c.Example.`); got != `a\100b\056c.example.` {
		t.Errorf("EscapeName = %q", got)
	}
}

func TestPolicyKind(t *testing.T) {
	w := int64(0)
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{}, KindSimple},
		{Policy{Weight: &w}, KindWeighted},
		{Policy{Failover: "PRIMARY"}, KindFailover},
		{Policy{Region: "us-east-1"}, KindLatency},
		{Policy{MultiValue: true}, KindMultiValue},
		{Policy{Geo: &GeoLocation{Country: "*"}}, KindGeolocation},
		{Policy{CIDR: &CIDRRouting{"c", "*"}}, KindCIDR},
		{Policy{GeoProximity: &GeoProximity{Region: "us-east-1"}}, KindGeoProximity},
	} {
		if got := tc.p.Kind(); got != tc.want {
			t.Errorf("%+v.Kind() = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestWeightIsCopied(t *testing.T) {
	in := types.ResourceRecordSet{Name: aws.String("w.example.com."), Type: types.RRTypeA, TTL: aws.Int64(1),
		SetIdentifier: aws.String("a"), Weight: aws.Int64(0), ResourceRecords: []types.ResourceRecord{{Value: aws.String("192.0.2.1")}}}
	rs, err := ConvertRecordSet(in)
	if err != nil {
		t.Fatal(err)
	}
	*in.Weight = 7
	if rs.Policy.Weight == nil || *rs.Policy.Weight != 0 {
		t.Errorf("weight %v aliases the input", rs.Policy.Weight)
	}
}

func FuzzConvertRecordSet(f *testing.F) {
	f.Add(`\052.example.com.`, "A", "192.0.2.1", "", "", false)
	f.Add("www.example.com", "TXT", `"a\"b" "c\344d"`, `"x" "y"`, "", false)
	f.Add("example.com.", "SOA", "ns-1.awsdns-00.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400", "", "", false)
	f.Add("example.com.", "NAPTR", `100 50 "u" "E2U+sip" "!^.*$!sip:\\1@example.com!" .`, "", "", false)
	f.Add("example.com.", "HTTPS", `1 . alpn="h3,h2" ipv4hint=192.0.2.1`, "0 www.example.com", "", false)
	f.Add("example.com.", "MX", "10 Mail.Example.com", "20 mx2", "", false)
	f.Add("example.com.", "A", "", "", `dualstack.lb.us-east-1.elb.amazonaws.com.`, true)
	f.Add(`a\100b\040c.example.`, "CNAME", `\052.example.com`, "", `\052.example.com.`, true)
	f.Fuzz(func(t *testing.T, name, typ, v1, v2, aliasName string, alias bool) {
		in := types.ResourceRecordSet{Name: aws.String(name), Type: types.RRType(typ)}
		if alias {
			in.AliasTarget = &types.AliasTarget{DNSName: aws.String(aliasName), HostedZoneId: aws.String("Z1")}
		} else {
			in.TTL = aws.Int64(300)
			in.ResourceRecords = []types.ResourceRecord{{Value: aws.String(v1)}}
			if v2 != "" {
				in.ResourceRecords = append(in.ResourceRecords, types.ResourceRecord{Value: aws.String(v2)})
			}
		}
		rs, err := ConvertRecordSet(in)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "convert ") {
				t.Fatalf("error does not name the set: %v", err)
			}
		} else {
			checkRecordSet(t, in, rs)
		}

		// Names: whatever UnescapeName accepts must survive EscapeName and miekg.
		for _, n := range []string{name, aliasName} {
			canon, err := UnescapeName(n)
			if err != nil {
				continue
			}
			if back, err := UnescapeName(EscapeName(canon)); err != nil || back != canon {
				t.Fatalf("UnescapeName(EscapeName(%q)) = %q, %v", canon, back, err)
			}
			if want := canonicalViaWire(t, canon); want != canon {
				t.Fatalf("UnescapeName(%q) = %q, miekg gives %q", n, canon, want)
			}
		}
		_ = EscapeName(name) // must not panic on arbitrary input
	})
}

// TestFastAddressParse: the direct A/AAAA parse gives exactly what the
// zone parser and wire round trip give.
func TestFastAddressParse(t *testing.T) {
	for _, tc := range []struct {
		typ   uint16
		value string
	}{
		{dns.TypeA, "192.0.2.1"}, {dns.TypeA, "0.0.0.0"}, {dns.TypeA, "255.255.255.255"},
		{dns.TypeAAAA, "2001:db8::1"}, {dns.TypeAAAA, "::"}, {dns.TypeAAAA, "::ffff:192.0.2.1"}, {dns.TypeAAAA, "2001:DB8:0:0:0:0:0:1"},
	} {
		fast := parseAddress("www.example.com.", 300, tc.typ, tc.value)
		if fast == nil {
			t.Fatalf("%s: fast path declined", tc.value)
		}
		zp := dns.NewZoneParser(strings.NewReader("www.example.com. 300 IN "+dns.TypeToString[tc.typ]+" "+tc.value+"\n"), ".", "")
		slow, _ := zp.Next()
		slow, err := wireCanonical(slow)
		if err != nil {
			t.Fatal(err)
		}
		if fast.String() != slow.String() || !dns.IsDuplicate(fast, slow) {
			t.Errorf("%s: fast %v, slow %v", tc.value, fast, slow)
		}
	}
	for _, bad := range []string{"192.0.2.1 ", "1.2.3", "::1%eth0", "2001:db8::1"} {
		if parseAddress("x.", 1, dns.TypeA, bad) != nil && bad != "2001:db8::1" {
			t.Errorf("%q accepted as A", bad)
		}
	}
	if parseAddress("x.", 1, dns.TypeA, "2001:db8::1") != nil || parseAddress("x.", 1, dns.TypeAAAA, "192.0.2.1") != nil {
		t.Error("address family mix-up accepted")
	}
}

// TestUnescapeNamePlain checks the no-copy path of UnescapeName against
// the wire round trip: every name plainName takes must come back from
// the round trip unchanged, and names it refuses must still convert.
func TestUnescapeNamePlain(t *testing.T) {
	long := strings.Repeat("a", 63)
	tooLong := strings.Repeat("a", 64)
	deep := strings.Repeat(long+".", 3) + strings.Repeat("b", 61) + "." // 253 bytes, 255 in wire form
	for _, tc := range []struct {
		name  string
		plain bool
	}{
		{"www.example.com.", true},
		{"*.example.com.", true},
		{"_dmarc.a-b.example.", true},
		{"x1.0.example.", true},
		{long + ".example.", true},
		{deep, true},
		{"b" + deep, false}, // 256 bytes in wire form: an error
		{tooLong + ".example.", false},
		{".", false},
		{"a..example.", false},
		{".example.", false},
		{"www.example.com", false},
		{"WWW.example.com.", false},
		{`\052.example.com.`, false},
		{"a b.example.", false},
		{"a@b.example.", false},
		{"a/b.example.", false},
		{"a\x80b.example.", false},
	} {
		if got := plainName(tc.name); got != tc.plain {
			t.Errorf("plainName(%q) = %v, want %v", tc.name, got, tc.plain)
		}
		slow, slowErr := unescapeNameWire(tc.name)
		if tc.plain && (slowErr != nil || slow != tc.name) {
			t.Errorf("plain %q: the round trip gives %q, %v", tc.name, slow, slowErr)
		}
		got, err := UnescapeName(tc.name)
		if got != slow || (err == nil) != (slowErr == nil) {
			t.Errorf("UnescapeName(%q) = %q, %v; round trip %q, %v", tc.name, got, err, slow, slowErr)
		}
	}
}
