package chaos_test

import (
	"context"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/chaos"
)

// TestPostgresSessionsTerminated ends every PostgreSQL session of the
// services with pg_terminate_backend every 500 ms under load. A commit whose
// outcome the service cannot know is never answered 2xx, and the client's
// retries with the same Idempotency-Key never apply a command twice.
func TestPostgresSessionsTerminated(t *testing.T) {
	t.Parallel()
	s := chaos.Start(t, bin, mode, chaos.Options{})
	ledger := chaos.NewLedger()
	sampler := s.StartSampler(t, ledger)
	load := s.StartLoad(t, newClient(s, ledger), loadConfig())
	ctx := context.Background()

	terminated := 0
	rounds := every(t, 500*time.Millisecond, chaos.Pick(mode, 3*time.Second, 60*time.Second), func(int) error {
		var n int
		err := s.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()
			AND backend_type = 'client backend' AND application_name <> $1`, chaos.OracleApplicationName).Scan(&n)
		terminated += n
		return err
	})
	load.Stop()
	t.Logf("terminated %d sessions in %d rounds", terminated, rounds)
	if terminated == 0 {
		t.Fatal("no session was terminated")
	}
	rep := s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})
	if rep.OK == 0 {
		t.Fatal("no command was acknowledged")
	}
}
