package chaos_test

import (
	"testing"
	"time"

	"github.com/cart-cqrs/cart/chaos"
)

// TestNATSStoreReverted makes JetStream forget messages it acknowledged,
// under load: a copy of its store taken while it runs (what the disk holds
// between two syncs) replaces the store, and the server starts again on
// the same port, as after a power cut or a restored volume. The relay must
// notice and publish the lost events again, in each cart's order and with
// their event ids, so that the stream holds every event once more.
func TestNATSStoreReverted(t *testing.T) {
	t.Parallel()
	s := chaos.Start(t, bin, mode, chaos.Options{})
	ledger := chaos.NewLedger()
	sampler := s.StartSampler(t, ledger)
	load := s.StartLoad(t, newClient(s, ledger), loadConfig())

	for round := range chaos.Pick(mode, 1, 3) {
		watch := s.WatchStream(t)
		time.Sleep(chaos.Pick(mode, 500*time.Millisecond, 5*time.Second)) // traffic the copy keeps
		snapshot := t.TempDir()
		if err := s.NATS.Snapshot(snapshot); err != nil {
			t.Fatal(err)
		}
		time.Sleep(chaos.Pick(mode, time.Second, 8*time.Second)) // traffic acknowledged, then forgotten
		loss := s.RevertNATS(t, snapshot, watch, nil)
		t.Logf("round %d: %s", round+1, loss)
	}
	time.Sleep(chaos.Pick(mode, 500*time.Millisecond, 5*time.Second)) // traffic after
	load.Stop()
	s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})
}

// TestNATSStoreRevertedDuringFailover is TestNATSStoreReverted with the
// leading relay's process killed around the revert (while NATS is down,
// just before it stops, just after it is back), so that the relay of
// another command process, which published none of the lost events, must
// find and publish them.
func TestNATSStoreRevertedDuringFailover(t *testing.T) {
	t.Parallel()
	s := chaos.Start(t, bin, mode, chaos.Options{StandbyCommands: 1})
	ledger := chaos.NewLedger()
	sampler := s.StartSampler(t, ledger)

	kills := []string{"while NATS is down", "before NATS stops", "after NATS is back"}
	for round := range chaos.Pick(mode, 1, len(kills)) {
		leader, standby := relayLeader(t, s)
		load := s.StartLoad(t, chaos.NewClient(standby.URL(), ledger, 5*time.Second), loadConfig())
		watch := s.WatchStream(t)
		time.Sleep(chaos.Pick(mode, 500*time.Millisecond, 3*time.Second)) // traffic the copy keeps
		snapshot := t.TempDir()
		if err := s.NATS.Snapshot(snapshot); err != nil {
			t.Fatal(err)
		}
		time.Sleep(chaos.Pick(mode, time.Second, 5*time.Second)) // traffic acknowledged, then forgotten
		var killed time.Time
		kill := func() {
			if err := leader.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = time.Now()
		}
		var whileDown func()
		switch kills[round] {
		case "while NATS is down":
			whileDown = kill
		case "before NATS stops":
			kill()
		}
		loss := s.RevertNATS(t, snapshot, watch, whileDown)
		if killed.IsZero() {
			kill()
		}
		took := awaitLeader(t, standby, killed)
		t.Logf("round %d: %s; killed %s %s, %s's relay led %s later", round+1, loss, leader.Name, kills[round], standby.Name, took.Round(time.Millisecond))
		time.Sleep(chaos.Pick(mode, 500*time.Millisecond, 3*time.Second)) // traffic through the new leader
		load.Stop()
		if err := leader.Start(); err != nil {
			t.Fatal(err)
		}
		s.AwaitReady(t)
	}
	s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})
}
