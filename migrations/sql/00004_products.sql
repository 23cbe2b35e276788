-- The product catalog the command service validates add-item against.
-- Prices are in minor units (cents) of an ISO 4217 currency.

-- +goose Up
CREATE TABLE products (
    product_id text    PRIMARY KEY,
    name       text    NOT NULL,
    unit_price bigint  NOT NULL CHECK (unit_price >= 0),
    currency   text    NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    available  boolean NOT NULL DEFAULT true
);

-- +goose Down
DROP TABLE products;
