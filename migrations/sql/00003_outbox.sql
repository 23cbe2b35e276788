-- The transactional outbox: events written in the same transaction as the
-- append, deleted by the relay once published to NATS.

-- +goose Up
CREATE TABLE outbox (
    position    bigint      PRIMARY KEY REFERENCES events (position),
    enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Notifications are delivered on commit, so the relay wakes when there is
-- something to publish instead of polling tightly. Once per statement is
-- enough: the payload is empty and the relay reads the table.
-- +goose StatementBegin
CREATE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cart_outbox', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER outbox_notify
    AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- +goose Down
DROP TABLE outbox;
DROP FUNCTION outbox_notify();
