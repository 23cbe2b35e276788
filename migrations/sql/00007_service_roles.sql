-- Least privilege: one role per service, holding exactly what that service
-- does, so that who can touch what is written down here and checked by tests.
-- They are NOLOGIN group roles; a deployment creates a login user per service
-- and grants it the role (GRANT cart_command TO command_svc). Migrations run
-- as the owner of the tables, never as one of these roles.
--
-- Roles belong to the whole PostgreSQL cluster, not to a database: they are
-- created when missing (several databases of one cluster share them, and may
-- migrate at the same moment); the grants are this database's.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['cart_command', 'cart_projector'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created by another database of the cluster
        END;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- The command service appends events (never UPDATE, DELETE or TRUNCATE:
-- history is not rewritten), moves the carts registry and snapshots, stores
-- idempotency keys and deletes expired ones; its relay reads the outbox and
-- deletes what it published.
GRANT SELECT, INSERT ON events TO cart_command;
GRANT SELECT, INSERT, UPDATE ON carts, snapshots TO cart_command;
GRANT SELECT, INSERT, DELETE ON outbox, idempotency_keys TO cart_command;
GRANT SELECT ON products TO cart_command;

-- The projector reads the event log to repair gaps and rebuild read models,
-- and nothing else.
GRANT SELECT ON events TO cart_projector;

-- +goose Down
REVOKE ALL ON events, carts, snapshots, outbox, idempotency_keys, products FROM cart_command;
REVOKE ALL ON events FROM cart_projector;
