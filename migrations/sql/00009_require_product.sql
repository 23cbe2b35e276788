-- The command service keeps the products it has looked up in memory. An
-- item-added event keeps the product's name and price as the command saw
-- them; this function, run in the same transaction as the append, fails it
-- (SQLSTATE CQ412) when the product is no longer in the catalog as the event
-- has it, or no longer available, so that a cached product is never added
-- once the catalog changed: the command is decided again on the fresh row.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION cart_require_product(p_id text, p_name text, p_price bigint, p_currency text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM products
        WHERE product_id = p_id AND name = p_name AND unit_price = p_price AND currency = p_currency AND available
    ) THEN
        RAISE EXCEPTION 'product % changed in the catalog', p_id USING ERRCODE = 'CQ412';
    END IF;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION cart_require_product(text, text, bigint, text);
