-- The outbox trigger notified the relay on every append. A commit now wakes
-- the relay itself: in-process when the relay of its own command instance
-- leads (the commit hands it the events), and otherwise with one
-- pg_notify('cart_outbox', '') per group commit (see the command service's
-- internal/postgres/group.go). The relay still LISTENs on cart_outbox, and
-- polls as a fallback; anything else that writes outbox rows should notify
-- the same way.

-- +goose Up
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();

-- +goose Down
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
