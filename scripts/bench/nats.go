package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/cart-cqrs/cart/scripts/bench/procs"
)

// natsServer is the NATS the system runs on: a nats-server the benchmark
// started as its own child, or the external one of BENCH_NATS_URL.
type natsServer struct {
	url     string
	version string
	proc    *procs.Proc // nil when external
	// pid is the server's process when it runs here (0: not found), why
	// says why its CPU time cannot be measured.
	pid int
	why string
}

// startNATS runs the nats-server binary with JetStream, storing in dir,
// on free loopback ports, and waits until JetStream is up.
func startNATS(ctx context.Context, bin, dir, logDir string) (*natsServer, error) {
	client, err := procs.FreeAddr()
	if err != nil {
		return nil, err
	}
	monitor, err := procs.FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(client) // FreeAddr returns host:port
	_, mport, _ := net.SplitHostPort(monitor)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	version, err := runTool(ctx, bin, "--version")
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	p, err := procs.Start("nats-server", bin, []string{"-a", "127.0.0.1", "-p", port, "-m", mport, "-js", "-sd", dir}, baseEnv(), logDir)
	if err != nil {
		return nil, err
	}
	if err := p.WaitHTTP(ctx, "http://"+monitor+"/healthz?js-enabled-only=true", readyTimeout); err != nil {
		return nil, fmt.Errorf("nats: %w (stop: %v)", err, p.Stop(stopTimeout))
	}
	return &natsServer{
		url:     "nats://" + client,
		version: strings.TrimPrefix(strings.TrimSpace(version), "nats-server: ") + " (nats-server, a child process of the benchmark)",
		proc:    p, pid: p.Pid(),
	}, nil
}

// externalNATS is BENCH_NATS_URL's server; its process is found when it
// listens on this machine.
func externalNATS(rawURL string) *natsServer {
	n := &natsServer{url: rawURL, version: "external, " + rawURL}
	n.pid, n.why = localListener(rawURL, "4222")
	return n
}

// localListener finds the process listening on a loopback URL's port.
func localListener(rawURL, defaultPort string) (int, string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, fmt.Sprintf("not measured: %s is not a URL", rawURL)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = defaultPort
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return 0, fmt.Sprintf("not measured: %s is not on this machine", rawURL)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return 0, fmt.Sprintf("not measured: port of %s", rawURL)
	}
	pid, ok := procs.ListeningPid(n)
	if !ok {
		return 0, fmt.Sprintf("not measured: no process of this machine found listening on port %d", n)
	}
	return pid, ""
}

// stop stops a server the benchmark started.
func (n *natsServer) stop() error {
	if n.proc == nil {
		return nil
	}
	return n.proc.Stop(stopTimeout)
}
