package chaos_test

import (
	"testing"
	"time"

	"github.com/cart-cqrs/cart/chaos"
)

// TestNATSRestarted shuts NATS down under load and starts it again on the
// same port and store: commands keep succeeding meanwhile (they only need
// PostgreSQL), and once NATS is back the outbox backlog drains to the
// stream and the read model with nothing missing.
func TestNATSRestarted(t *testing.T) {
	t.Parallel()
	s := chaos.Start(t, bin, mode, chaos.Options{})
	ledger := chaos.NewLedger()
	sampler := s.StartSampler(t, ledger)
	load := s.StartLoad(t, newClient(s, ledger), loadConfig())

	outages := chaos.Pick(mode, 1, 4)
	var during chaos.Counts
	for range outages {
		time.Sleep(chaos.Pick(mode, 500*time.Millisecond, 5*time.Second)) // traffic before the outage
		s.NATS.Shutdown()
		down := time.Now()
		time.Sleep(chaos.Pick(mode, 2*time.Second, 15*time.Second)) // the outage
		up := time.Now()
		during = during.Plus(ledger.Counts(down, up))
		if err := s.NATS.Start(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(chaos.Pick(mode, 500*time.Millisecond, 5*time.Second)) // traffic after
	load.Stop()
	t.Logf("%d NATS outages; while NATS was down: %s", outages, during)
	if during.OK == 0 || during.Unknown > 0 {
		t.Errorf("commands did not keep succeeding while NATS was down: %s", during)
	}
	s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})
}
