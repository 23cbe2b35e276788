package chaos_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cart-cqrs/cart/chaos"
	"github.com/cart-cqrs/cart/pkg/envelope"
	commandapp "github.com/cart-cqrs/cart/services/command/app"
)

// TestRelayCrashAfterPubAck makes the relay die after JetStream
// acknowledged a batch and before its outbox rows were removed, many
// times, under load: the batch is published again, and the stream's
// deduplication and the projector's version guard keep every event exactly
// once in the stream and in the read model.
func TestRelayCrashAfterPubAck(t *testing.T) {
	t.Parallel()
	// In process, the relay's fault-injection hook fails at exactly that
	// point; the relay then drops leadership as if it had crashed.
	t.Run("hook", func(t *testing.T) {
		want := chaos.Pick(mode, int64(3), int64(40))
		var calls, crashes atomic.Int64
		s := chaos.Start(t, bin, mode, chaos.Options{InProcessCommand: func(cfg *commandapp.Config) {
			cfg.RelayAfterPublish = func(context.Context, []envelope.Envelope) error {
				// Every other batch, until enough crashes: some batches go
				// through, so the backlog never hides a lost one.
				if calls.Add(1)%2 == 1 && crashes.Load() < want {
					crashes.Add(1)
					return errors.New("injected crash between PubAck and outbox removal")
				}
				return nil
			}
		}})
		ledger := chaos.NewLedger()
		sampler := s.StartSampler(t, ledger)
		load := s.StartLoad(t, newClient(s, ledger), loadConfig())
		waitFor(t, 5*time.Minute, "relay crashes", func() bool { return crashes.Load() >= want })
		load.Stop()
		rep := s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})
		t.Logf("relay crashed %d times after PubAck (%d batches)", crashes.Load(), calls.Load())
		if rep.OK == 0 {
			t.Fatal("no command was acknowledged")
		}
	})

	// The real binary gets kill -9 the moment one of its messages reaches
	// the stream: most kills land between a PubAck and the removal of the
	// rows, some in the middle of a batch.
	t.Run("kill -9 on publish", func(t *testing.T) {
		s := chaos.Start(t, bin, mode, chaos.Options{})
		ledger := chaos.NewLedger()
		sampler := s.StartSampler(t, ledger)
		published := make(chan struct{}, 1)
		sub, err := s.NC.Subscribe(s.Subjects+".>", func(*nats.Msg) {
			select {
			case published <- struct{}{}:
			default:
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		load := s.StartLoad(t, newClient(s, ledger), loadConfig())

		want := chaos.Pick(mode, 3, 40)
		kills := 0
		deadline := time.After(5 * time.Minute)
		for kills < want {
			// Let some traffic through before the next kill, then take the
			// next publication.
			acked := ledger.Counts(time.Time{}, time.Time{}).OK
			waitFor(t, time.Minute, "commands acknowledged after a restart", func() bool {
				return ledger.Counts(time.Time{}, time.Time{}).OK >= acked+10
			})
			select {
			case <-published:
			default:
			}
			select {
			case <-published:
			case <-deadline:
				t.Fatalf("only %d of %d kills: nothing was published", kills, want)
			}
			if err := s.Command.Kill(); err != nil {
				t.Fatal(err)
			}
			kills++
			if err := s.Command.Start(); err != nil {
				t.Fatal(err)
			}
		}
		s.AwaitReady(t)
		load.Stop()
		rep := s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})
		t.Logf("killed the command service %d times right after it published", kills)
		if rep.OK == 0 {
			t.Fatal("no command was acknowledged")
		}
	})
}
