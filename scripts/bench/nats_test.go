package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cart-cqrs/cart/scripts/bench/report"
)

func TestLocalListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	for _, tc := range []struct {
		name, url string
		found     bool
		why       string
	}{
		{"OKThisProcess", "nats://127.0.0.1:" + port, true, ""},
		{"OKLocalhost", "nats://localhost:" + port, true, ""},
		{"ErrAnotherHost", "nats://nats.example:4222", false, "is not on this machine"},
		{"ErrNobodyListens", "nats://127.0.0.1:1", false, "no process of this machine found listening on port 1"},
		{"ErrNotAURL", "nats://[::1", false, "is not a URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid, why := localListener(tc.url, "4222")
			if (pid != 0) != tc.found || !strings.Contains(why, tc.why) {
				t.Fatalf("localListener(%q) = %d, %q", tc.url, pid, why)
			}
		})
	}
}

// TestNATSConfig reads the configuration the benchmark writes as
// nats-server itself does: each sync setting must reach the file store.
func TestNATSConfig(t *testing.T) {
	for _, tc := range []struct {
		sync     string
		always   bool
		interval time.Duration // 0: the server's default
	}{
		{report.SyncDefault, false, 0},
		{report.SyncAlways, true, 2 * time.Minute},
		{"1s", false, time.Second},
	} {
		t.Run(tc.sync, func(t *testing.T) {
			dir := t.TempDir()
			store := filepath.Join(dir, "store")
			conf := filepath.Join(dir, "nats.conf")
			if err := os.WriteFile(conf, []byte(natsConfig("127.0.0.1:14222", "127.0.0.1:18222", store, tc.sync)), 0o644); err != nil {
				t.Fatal(err)
			}
			opts, err := server.ProcessConfigFile(conf)
			if err != nil {
				t.Fatal(err)
			}
			if !opts.JetStream || opts.StoreDir != store || opts.Host != "127.0.0.1" || opts.Port != 14222 ||
				opts.HTTPHost != "127.0.0.1" || opts.HTTPPort != 18222 {
				t.Fatalf("jetstream %v, store %q, client %s:%d, monitor %s:%d", opts.JetStream, opts.StoreDir, opts.Host, opts.Port, opts.HTTPHost, opts.HTTPPort)
			}
			if opts.SyncAlways != tc.always || opts.SyncInterval != tc.interval {
				t.Fatalf("sync always %v, interval %v; want %v, %v", opts.SyncAlways, opts.SyncInterval, tc.always, tc.interval)
			}
		})
	}
}
