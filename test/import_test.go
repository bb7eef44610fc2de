package test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"hybridns/test/r53fake"
	"hybridns/test/refserver"
)

// fakeSets describes a fake zone's sets (name type set-id TTL values or
// alias), sorted, for comparing states.
func fakeSets(f *r53fake.Fake, zid string) []string {
	var out []string
	for _, rs := range f.RecordSets(zid) {
		line := []string{aws.ToString(rs.Name), string(rs.Type), aws.ToString(rs.SetIdentifier)}
		if rs.TTL != nil {
			line = append(line, strconv.FormatInt(*rs.TTL, 10))
		}
		for _, r := range rs.ResourceRecords {
			line = append(line, aws.ToString(r.Value))
		}
		if a := rs.AliasTarget; a != nil {
			line = append(line, "alias", aws.ToString(a.DNSName), aws.ToString(a.HostedZoneId))
		}
		out = append(out, strings.Join(line, " "))
	}
	slices.Sort(out)
	return out
}

// TestImportCommand runs `hybridns import` against the Route 53 fake:
// the export of a zone imports as no change and no call; a changed file
// with --dry-run prints the plan and changes nothing; without it exactly
// the changed sets change; a bad file changes nothing.
func TestImportCommand(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETFAKE")
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("shop.example", false)
	weighted := func(rs types.ResourceRecordSet, id string, w int64) types.ResourceRecordSet {
		rs.SetIdentifier, rs.Weight = aws.String(id), aws.Int64(w)
		return rs
	}
	seed(t, f, zid,
		r53set("www.shop.example", "A", 300, "198.51.100.10"),
		r53set("old.shop.example", "TXT", 300, `"retire me"`),
		weighted(r53set("canary.shop.example", "A", 60, "198.51.100.21"), "stable", 3),
		weighted(r53set("canary.shop.example", "A", 60, "198.51.100.22"), "canary", 1),
		types.ResourceRecordSet{Name: aws.String("shop.example"), Type: "A",
			AliasTarget: &types.AliasTarget{DNSName: aws.String("www.shop.example."), HostedZoneId: aws.String(zid)}},
	)
	dir := t.TempDir()
	out, code := runCmd(t, dir, bin, "export", "--zone", zid, "--route53-endpoint", url)
	if code != 0 {
		t.Fatalf("export: exit %d\n%s", code, out)
	}
	exported := filepath.Join(dir, "shop.zone")
	os.WriteFile(exported, []byte(out), 0o644)
	calls := func() int { return f.Calls("ChangeResourceRecordSets") }

	out, code = runCmd(t, dir, bin, "import", "--zone", zid, "--route53-endpoint", url, exported)
	if code != 0 || !strings.Contains(out, "0 changes in 0 batches, 5 record sets unchanged") || !strings.Contains(out, "nothing to change") || calls() != 0 {
		t.Fatalf("import of the export: exit %d, %d calls\n%s", code, calls(), out)
	}

	changed := strings.Replace(mustRead(t, exported), "198.51.100.10", "198.51.100.99", 1)
	changed = strings.Replace(changed, "old.shop.example.\t300\tIN\tTXT\t\"retire me\"\n", "", 1)
	changed += "shop.example. 300 IN MX 10 mail.shop.example.\nstatic 120 IN CNAME www\n"
	edited := filepath.Join(dir, "edited.zone")
	os.WriteFile(edited, []byte(changed), 0o644)
	before := fakeSets(f, zid)
	wantPlan := []string{
		"  UPSERT www.shop.example. A 300 198.51.100.99\n",
		"  DELETE old.shop.example. TXT 300 \"retire me\"\n",
		"  CREATE shop.example. MX 300 10 mail.shop.example.\n",
		"  CREATE static.shop.example. CNAME 120 www.shop.example.\n",
	}

	// --dry-run after the file, and the zone by name.
	out, code = runCmd(t, dir, bin, "import", "--zone", "shop.example", "--route53-endpoint", url, edited, "--dry-run")
	t.Logf("hybridns import --dry-run:\n%s", out)
	if code != 0 || !strings.Contains(out, "4 changes in 1 batches") || !strings.Contains(out, "dry run: nothing changed") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	for _, w := range wantPlan {
		if !strings.Contains(out, w) {
			t.Errorf("plan lacks %q:\n%s", w, out)
		}
	}
	if calls() != 0 || !slices.Equal(fakeSets(f, zid), before) {
		t.Fatalf("dry run changed something: %d calls\n%v", calls(), fakeSets(f, zid))
	}

	out, code = runCmd(t, dir, bin, "import", "--zone", zid, "--route53-endpoint", url, edited)
	if code != 0 || !strings.Contains(out, "batch 1/1 accepted: change ") || !strings.Contains(out, "imported: 4 changes in 1 batches") || calls() != 1 {
		t.Fatalf("import: exit %d, %d calls\n%s", code, calls(), out)
	}
	after := fakeSets(f, zid)
	var want []string
	for _, s := range before {
		switch {
		case strings.HasPrefix(s, "old.shop.example. TXT"):
		case strings.HasPrefix(s, "www.shop.example. A"):
			want = append(want, "www.shop.example. A  300 198.51.100.99")
		default:
			want = append(want, s)
		}
	}
	want = append(want, "shop.example. MX  300 10 mail.shop.example.", "static.shop.example. CNAME  120 www.shop.example.")
	slices.Sort(want)
	if !slices.Equal(after, want) {
		t.Fatalf("after the import:\n%s\nwant\n%s", strings.Join(after, "\n"), strings.Join(want, "\n"))
	}

	// Again: nothing left to do.
	out, code = runCmd(t, dir, bin, "import", "--zone", zid, "--route53-endpoint", url, edited)
	if code != 0 || !strings.Contains(out, "nothing to change") || calls() != 1 {
		t.Fatalf("second import: exit %d, %d calls\n%s", code, calls(), out)
	}

	// A bad file: an error naming the problem, nothing sent.
	bad := filepath.Join(dir, "bad.zone")
	os.WriteFile(bad, []byte("www.elsewhere.example. 60 IN A 192.0.2.1\n"), 0o644)
	out, code = runCmd(t, dir, bin, "import", "--zone", zid, "--route53-endpoint", url, bad)
	if code == 0 || !strings.Contains(out, "outside the zone") || calls() != 1 {
		t.Fatalf("bad file: exit %d, %d calls\n%s", code, calls(), out)
	}
}
