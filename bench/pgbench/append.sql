-- The durable core of one cart command, without its read: one event row and
-- its outbox row, inserted in one transaction exactly as the command service
-- does (one INSERT … RETURNING feeding the outbox INSERT, so the outbox
-- trigger's NOTIFY fires too), with synchronous commit.
--
-- Each pgbench client appends to its own stream (a UUID derived from the run
-- and the client id) at versions 1, 2, 3, … — the variable :v persists from
-- one transaction of a client to the next. Run with -D run=<unique> -D v=0.
\set v :v + 1
BEGIN;
WITH ins AS (
    INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, metadata, occurred_at)
    VALUES (gen_random_uuid(), md5(:run || '-' || :client_id)::uuid, 'cart', :v, 'cart.item-added', 2,
            '{"name": "Ceramic mug", "quantity": 3, "productId": "456", "unitPrice": {"amount": 1250, "currency": "EUR"}}',
            '{"actor": "pgbench-customer", "causationId": "e531a1b4-6dfd-41a4-908c-12c1bd61c05e", "correlationId": "e531a1b4-6dfd-41a4-908c-12c1bd61c05e"}',
            now())
    RETURNING position
)
INSERT INTO outbox (position) SELECT position FROM ins;
COMMIT;
