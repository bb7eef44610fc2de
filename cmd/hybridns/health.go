package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// healthCmd is `hybridns health`: exit 0 when the instance's /healthz (or
// /readyz with --ready) answers 200, non-zero otherwise — a HEALTHCHECK for
// an image without a shell or curl (distroless).
func healthCmd(c *cli.Context) error {
	path := "/healthz"
	if c.Bool("ready") {
		path = "/readyz"
	}
	cl := &http.Client{Timeout: c.Duration("timeout")}
	resp, err := cl.Get("http://" + httpTarget(c.String("http")) + path)
	if err != nil {
		return cli.Exit(fmt.Sprintf("hybridns: unhealthy: %v", err), 1)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return cli.Exit(fmt.Sprintf("hybridns: unhealthy: %s %s: %s", path, resp.Status, msg), 1)
	}
	if !c.Bool("quiet") {
		fmt.Fprintln(c.App.Writer, msg)
	}
	return nil
}

func healthFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "http", Value: "127.0.0.1:8053", Usage: "ask the instance's HTTP endpoint at `ADDR` (its http_listen)", EnvVars: []string{"HYBRIDNS_HTTP_LISTEN"}},
		&cli.DurationFlag{Name: "timeout", Value: 3 * time.Second, Usage: "give up after `DURATION`"},
		&cli.BoolFlag{Name: "ready", Usage: "ask /readyz (serving every zone, not draining) instead of /healthz (answering DNS)", DefaultText: "off"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing when healthy", DefaultText: "off"},
	}
}

// httpTarget turns an http_listen address into one to dial: a wildcard or
// missing host (":8053", "0.0.0.0:8053", "[::]:8053") is the loopback.
func httpTarget(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
		if a.Is4() {
			return net.JoinHostPort("127.0.0.1", port)
		}
		return net.JoinHostPort("::1", port)
	}
	return addr
}

// bindHint adds what to do to a listen error the kernel refused: a port
// below 1024 needs CAP_NET_BIND_SERVICE or a lower
// net.ipv4.ip_unprivileged_port_start, and file capabilities do not
// survive every image builder.
func bindHint(err error) error {
	if err == nil || !(errors.Is(err, syscall.EACCES) || strings.Contains(err.Error(), "permission denied")) {
		return err
	}
	return fmt.Errorf("%w\nhint: a port below 1024 needs one of: the sysctl net.ipv4.ip_unprivileged_port_start=53 (Kubernetes: securityContext.sysctls; Docker sets 0 by default since 20.10), the capability NET_BIND_SERVICE (docker run --cap-add NET_BIND_SERVICE; systemd AmbientCapabilities=CAP_NET_BIND_SERVICE), or listen on a port above 1023 and map 53 to it", err)
}
