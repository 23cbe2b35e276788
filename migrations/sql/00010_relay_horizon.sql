-- The relay reads the outbox from where the rows it published end (see the
-- command service's relay/cursor.go): for that it reads the last position the
-- events' sequence handed out.

-- +goose Up
GRANT SELECT ON SEQUENCE events_position_seq TO cart_command;

-- +goose Down
REVOKE SELECT ON SEQUENCE events_position_seq FROM cart_command;
