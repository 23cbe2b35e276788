package chaos_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/chaos"
)

// TestSlowAndBrokenConnections puts toxiproxy between the services and
// PostgreSQL, NATS and Redis and, under load, makes their connections slow,
// stalls and closes them, and resets them. Nothing acknowledged is lost,
// and once the faults stop every service's goroutines come back to what
// they were before: nothing is left blocked.
func TestSlowAndBrokenConnections(t *testing.T) {
	t.Parallel()
	s := chaos.Start(t, bin, mode, chaos.Options{Toxi: true})
	ledger := chaos.NewLedger()
	client := newClient(s, ledger)
	sampler := s.StartSampler(t, ledger)

	// The baseline: after some traffic, with the system quiet.
	warm := s.StartLoad(t, client, loadConfig())
	time.Sleep(500 * time.Millisecond) // warm-up traffic
	warm.Stop()
	s.Check(t, ledger, chaos.CheckOptions{})
	client.CloseIdle()
	before := goroutines(t, s)

	faults := [][]struct {
		proxy string
		toxic chaos.Toxic
	}{
		{ // slow everything down
			{"postgres", chaos.Toxic{Name: "slow", Type: "latency", Stream: "downstream", Toxicity: 1, Attributes: map[string]any{"latency": 150, "jitter": 100}}},
			{"nats", chaos.Toxic{Name: "slow", Type: "latency", Stream: "downstream", Toxicity: 1, Attributes: map[string]any{"latency": 150, "jitter": 100}}},
			{"redis", chaos.Toxic{Name: "slow", Type: "latency", Stream: "downstream", Toxicity: 1, Attributes: map[string]any{"latency": 150, "jitter": 100}}},
		},
		{ // reset a third of the connections on their next bytes
			{"postgres", chaos.Toxic{Name: "reset", Type: "reset_peer", Stream: "upstream", Toxicity: 0.3, Attributes: map[string]any{"timeout": 0}}},
			{"nats", chaos.Toxic{Name: "reset", Type: "reset_peer", Stream: "upstream", Toxicity: 0.3, Attributes: map[string]any{"timeout": 0}}},
			{"redis", chaos.Toxic{Name: "reset", Type: "reset_peer", Stream: "upstream", Toxicity: 0.3, Attributes: map[string]any{"timeout": 0}}},
		},
		{ // stall, then close after a second
			{"postgres", chaos.Toxic{Name: "stall", Type: "timeout", Stream: "downstream", Toxicity: 0.5, Attributes: map[string]any{"timeout": 1000}}},
			{"nats", chaos.Toxic{Name: "stall", Type: "timeout", Stream: "downstream", Toxicity: 1, Attributes: map[string]any{"timeout": 1000}}},
			{"redis", chaos.Toxic{Name: "stall", Type: "timeout", Stream: "downstream", Toxicity: 1, Attributes: map[string]any{"timeout": 1000}}},
		},
	}
	load := s.StartLoad(t, client, loadConfig())
	rounds := every(t, chaos.Pick(mode, 300*time.Millisecond, time.Second), chaos.Pick(mode, 3*time.Second, 60*time.Second), func(i int) error {
		for _, f := range faults[i%len(faults)] {
			if err := s.Toxi.Add(f.proxy, f.toxic); err != nil {
				return err
			}
		}
		time.Sleep(chaos.Pick(mode, 700*time.Millisecond, 2*time.Second)) // how long the fault lasts
		s.Toxi.Reset()
		return nil
	})
	load.Stop()
	t.Logf("%d rounds of toxics", rounds)
	rep := s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})
	if rep.OK == 0 {
		t.Fatal("no command was acknowledged")
	}

	// Goroutines back to the baseline: connections the faults broke are
	// replaced, requests that timed out are gone. A few may differ (a pool
	// holding one more idle connection), hundreds would be a leak.
	client.CloseIdle()
	var after map[string]float64
	waitFor(t, time.Minute, "goroutines back to the baseline", func() bool {
		after = goroutines(t, s)
		for name, n := range after {
			if n > before[name]+10 {
				return false
			}
		}
		return true
	})
	t.Logf("goroutines before %v, after %v", before, after)
}

// goroutines reads go_goroutines from every service.
func goroutines(t *testing.T, s *chaos.System) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, p := range s.Processes() {
		n, err := p.Metric(context.Background(), "go_goroutines")
		if err != nil {
			t.Fatal(fmt.Errorf("goroutines: %w", err))
		}
		out[p.Name] = n
	}
	return out
}
