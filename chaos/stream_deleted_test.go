package chaos_test

import (
	"testing"
	"time"

	"github.com/cart-cqrs/cart/chaos"
)

// TestStreamDeleted deletes the stream while commands flow, as an
// operator's mistake would: the relay must create it again and publish the
// history from the event log, every cart's events in order.
func TestStreamDeleted(t *testing.T) {
	t.Parallel()
	// The relay finds a stream gone at its next check of the stream; the
	// short run does not wait out the default interval (10s), the full one
	// does.
	s := chaos.Start(t, bin, mode, chaos.Options{CommandEnv: chaos.Pick(mode, []string{"RELAY_VERIFY_INTERVAL=2s"}, nil)})
	ledger := chaos.NewLedger()
	sampler := s.StartSampler(t, ledger)
	load := s.StartLoad(t, newClient(s, ledger), loadConfig())

	watch := s.WatchStream(t)
	time.Sleep(chaos.Pick(mode, time.Second, 10*time.Second)) // traffic before
	loss := s.DeleteStream(t, watch)
	t.Logf("%s", loss)
	time.Sleep(chaos.Pick(mode, time.Second, 10*time.Second)) // traffic while the stream is gone, and after it is back
	load.Stop()
	s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})
}
