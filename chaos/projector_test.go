package chaos_test

import (
	"context"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/chaos"
)

// TestProjectorKilledAndPaused runs two projectors on the shared consumer
// with a 1 s ack wait, kills one with SIGKILL before it can ack, again and
// again, and freezes the other (SIGSTOP) for longer than the ack wait, so
// that its messages are redelivered to the first while it still holds
// them. Nothing may be applied twice, and the read model equals the replay.
func TestProjectorKilledAndPaused(t *testing.T) {
	t.Parallel()
	s := chaos.Start(t, bin, mode, chaos.Options{Projectors: 2, ProjectorEnv: []string{"PROJECTOR_ACK_WAIT=1s"}})
	ledger := chaos.NewLedger()
	sampler := s.StartSampler(t, ledger)
	load := s.StartLoad(t, newClient(s, ledger), loadConfig())
	killed, paused := s.Projectors[0], s.Projectors[1]

	kills := every(t, chaos.Pick(mode, 700*time.Millisecond, 2*time.Second), chaos.Pick(mode, 2*time.Second, 30*time.Second),
		func(int) error { return killed.Restart() })
	pauses := every(t, 500*time.Millisecond, chaos.Pick(mode, time.Second, 30*time.Second), func(int) error {
		if err := paused.Pause(); err != nil {
			return err
		}
		time.Sleep(2500 * time.Millisecond) // longer than the ack wait
		return paused.Resume()
	})
	load.Stop()
	t.Logf("killed a projector %d times; paused the other %d times for 2.5s", kills, pauses)
	s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})

	var dups float64
	for _, p := range s.Projectors {
		n, err := p.Metric(context.Background(), "cart_projector_events_duplicate_total")
		if err != nil {
			t.Fatal(err)
		}
		dups += n
	}
	t.Logf("redelivered events acknowledged without change (since the last restart): %v", dups)
}
