-- carts is the write side's registry of streams: who owns a cart, whether it
-- is still open, and its head version (compared-and-set on every append).
-- snapshots bound the replay of a stream; they are a cache and may be deleted.

-- +goose Up
CREATE TABLE carts (
    cart_id     uuid        PRIMARY KEY,
    customer_id text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('open', 'checked-out')),
    version     integer     NOT NULL CHECK (version >= 0),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- A customer has at most one open cart.
CREATE UNIQUE INDEX carts_one_open_per_customer ON carts (customer_id) WHERE status = 'open';

CREATE TABLE snapshots (
    stream_id      uuid        PRIMARY KEY,
    version        integer     NOT NULL,
    schema_version integer     NOT NULL,
    state          jsonb       NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE snapshots;
DROP TABLE carts;
