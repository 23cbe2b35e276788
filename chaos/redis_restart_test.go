package chaos_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/chaos"
)

// redisServer is where the Debian package puts it.
const redisServer = "/usr/bin/redis-server"

// TestRedisRestartedEmpty kills a Redis server of the test's own under load
// and starts it again with nothing in it. The projector reconnects and
// repairs what it touches from PostgreSQL; `projector rebuild`, run while
// the load goes on, brings back everything else, and the read model equals
// the replay of the event log.
func TestRedisRestartedEmpty(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(redisServer); err != nil {
		t.Skipf("no %s: %v", redisServer, err)
	}
	addr, err := chaos.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	rs := chaos.NewProcess("redis", redisServer, addr, filepath.Join(t.TempDir(), "redis.log"), nil)
	rs.Args = []string{"--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no"}
	startRedis := func() {
		t.Helper()
		if err := rs.Start(); err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer c.Close()
		waitFor(t, 30*time.Second, "redis-server up", func() bool { return c.Ping(context.Background()).Err() == nil })
	}
	startRedis()
	t.Cleanup(func() { _ = rs.Stop(10 * time.Second) })

	s := chaos.Start(t, bin, mode, chaos.Options{RedisURL: "redis://" + addr + "/0"})
	ledger := chaos.NewLedger()
	sampler := s.StartSampler(t, ledger)
	load := s.StartLoad(t, newClient(s, ledger), loadConfig())

	restarts := chaos.Pick(mode, 1, 3)
	for range restarts {
		time.Sleep(chaos.Pick(mode, 1500*time.Millisecond, 10*time.Second)) // traffic before the restart
		if err := rs.Kill(); err != nil {
			t.Fatal(err)
		}
		startRedis()
		if n, err := s.Redis.DBSize(context.Background()).Result(); err != nil || n > 10 {
			t.Logf("keys right after the restart: %d %v", n, err)
		}
	}
	time.Sleep(chaos.Pick(mode, 500*time.Millisecond, 5*time.Second)) // traffic after the last restart

	// The rebuild runs as an operator would run it, with the projector's
	// configuration, while the load goes on.
	summary := rebuild(t, s)
	load.Stop()
	rep := s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})
	t.Logf("Redis restarted empty %d times; %s", restarts, summary)

	m := summaryLine.FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("projector rebuild: last line %q is not the summary", summary)
	}
	events, _ := strconv.Atoi(m[1])
	carts, _ := strconv.Atoi(m[2])
	if carts == 0 || events == 0 || events > rep.Events || carts > rep.Carts {
		t.Fatalf("rebuilt %d events of %d carts; the log holds %d events of %d carts", events, carts, rep.Events, rep.Carts)
	}
	if gen, err := s.Generation(context.Background()); err != nil || fmt.Sprint(gen) != m[3] {
		t.Fatalf("readers use generation %d (%v), the rebuild built %s", gen, err, m[3])
	}
}

// summaryLine is the last line `projector rebuild` prints.
var summaryLine = regexp.MustCompile(`^documents: rebuilt (\d+) events of (\d+) carts in \S+ \(\S+ events/s\) into generation (\d+)$`)

// rebuild runs `projector rebuild -progress=false` and returns its last line.
func rebuild(t *testing.T, s *chaos.System) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.Projector, "rebuild", "-progress=false")
	cmd.Env = append(os.Environ(), s.ProjectorEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("projector rebuild: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1]
}
