package chaos_test

import (
	"testing"
	"time"

	"github.com/cart-cqrs/cart/chaos"
)

// TestCommandKilled kills the command service with SIGKILL every few
// seconds under load and starts it again at once: whatever it had
// acknowledged is in the log, the stream and the read model, and nothing
// half-done shows up anywhere.
func TestCommandKilled(t *testing.T) {
	t.Parallel()
	s := chaos.Start(t, bin, mode, chaos.Options{})
	ledger := chaos.NewLedger()
	sampler := s.StartSampler(t, ledger)
	load := s.StartLoad(t, newClient(s, ledger), loadConfig())

	// Every interval of uptime: a restart takes a while (migrations run on
	// start), and a service that is never up only tests the client.
	interval, duration := chaos.Pick(mode, time.Second, 2*time.Second), chaos.Pick(mode, 3*time.Second, 60*time.Second)
	start := time.Now()
	kills := every(t, interval, duration, func(int) error {
		if err := s.Command.Restart(); err != nil {
			return err
		}
		s.AwaitReady(t)
		return nil
	})
	s.AwaitReady(t)
	load.Stop()
	t.Logf("killed the command service %d times in %s", kills, time.Since(start).Round(time.Millisecond))

	rep := s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})
	if rep.OK == 0 {
		t.Fatal("no command was acknowledged")
	}
}
