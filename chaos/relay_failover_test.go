package chaos_test

import (
	"context"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/chaos"
)

// maxFailover is how long the relay may stay without a leader after the
// active one's process dies: a standby retries the lock every second and
// PostgreSQL frees it as soon as the dead process's connection closes.
const maxFailover = 5 * time.Second

// TestRelayFailover runs two command processes, kills the one whose relay
// publishes with SIGKILL while commands keep arriving at the other, and
// measures how long until the other's relay leads. Then the killed one comes
// back as the standby, and the next round kills the new leader. Nothing is
// lost or reordered on the way (the oracle), and every takeover is faster
// than maxFailover.
func TestRelayFailover(t *testing.T) {
	t.Parallel()
	s := chaos.Start(t, bin, mode, chaos.Options{StandbyCommands: 1})
	ledger := chaos.NewLedger()
	sampler := s.StartSampler(t, ledger)

	var worst time.Duration
	for round := range chaos.Pick(mode, 2, 6) {
		leader, standby := relayLeader(t, s)
		load := s.StartLoad(t, chaos.NewClient(standby.URL(), ledger, 5*time.Second), loadConfig())
		time.Sleep(chaos.Pick(mode, 500*time.Millisecond, 3*time.Second)) // commands flowing through the leader's relay
		if err := leader.Kill(); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		took := awaitLeader(t, standby, killed)
		load.Stop()
		worst = max(worst, took)
		t.Logf("round %d: killed %s; %s's relay led %s later", round+1, leader.Name, standby.Name, took.Round(time.Millisecond))
		if took > maxFailover {
			t.Errorf("round %d: failover took %s, more than %s", round+1, took.Round(time.Millisecond), maxFailover)
		}
		if err := leader.Start(); err != nil {
			t.Fatal(err)
		}
		s.AwaitReady(t)
	}
	t.Logf("slowest failover %s", worst.Round(time.Millisecond))
	s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})
}

// relayLeader waits until exactly one command process's relay leads, and
// returns it and another one.
func relayLeader(t *testing.T, s *chaos.System) (leader, standby *chaos.Process) {
	t.Helper()
	waitFor(t, 30*time.Second, "one relay leads", func() bool {
		leader, standby = nil, nil
		for _, c := range s.Commands {
			v, err := c.Metric(context.Background(), "cart_relay_leader")
			switch {
			case err != nil:
				return false
			case v == 1 && leader != nil:
				t.Fatalf("%s and %s both lead", leader.Name, c.Name)
			case v == 1:
				leader = c
			default:
				standby = c
			}
		}
		return leader != nil && standby != nil
	})
	return leader, standby
}

// awaitLeader polls p's relay every 20 ms until it leads, and returns how
// long after since that was.
func awaitLeader(t *testing.T, p *chaos.Process, since time.Time) time.Duration {
	t.Helper()
	deadline := since.Add(60 * time.Second) // bounds a failing run only
	for time.Now().Before(deadline) {
		if v, err := p.Metric(context.Background(), "cart_relay_leader"); err == nil && v == 1 {
			return time.Since(since)
		}
		time.Sleep(20 * time.Millisecond) // the measurement's resolution
	}
	t.Fatalf("%s's relay did not lead within a minute of the kill", p.Name)
	return 0
}
