// Package refserver starts DNS servers on loopback for differential tests:
// the reference implementations BIND 9 (named) and Knot DNS (knotd), and a
// built hybridns binary. Every server runs as a child process in a
// t.TempDir(), listens on 127.0.0.1 only, on a free port, and is stopped by
// t.Cleanup. It is for tests only.
package refserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Zone is one zone to serve: its origin (fully qualified or not) and the
// path of its RFC 1035 master file.
type Zone struct {
	Origin string
	File   string
}

// Server is a running DNS server child process.
type Server struct {
	Name string // "named", "knotd" or "hybridns"
	Addr string // 127.0.0.1:PORT, UDP and TCP
	Dir  string // its working directory

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  *syncBuffer
}

// PID is the server process's id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Log returns what the server has written to stdout and stderr so far.
func (s *Server) Log() string { return s.log.String() }

const (
	startAttempts = 3
	stopTimeout   = 5 * time.Second
)

// ReadyTimeout is how long a server may take to answer for its zones
// (tests of very large zones raise it).
var ReadyTimeout = 15 * time.Second

// InstallHint is the advice given when a reference server is missing.
const InstallHint = "run the project's CI setup (`bash .ci/run`) or install it: `apt-get install -y bind9 bind9-dnsutils knot`"

// lookBin finds a server binary in PATH or the usual sbin directories.
func lookBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH nor in /usr/sbin", name)
}

// FreePort returns a port that was free on 127.0.0.1 for both TCP and UDP a
// moment ago. Another process may take it before the caller binds it; the
// Start functions retry on a new port when that happens.
func FreePort() (int, error) {
	for i := 0; i < 20; i++ {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := tl.Addr().(*net.TCPAddr).Port
		ul, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		tl.Close()
		if err != nil {
			continue // UDP side taken: try another
		}
		ul.Close()
		return port, nil
	}
	return 0, errors.New("no port free for both TCP and UDP on 127.0.0.1")
}

// fqdn returns origin fully qualified and in lower case.
func fqdn(origin string) string { return strings.ToLower(dns.Fqdn(origin)) }

// StartNamed runs BIND 9's named, authoritative only (recursion no), serving
// zones as primary. The test fails (it does not skip) when named is missing.
func StartNamed(t testing.TB, zones []Zone) *Server {
	t.Helper()
	bin, err := lookBin("named")
	if err != nil {
		t.Fatalf("BIND 9 is required for this test and is missing (%v): %s", err, InstallHint)
	}
	return start(t, "named", zones, func(dir string, port int) ([]string, error) {
		var b strings.Builder
		fmt.Fprintf(&b, `options {
	directory %q;
	pid-file %q;
	session-keyfile %q;
	managed-keys-directory %q;
	listen-on port %d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	notify no;
	dnssec-validation no;
	check-names primary ignore;
	minimal-responses no-auth;
	allow-query { any; };
	allow-transfer { none; };
};
controls { };
`, dir, filepath.Join(dir, "named.pid"), filepath.Join(dir, "session.key"), dir, port)
		for _, z := range zones {
			abs, err := filepath.Abs(z.File)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "zone %q { type primary; file %q; };\n", fqdn(z.Origin), abs)
		}
		conf := filepath.Join(dir, "named.conf")
		if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
		// -g: foreground, log to stderr; -4: IPv4 only; -n 1: one worker.
		// named runs as root here without -u (it keeps the current user).
		return []string{bin, "-g", "-4", "-n", "1", "-c", conf}, nil
	})
}

// StartKnot runs Knot DNS's knotd serving zones. The test fails when knotd
// is missing.
func StartKnot(t testing.TB, zones []Zone) *Server {
	t.Helper()
	bin, err := lookBin("knotd")
	if err != nil {
		t.Fatalf("Knot DNS is required for this test and is missing (%v): %s", err, InstallHint)
	}
	return start(t, "knotd", zones, func(dir string, port int) ([]string, error) {
		var b strings.Builder
		fmt.Fprintf(&b, `server:
  rundir: %q
  listen: 127.0.0.1@%d
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
database:
  storage: %q
log:
  - target: stderr
    any: info
template:
  - id: default
    storage: %q
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
`, dir, port, dir, dir)
		for _, z := range zones {
			abs, err := filepath.Abs(z.File)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "  - domain: %q\n    file: %q\n", fqdn(z.Origin), abs)
		}
		conf := filepath.Join(dir, "knot.conf")
		if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
		return []string{bin, "-c", conf}, nil
	})
}

// StartHybridns runs a built hybridns binary as
// `BIN serve --listen 127.0.0.1:PORT --zone-dir zoneDir`. The zones it waits
// for are read from zoneDir: every file named `<origin>.zone`.
func StartHybridns(t testing.TB, bin, zoneDir string) *Server {
	t.Helper()
	ents, err := os.ReadDir(zoneDir)
	if err != nil {
		t.Fatalf("hybridns zone dir: %v", err)
	}
	var zones []Zone
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".zone") {
			zones = append(zones, Zone{
				Origin: strings.TrimSuffix(e.Name(), ".zone"),
				File:   filepath.Join(zoneDir, e.Name()),
			})
		}
	}
	if len(zones) == 0 {
		t.Fatalf("hybridns zone dir %s holds no <origin>.zone file", zoneDir)
	}
	return start(t, "hybridns", zones, func(dir string, port int) ([]string, error) {
		return []string{bin, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--zone-dir", zoneDir, "--http-listen", "off", "--lame-duck", "0s"}, nil
	})
}

// StartHybridnsArgs runs `BIN serve --listen 127.0.0.1:PORT ARGS...` and waits
// until every zone in zones answers its SOA (none: until the process has
// bound its port and answers at all).
func StartHybridnsArgs(t testing.TB, bin string, zones []Zone, args ...string) *Server {
	t.Helper()
	// Several instances run at once: the HTTP endpoint is off unless the
	// test asks for one (flag or config file), and SIGTERM stops at once
	// unless the test sets a lame-duck period.
	var extra []string
	if !slices.Contains(args, "--http-listen") && !slices.Contains(args, "--config") {
		extra = append(extra, "--http-listen", "off")
	}
	if !slices.Contains(args, "--lame-duck") && !slices.Contains(args, "--config") {
		extra = append(extra, "--lame-duck", "0s")
	}
	return start(t, "hybridns", zones, func(dir string, port int) ([]string, error) {
		return append(append([]string{bin, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port)}, extra...), args...), nil
	})
}

// Signal sends sig to the server process.
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Wait waits up to d for the process to exit and returns its exit code, or
// -1 and an error if it is still running.
func (s *Server) Wait(d time.Duration) (int, error) {
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode(), nil
	case <-time.After(d):
		return -1, fmt.Errorf("%s still running after %v", s.Name, d)
	}
}

var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// BuildHybridns builds ./cmd/hybridns of the module that contains the
// working directory (found with `go env GOMOD`), once per test binary, and
// returns the binary's path. It fails the test, with the compiler's output,
// when the command does not exist or does not build. Call CleanupBuild from
// TestMain to remove the binary afterwards.
func BuildHybridns(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			build.err = fmt.Errorf("go env GOMOD: %v", err)
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			build.err = errors.New("not inside a Go module (go env GOMOD is empty)")
			return
		}
		root := filepath.Dir(gomod)
		if _, err := os.Stat(filepath.Join(root, "cmd", "hybridns")); err != nil {
			build.err = fmt.Errorf("%s/cmd/hybridns does not exist yet: nothing to build (%v)", root, err)
			return
		}
		build.dir, err = os.MkdirTemp("", "hybridns-build-")
		if err != nil {
			build.err = err
			return
		}
		bin := filepath.Join(build.dir, "hybridns")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/hybridns")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/hybridns in %s: %v\n%s", root, err, out)
			return
		}
		build.bin = bin
	})
	if build.err != nil {
		t.Fatalf("cannot build hybridns: %v", build.err)
	}
	return build.bin
}

// CleanupBuild removes what BuildHybridns built.
func CleanupBuild() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

// start runs the server that argv(dir, port) describes until it answers an
// authoritative SOA for every zone, retrying on a new port when the process
// exits early (typically: the port was taken in the meantime).
func start(t testing.TB, name string, zones []Zone, argv func(dir string, port int) ([]string, error)) *Server {
	t.Helper()
	return Start(t, name, 0, zones, argv)
}

// Start runs the command argv makes for a working directory and a port, and
// waits until every zone in zones answers its SOA (none: until it answers
// at all). Port 0 picks a free port (and retries on another if the start
// fails); a fixed port is tried once — for peers whose configs must name
// each other's ports (a primary's also-notify, a secondary's primaries).
func Start(t testing.TB, name string, fixedPort int, zones []Zone, argv func(dir string, port int) ([]string, error)) *Server {
	t.Helper()
	var lastErr error
	var lastLog string
	attempts := startAttempts
	if fixedPort != 0 {
		attempts = 1
	}
	for attempt := 1; attempt <= attempts; attempt++ {
		port, err := fixedPort, error(nil)
		if port == 0 {
			port, err = FreePort()
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		dir := t.TempDir()
		args, err := argv(dir, port)
		if err != nil {
			t.Fatalf("%s: writing its configuration: %v", name, err)
		}
		s := &Server{
			Name: name,
			Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			Dir:  dir,
			done: make(chan struct{}),
			log:  &syncBuffer{},
		}
		s.cmd = exec.Command(args[0], args[1:]...)
		s.cmd.Dir = dir
		s.cmd.Stdout = s.log
		s.cmd.Stderr = s.log
		// Kill the server if the test binary dies without running cleanups.
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("%s: starting %q: %v", name, args, err)
		}
		go func() { s.cmd.Wait(); close(s.done) }()
		t.Cleanup(s.stop)

		err = s.waitReady(zones)
		if err == nil {
			t.Logf("%s is serving %d zone(s) on %s", name, len(zones), s.Addr)
			return s
		}
		s.stop()
		lastErr, lastLog = err, s.Log()
		t.Logf("%s: attempt %d on port %d failed: %v", name, attempt, port, err)
	}
	t.Fatalf("%s did not start after %d attempts: %v\n--- %s output ---\n%s", name, startAttempts, lastErr, name, lastLog)
	return nil
}

// waitReady polls every zone's SOA until each is answered authoritatively.
func (s *Server) waitReady(zones []Zone) error {
	deadline := time.Now().Add(ReadyTimeout)
	c := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	pending := make([]string, 0, len(zones))
	for _, z := range zones {
		pending = append(pending, fqdn(z.Origin))
	}
	var last string
	if len(pending) == 0 {
		// No zone to wait for: any answer at all means it is listening.
		pending = append(pending, "")
	}
	for len(pending) > 0 {
		select {
		case <-s.done:
			return fmt.Errorf("exited early (%v)", s.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no authoritative SOA for %v within %v (last: %s)", pending, ReadyTimeout, last)
		}
		m := new(dns.Msg)
		m.SetQuestion(max(pending[0], "."), dns.TypeSOA)
		m.RecursionDesired = false
		r, _, err := c.Exchange(m, s.Addr)
		switch {
		case err != nil:
			last = err.Error()
		case pending[0] == "":
			pending = pending[1:]
			continue
		case r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) == 0 || r.Answer[0].Header().Rrtype != dns.TypeSOA:
			last = fmt.Sprintf("%s rcode=%s aa=%v answers=%d", pending[0], dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer))
		default:
			pending = pending[1:]
			continue
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// stop terminates the process: SIGTERM, then SIGKILL after stopTimeout.
func (s *Server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a child's
// stdout and stderr and reads by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// StartNamedConfig runs named with options lines of ours plus options (put
// inside `options { }`) and statements (keys, zones: typically
// secondaries), and waits until every zone in wait answers an
// authoritative SOA. Paths in statements are relative to Dir.
func StartNamedConfig(t testing.TB, wait []Zone, options, statements string) *Server {
	t.Helper()
	bin, err := lookBin("named")
	if err != nil {
		t.Fatalf("BIND 9 is required for this test and is missing (%v): %s", err, InstallHint)
	}
	return start(t, "named", wait, func(dir string, port int) ([]string, error) {
		conf := fmt.Sprintf(`options {
	directory %q;
	pid-file %q;
	session-keyfile %q;
	managed-keys-directory %q;
	listen-on port %d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	notify no;
	dnssec-validation no;
	check-names secondary ignore;
	allow-query { any; };
	allow-transfer { none; };
%s
};
controls { };
%s
`, dir, filepath.Join(dir, "named.pid"), filepath.Join(dir, "session.key"), dir, port, options, statements)
		path := filepath.Join(dir, "named.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		return []string{bin, "-g", "-4", "-n", "1", "-c", path}, nil
	})
}

// StartKnotConfig runs knotd with our server, database and log sections
// followed by body (key, remote, acl, template and zone sections), and
// waits until every zone in wait answers an authoritative SOA.
func StartKnotConfig(t testing.TB, wait []Zone, body func(dir string) string) *Server {
	t.Helper()
	bin, err := lookBin("knotd")
	if err != nil {
		t.Fatalf("Knot DNS is required for this test and is missing (%v): %s", err, InstallHint)
	}
	return start(t, "knotd", wait, func(dir string, port int) ([]string, error) {
		conf := fmt.Sprintf(`server:
  rundir: %q
  listen: 127.0.0.1@%d
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
database:
  storage: %q
log:
  - target: stderr
    any: info
%s`, dir, port, dir, body(dir))
		path := filepath.Join(dir, "knot.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		return []string{bin, "-c", path}, nil
	})
}
