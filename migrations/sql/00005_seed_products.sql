-- Demo catalog. Prices in euro cents. '999' is unavailable so the
-- "product unavailable" rule can be tried by hand.

-- +goose Up
INSERT INTO products (product_id, name, unit_price, currency, available) VALUES
    ('123', 'Espresso beans 1 kg',      1899, 'EUR', true),
    ('456', 'Ceramic mug',              1250, 'EUR', true),
    ('789', 'Milk frother',             3499, 'EUR', true),
    ('101', 'Filter coffee 500 g',       999, 'EUR', true),
    ('202', 'Paper filters (100)',       399, 'EUR', true),
    ('303', 'Pour-over dripper',        2450, 'EUR', true),
    ('404', 'Burr grinder',             8900, 'EUR', true),
    ('505', 'Digital scale',            2999, 'EUR', true),
    ('606', 'Gooseneck kettle',         5490, 'EUR', true),
    ('707', 'Travel tumbler',           1999, 'EUR', true),
    ('808', 'Descaling tablets',         799, 'EUR', true),
    ('999', 'Discontinued grinder',     4999, 'EUR', false);

-- +goose Down
DELETE FROM products
WHERE product_id IN ('123', '456', '789', '101', '202', '303', '404', '505', '606', '707', '808', '999');
