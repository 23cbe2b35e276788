package migrations_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cart-cqrs/cart/pkg/pgtest"
)

const sqlstateInsufficientPrivilege = "42501"

// appendOne is what the command service writes for one event: the event and
// its outbox row.
const appendOne = `WITH e AS (
	INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, occurred_at)
	VALUES (gen_random_uuid(), gen_random_uuid(), 'cart', 1, 'cart-opened', 1, '{}', now())
	RETURNING position
) INSERT INTO outbox (position) SELECT position FROM e`

// TestServiceRoles runs statements as a user of each service role and checks
// PostgreSQL allows exactly what the service does: every allowed statement
// runs (in a transaction rolled back after), every other one is refused
// with insufficient_privilege before it touches a row.
func TestServiceRoles(t *testing.T) {
	dbURL := pgtest.MustDatabase(t)
	cases := map[string]struct{ allowed, denied []string }{
		"cart_command": {
			allowed: []string{
				appendOne,
				`SELECT count(*) FROM events`,
				`SELECT position FROM outbox LIMIT 1`,
				`SELECT last_value, is_called FROM events_position_seq`,
				`DELETE FROM outbox WHERE position < 0`,
				`INSERT INTO carts VALUES (gen_random_uuid(), 'c', 'open', 1, now(), now())`,
				`UPDATE carts SET version = version + 1 WHERE version < 0`,
				`INSERT INTO snapshots (stream_id, version, schema_version, state) VALUES (gen_random_uuid(), 1, 1, '{}')
				 ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version`,
				`SELECT name FROM products`,
				`DELETE FROM idempotency_keys WHERE expires_at < now()`,
			},
			denied: []string{
				// History is never rewritten, whatever the trigger says.
				`UPDATE events SET type = 'x'`,
				`DELETE FROM events`,
				`TRUNCATE events`,
				`DELETE FROM carts`,
				`DELETE FROM snapshots`,
				`UPDATE outbox SET enqueued_at = now()`,
				`UPDATE products SET available = false`,
				`INSERT INTO products (product_id, name, unit_price, currency, available) VALUES ('x', 'x', 1, 'EUR', true)`,
				`CREATE TABLE intruder (a int)`,
			},
		},
		"cart_projector": {
			allowed: []string{
				`SELECT position, stream_id, version, type, data FROM events ORDER BY position LIMIT 10`,
			},
			denied: []string{
				appendOne,
				`INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, occurred_at)
				 VALUES (gen_random_uuid(), gen_random_uuid(), 'cart', 1, 'cart-opened', 1, '{}', now())`,
				`UPDATE events SET type = 'x'`,
				`SELECT * FROM carts`,
				`SELECT * FROM outbox`,
				`SELECT * FROM snapshots`,
				`SELECT * FROM idempotency_keys`,
				`SELECT * FROM products`,
				`CREATE TABLE intruder (a int)`,
			},
		},
	}
	for role, c := range cases {
		t.Run(role, func(t *testing.T) {
			conn := mustConnect(t, pgtest.MustRoleURL(t, dbURL, role))
			for _, stmt := range c.allowed {
				if err := inRolledBackTx(t.Context(), conn, stmt); err != nil {
					t.Errorf("%s was refused %q: %v", role, stmt, err)
				}
			}
			for _, stmt := range c.denied {
				err := inRolledBackTx(t.Context(), conn, stmt)
				if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != sqlstateInsufficientPrivilege {
					t.Errorf("%s ran %q: %v; want insufficient_privilege", role, stmt, err)
				}
			}
		})
	}
}

func inRolledBackTx(ctx context.Context, conn *pgx.Conn, stmt string) (err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := tx.Rollback(ctx); rerr != nil && err == nil {
			err = rerr
		}
	}()
	_, err = tx.Exec(ctx, stmt)
	return err
}
