-- Idempotency keys: the response to the first command a caller sent with an
-- Idempotency-Key header, written in the same transaction as the command's
-- events, so that a retry — even after a lost reply whose commit outcome the
-- client cannot know — gets that response back instead of running the command
-- twice. Keys are scoped to the caller and expire; expiry deletes rows here
-- only, never events.

-- +goose Up
CREATE TABLE idempotency_keys (
    -- The caller (the token's subject) who sent the key: keys of different
    -- callers never collide.
    customer_id  text        NOT NULL,
    key          text        NOT NULL CHECK (key ~ '^[\x20-\x7e]{1,255}$'),
    -- SHA-256 of the method, the path with the actual cart id and the
    -- canonical (decoded, re-encoded) request body.
    request_hash bytea       NOT NULL CHECK (length(request_hash) = 32),
    method       text        NOT NULL,
    path         text        NOT NULL,
    -- The first response: status and body. json, not jsonb: kept byte for
    -- byte, so that a replay is identical to the original.
    status       integer     NOT NULL CHECK (status BETWEEN 200 AND 299),
    response     json        NOT NULL,
    cart_id      uuid        NOT NULL,
    version      integer     NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (customer_id, key)
);

-- The cleanup deletes expired keys in batches, oldest first.
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
