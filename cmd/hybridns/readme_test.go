package main

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// readmeTable returns the rows of the README table whose header line is
// header, each split into cells (a \| inside a cell is kept).
func readmeTable(t *testing.T, readme, header string) [][]string {
	t.Helper()
	i := strings.Index(readme, header+"\n")
	if i < 0 {
		t.Fatalf("README has no table %q", header)
	}
	var rows [][]string
	for _, line := range strings.Split(readme[i:], "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		line = strings.ReplaceAll(strings.Trim(line, "|"), `\|`, "\x00")
		var cells []string
		for _, c := range strings.Split(line, "|") {
			cells = append(cells, strings.TrimSpace(strings.ReplaceAll(c, "\x00", "|")))
		}
		rows = append(rows, cells)
	}
	return rows
}

// yamlKeys collects every key name of the config type, at any depth.
func yamlKeys(t reflect.Type, into map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(time.Duration(0)) {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if name := yamlName(f); name != "" {
			into[name] = true
			yamlKeys(f.Type, into)
		}
	}
}

var (
	backticked = regexp.MustCompile("`([^`]*)`")
	keyWord    = regexp.MustCompile(`[a-z][a-z0-9_]*`)
	flagWord   = regexp.MustCompile(`--([a-z0-9-]+)`)
)

// TestReadmeMatchesCLI fails when the README's command, flag and config
// key tables and the code disagree: every command listed, every flag once
// with the key it sets and the default the help shows, every config key
// (at any depth) documented, and nothing documented that does not exist.
func TestReadmeMatchesCLI(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	app := newApp()

	var commands []string
	for _, row := range readmeTable(t, readme, "| command | what it does |") {
		if m := regexp.MustCompile("^`hybridns ([a-z]+)").FindStringSubmatch(row[0]); m != nil {
			commands = append(commands, m[1])
		}
	}
	for _, c := range app.Commands {
		if !slices.Contains(commands, c.Name) {
			t.Errorf("README's command table lacks %q", c.Name)
		}
	}
	for _, name := range commands {
		if app.Command(name) == nil {
			t.Errorf("README lists a command %q the CLI does not have", name)
		}
	}

	flags := map[string]cli.Flag{}
	for _, f := range configFlags() {
		flags[f.Names()[0]] = f
	}
	keyOfFlag := map[string]string{}
	for k, f := range flagKeys {
		keyOfFlag[f] = k
	}
	documented := map[string]bool{}
	seen := map[string]int{}
	for _, row := range readmeTable(t, readme, "| flag | config key | default | meaning |") {
		if len(row) != 4 {
			t.Errorf("row with %d cells: %q", len(row), row)
			continue
		}
		for _, m := range backticked.FindAllStringSubmatch(row[1], -1) {
			for _, w := range keyWord.FindAllString(m[1], -1) {
				documented[w] = true
			}
		}
		for _, m := range flagWord.FindAllStringSubmatch(row[0], -1) {
			name := m[1]
			seen[name]++
			f, ok := flags[name]
			if !ok {
				t.Errorf("README documents a flag --%s the CLI does not have", name)
				continue
			}
			if key := keyOfFlag[name]; key != "" && !strings.Contains(row[1], "`"+key) && !strings.Contains(row[1], key+"`") {
				t.Errorf("README: --%s sets %s, its row says %q", name, key, row[1])
			}
			if dt := defaultText(f); dt != "" && !strings.Contains(strings.ReplaceAll(row[2], "`", ""), dt) {
				t.Errorf("README: --%s defaults to %q in the help, %q in the README", name, dt, row[2])
			}
		}
	}
	for name := range flags {
		if seen[name] != 1 {
			t.Errorf("README's flag table has --%s %d times, want once", name, seen[name])
		}
	}
	keys := map[string]bool{}
	yamlKeys(reflect.TypeOf(Config{}), keys)
	var missing, unknown []string
	for k := range keys {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for w := range documented {
		if !keys[w] {
			unknown = append(unknown, w)
		}
	}
	sort.Strings(missing)
	sort.Strings(unknown)
	if len(missing) > 0 {
		t.Errorf("config keys missing from the README's table: %v", missing)
	}
	if len(unknown) > 0 {
		t.Errorf("README's table names keys the config does not have: %v", unknown)
	}
}

func defaultText(f cli.Flag) string {
	if d, ok := f.(cli.DocGenerationFlag); ok {
		if v := reflect.ValueOf(f).Elem().FieldByName("DefaultText"); v.IsValid() {
			return v.String()
		}
		_ = d
	}
	return ""
}

// TestHelpTellsTheTruth: no placeholder word that is not a placeholder,
// no default shown twice, and `check --help` lists only what check uses.
func TestHelpTellsTheTruth(t *testing.T) {
	for _, cmd := range newApp().Commands {
		for _, f := range cmd.Flags {
			s := f.String()
			if strings.Count(s, "(default") > 1 {
				t.Errorf("%s: two defaults: %s", cmd.Name, s)
			}
			if regexp.MustCompile(`\(default: (0s|0|false)\)`).MatchString(s) && !strings.Contains(s, "FRACTION") {
				t.Errorf("%s: the zero value shown as default: %s", cmd.Name, s)
			}
			if regexp.MustCompile(`^--[a-z0-9-]+ (off|vpc|value)[ \t,]`).MatchString(strings.TrimSpace(s)) {
				t.Errorf("%s: placeholder word: %s", cmd.Name, s)
			}
		}
	}
	var names []string
	for _, f := range newApp().Command("check").Flags {
		names = append(names, f.Names()[0])
	}
	for _, runtimeOnly := range []string{"lame-duck", "proxy-protocol", "http-listen", "log-queries", "route53-interval"} {
		if slices.Contains(names, runtimeOnly) {
			t.Errorf("check --help lists --%s, which check does not use", runtimeOnly)
		}
	}
}
