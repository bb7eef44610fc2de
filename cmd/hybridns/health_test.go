package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"hybridns/server"
)

func runHealth(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Writer: &out, ErrWriter: &out, ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{{Name: "health", Flags: healthFlags(), Action: healthCmd}}}
	err := app.Run(append([]string{"hybridns", "health"}, args...))
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return err.Error(), ec.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

// TestHealthCommand: exit 0 while /healthz says ok, 1 when the DNS side
// does not answer, 1 when nothing listens; --ready asks /readyz.
func TestHealthCommand(t *testing.T) {
	d := testDaemon(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := serveHTTP(ln, d.mux(), slog.New(slog.DiscardHandler))
	defer hs.Close()
	addr := ln.Addr().String()

	if out, code := runHealth(t, "--http", addr); code != 1 || out != "hybridns: unhealthy: /healthz 503 Service Unavailable: dns not answering: no listener" {
		t.Errorf("no DNS listener: exit %d %q", code, out)
	}
	// Now with the DNS side listening.
	srv, err := server.New(server.Config{Store: d.store, Listen: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	d.srv = srv
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs2 := serveHTTP(ln2, d.mux(), slog.New(slog.DiscardHandler))
	defer hs2.Close()
	addr2 := ln2.Addr().String()
	if out, code := runHealth(t, "--http", addr2); code != 0 || out != "ok\n" {
		t.Errorf("healthy: exit %d %q", code, out)
	}
	if out, code := runHealth(t, "--http", addr2, "--quiet"); code != 0 || out != "" {
		t.Errorf("healthy, quiet: exit %d %q", code, out)
	}
	if out, code := runHealth(t, "--http", addr2, "--ready"); code != 1 || out != "hybridns: unhealthy: /readyz 503 Service Unavailable: not ready: zones still loading" {
		t.Errorf("--ready before loading: exit %d %q", code, out)
	}
	d.loaded.Store(true)
	if _, code := runHealth(t, "--http", addr2, "--ready"); code != 0 {
		t.Errorf("--ready when ready: exit %d", code)
	}
	hs2.Close()
	if out, code := runHealth(t, "--http", addr2, "--timeout", "2s"); code != 1 || !bytes.Contains([]byte(out), []byte("connection refused")) {
		t.Errorf("nothing listening: exit %d %q", code, out)
	}
}

func TestHTTPTarget(t *testing.T) {
	for in, want := range map[string]string{":8053": "127.0.0.1:8053", "0.0.0.0:8053": "127.0.0.1:8053", "[::]:8053": "[::1]:8053", "10.0.0.5:8053": "10.0.0.5:8053"} {
		if got := httpTarget(in); got != want {
			t.Errorf("httpTarget(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBindHint(t *testing.T) {
	err := bindHint(&net.OpError{Op: "listen", Net: "udp", Err: os.NewSyscallError("bind", syscall.EACCES)})
	if err == nil || !strings.Contains(err.Error(), "net.ipv4.ip_unprivileged_port_start=53") || !strings.Contains(err.Error(), "--cap-add NET_BIND_SERVICE") {
		t.Errorf("no hint: %v", err)
	}
	other := errors.New("listen udp 127.0.0.1:53: bind: address already in use")
	if bindHint(other) != other {
		t.Error("hint added to an unrelated error")
	}
}

// TestKubernetesExample: the manifest's embedded config validates, and the
// probes and ports are the ones the README promises.
func TestKubernetesExample(t *testing.T) {
	data, err := os.ReadFile("../../examples/kubernetes/hybridns.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	kinds := map[string]map[string]any{}
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		kinds[doc["kind"].(string)] = doc
	}
	cm := kinds["ConfigMap"]["data"].(map[string]any)
	cfg, err := parseConfig([]byte(cm["hybridns.yaml"].(string)), "hybridns.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ZoneDir = "" // a path of the pod
	cfg.ResolvConf = "/etc/resolv.conf"
	if err := cfg.validate(); err != nil {
		t.Errorf("ConfigMap config: %v", err)
	}
	text := string(data)
	for _, want := range []string{"path: /readyz", "path: /healthz", "containerPort: 53, protocol: UDP", "containerPort: 53, protocol: TCP",
		"net.ipv4.ip_unprivileged_port_start", "allowPrivilegeEscalation: false", "kind: Service", "kind: Deployment"} {
		if !strings.Contains(text, want) {
			t.Errorf("manifest lacks %q", want)
		}
	}
	docker, _ := os.ReadFile("../../Dockerfile")
	for _, want := range []string{"EXPOSE 53/udp 53/tcp", `HEALTHCHECK`, `"health"`} {
		if !strings.Contains(string(docker), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if strings.Contains(string(docker), "setcap") {
		t.Error("Dockerfile relies on a file capability")
	}
	unit, _ := os.ReadFile("../../examples/hybridns.service")
	if strings.Contains(string(unit), "Environment=HYBRIDNS_") || strings.Contains(string(unit), "--log-format") {
		t.Error("the systemd unit overrides the YAML by environment or flag")
	}
}
