-- A PubAck from JetStream means the message is in the server's memory, not on
-- its disk: a server that loses power, or whose volume is restored from a
-- copy, forgets messages it had acknowledged. The relay therefore keeps what
-- it published for a retention window instead of forgetting it at once, and
-- remembers how far the stream went, so that it can tell when the stream
-- went back and publish the lost messages again (see the command service's
-- internal/relay/verify.go).

-- +goose Up
-- Rows the relay published, moved out of the outbox with the stream
-- sequence their PubAck gave, until the retention window has passed.
CREATE TABLE outbox_published (
    position     bigint      PRIMARY KEY,
    stream_seq   bigint      NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_published_stream_seq ON outbox_published (stream_seq);
CREATE INDEX outbox_published_published_at ON outbox_published (published_at);

-- What the relay knows of each stream it publishes to: when the stream was
-- created (a different time means it was deleted and created again) and the
-- highest sequence it acknowledged (a stream whose last sequence is lower
-- forgot messages).
CREATE TABLE relay_streams (
    stream     text        PRIMARY KEY,
    created    timestamptz NOT NULL,
    last_seq   bigint      NOT NULL,
    checked_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE, DELETE ON outbox_published, relay_streams TO cart_command;

-- +goose Down
DROP TABLE relay_streams;
DROP TABLE outbox_published;
