package zonestore

import (
	"strings"
	"testing"
)

// TestZoneRuleErrorsNameTheLine: errors of zone rules (a record outside
// the zone, CNAME and other data, a second CNAME, SOA not at the apex)
// name the line of the record, as BIND's named-checkzone does.
func TestZoneRuleErrorsNameTheLine(t *testing.T) {
	text := `$ORIGIN corp.example.
$TTL 300
@     IN SOA ns1 hostmaster (
            1 3600 600
            86400 300 )
@     IN NS  ns1
ns1   IN A   192.0.2.53
www   IN A   192.0.2.80
www   IN CNAME web
mail  IN CNAME a
mail  IN CNAME b
host.other.example. IN A 192.0.2.1
sub   IN SOA ns1 hm 1 2 3 4 5
last  IN A 192.0.2.9`
	_, err := ParseZone(strings.NewReader(text), "corp.example.", "db.corp")
	if err == nil {
		t.Fatal("accepted")
	}
	want := "db.corp:12: host.other.example. A: record is outside zone corp.example."
	if err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
	text = strings.Replace(text, "host.other.example. IN A 192.0.2.1\n", "", 1)
	_, err = ParseZone(strings.NewReader(text), "corp.example.", "db.corp")
	got := map[string]bool{}
	for _, l := range strings.Split(err.Error(), "\n") {
		got[l] = true
	}
	for _, w := range []string{
		"db.corp:9: www.corp.example.: CNAME and other data",
		"db.corp:10: mail.corp.example.: more than one CNAME record",
		"db.corp:12: sub.corp.example.: SOA record not at the zone apex corp.example.",
	} {
		if !got[w] {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}
