package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cart-cqrs/cart/scripts/bench/procs"
	"github.com/cart-cqrs/cart/scripts/bench/report"
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
// on free loopback ports, with the file store's sync setting (see
// natsConfig), and waits until JetStream is up. Its configuration and log
// are <logDir>/<name>.conf and .log.
func startNATS(ctx context.Context, bin, name, dir, logDir, sync string) (*natsServer, error) {
	client, err := procs.FreeAddr()
	if err != nil {
		return nil, err
	}
	monitor, err := procs.FreeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	conf := filepath.Join(logDir, name+".conf")
	if err := os.WriteFile(conf, []byte(natsConfig(client, monitor, dir, sync)), 0o644); err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	version, err := runTool(ctx, bin, "--version")
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	p, err := procs.Start(name, bin, []string{"-c", conf}, baseEnv(), logDir)
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

// natsConfig is the configuration of a nats-server the benchmark runs:
// clients and monitoring on the loopback addresses given, JetStream storing
// in dir. report.SyncDefault leaves the file store's sync_interval to the
// server (an fsync every 2 minutes); any other sync is written as
// sync_interval ("always": an fsync before every PubAck).
func natsConfig(client, monitor, dir, sync string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\nhttp: %q\n\njetstream {\n  store_dir: %q\n", client, monitor, dir)
	if sync != report.SyncDefault {
		fmt.Fprintf(&b, "  sync_interval: %q\n", sync)
	}
	b.WriteString("}\n")
	return b.String()
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
