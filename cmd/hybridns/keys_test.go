package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestParseBINDKeys(t *testing.T) {
	text := `# tsig-keygen output
key "ddns-key" {
	algorithm hmac-sha256;
	secret "c2VjcmV0";
};
/* another */ key other. { algorithm hmac-sha512; secret "b3RoZXI="; }; // trailing
`
	keys, err := parseBINDKeys(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != (TSIGKeyConfig{Name: "ddns-key", Algorithm: "hmac-sha256", Secret: "c2VjcmV0"}) ||
		keys[1] != (TSIGKeyConfig{Name: "other.", Algorithm: "hmac-sha512", Secret: "b3RoZXI="}) {
		t.Fatalf("keys = %+v", keys)
	}
	for _, bad := range []string{``, `key "x" { algorithm hmac-sha256; };`, `key "x" { algorithm hmac-sha256; secret "c2VjcmV0" };`, `key "x" { color blue; };`, `key "x" { /* open`} {
		if _, err := parseBINDKeys(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestKeyErrorsNeverShowSecrets: a key that does not validate is reported
// by name; its secret (which may be nearly right) never appears.
func TestKeyErrorsNeverShowSecrets(t *testing.T) {
	const secret = "not-base64-but-secret!!"
	cfg, err := parseConfig([]byte(`
tsig_keys:
  - {name: k1, algorithm: hmac-sha256, secret: "`+secret+`"}
  - {name: k2, algorithm: hmac-sha999, secret: "c2VjcmV0"}
  - {name: k3, algorithm: hmac-sha256, secret: "c2VjcmV0", view: nowhere}
update_policy:
  example.:
    - grant k1 zonesub ANY
    - allow k1 zonesub ANY
    - grant k1 subdomain
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.validate()
	if err == nil {
		t.Fatal("bad keys and rules validated")
	}
	msg := err.Error()
	for _, want := range []string{"tsig key k1: secret is not base64", `k2: unknown algorithm "hmac-sha999"`, `view "nowhere" is not configured`,
		`starts with "allow"`, "subdomain needs a NAME"} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, secret) || strings.Contains(msg, "c2VjcmV0") {
		t.Errorf("a secret is in the errors:\n%s", msg)
	}
}

// TestKeygen: the printed key file reads back as the key, and the key
// validates.
func TestKeygen(t *testing.T) {
	var out bytes.Buffer
	app := &cli.App{Writer: &out}
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.String("algorithm", "hmac-sha512", "")
	fs.Parse([]string{"ddns-key"})
	if err := keygenCmd(cli.NewContext(app, fs, nil)); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	keys, err := parseBINDKeys(text[:strings.Index(text, "# hybridns")])
	if err != nil || len(keys) != 1 || keys[0].Name != "ddns-key" || keys[0].Algorithm != "hmac-sha512" || len(keys[0].Secret) != 88 {
		t.Fatalf("keygen printed:\n%s\n(%+v, %v)", text, keys, err)
	}
	if !strings.Contains(text, `{name: ddns-key, algorithm: hmac-sha512, secret: "`+keys[0].Secret+`"}`) {
		t.Errorf("no tsig_keys entry:\n%s", text)
	}
}
