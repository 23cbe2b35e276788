-- One cart command's database work at its leanest: read the stream's last
-- version, then append one event row and its outbox row at the next version,
-- in one transaction, with synchronous commit. The command service does at
-- least this (it also folds the events it reads and moves the carts row);
-- this is the throughput its durable writes are held to.
--
-- Each pgbench client appends to its own stream (a UUID derived from the run
-- and the client id). Run with -D run=<unique>.
BEGIN;
SELECT coalesce(max(version), 0) + 1 AS next FROM events WHERE stream_id = md5(:run || '-' || :client_id)::uuid \gset
WITH ins AS (
    INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, metadata, occurred_at)
    VALUES (gen_random_uuid(), md5(:run || '-' || :client_id)::uuid, 'cart', :next, 'cart.item-added', 2,
            '{"name": "Ceramic mug", "quantity": 3, "productId": "456", "unitPrice": {"amount": 1250, "currency": "EUR"}}',
            '{"actor": "pgbench-customer", "causationId": "e531a1b4-6dfd-41a4-908c-12c1bd61c05e", "correlationId": "e531a1b4-6dfd-41a4-908c-12c1bd61c05e"}',
            now())
    RETURNING position
)
INSERT INTO outbox (position) SELECT position FROM ins;
COMMIT;
