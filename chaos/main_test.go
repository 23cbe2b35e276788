package chaos_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/chaos"
	"github.com/cart-cqrs/cart/pkg/polltest"
)

var (
	// bin are the service binaries every case runs, built once.
	bin  chaos.Binaries
	mode = chaos.ModeFromEnv()
)

// TestMain builds the three services with go build before the cases run:
// the chaos cases run the real binaries, as they are deployed.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// The race detector makes the services several times slower: the full
	// run uses it (a race under faults is a finding), the short one in
	// make test does not (the services' own tests run with it).
	race := raceEnabled && mode.Full
	if v, ok := os.LookupEnv("CHAOS_RACE"); ok {
		race = raceEnabled && v == "1"
	}
	dir, err := binDir(race)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if bin, err = chaos.Build(ctx, dir, race); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// binDir is where the binaries are built: a folder kept between runs of
// this checkout, so that an unchanged service is not linked again.
func binDir(race bool) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(wd))
	dir := filepath.Join(cache, "cart-chaos", hex.EncodeToString(sum[:6])+map[bool]string{true: "-race", false: ""}[race])
	return dir, os.MkdirAll(dir, 0o755)
}

// loadConfig is the background load of most cases.
func loadConfig() chaos.LoadConfig {
	return chaos.LoadConfig{Workers: chaos.Pick(mode, 6, 16)}
}

// newClient returns a command client whose tries time out after a few
// seconds, so that a stalled service makes unknown outcomes, not hangs.
func newClient(s *chaos.System, ledger *chaos.Ledger) *chaos.Client {
	return chaos.NewClient(s.CommandURL, ledger, 5*time.Second)
}

// newPatientClient is for cases without faults that expect a definite
// answer to every command, however busy the machine.
func newPatientClient(s *chaos.System, ledger *chaos.Ledger) *chaos.Client {
	return chaos.NewClient(s.CommandURL, ledger, time.Minute)
}

// every runs fault every interval for duration (at least once) and
// returns how often it ran; a fault that fails ends the test.
func every(t *testing.T, interval, duration time.Duration, fault func(i int) error) int {
	t.Helper()
	end := time.Now().Add(duration)
	n := 0
	for {
		if err := fault(n); err != nil {
			t.Fatalf("fault %d: %v", n+1, err)
		}
		n++
		if time.Now().Add(interval).After(end) {
			return n
		}
		time.Sleep(interval) // the fault's rhythm, not a wait for correctness
	}
}

// waitFor polls cond until it holds; the deadline only bounds a failing run.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	polltest.True(t, within, what, cond)
}

func envOr(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return fallback
}
