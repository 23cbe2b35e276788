-- The command service sends a whole group of commands to the server in one
-- round trip, as one implicit transaction: nothing can look at a statement's
-- result before the next runs. A compare-and-set that matched no row (another
-- writer moved the cart on) must therefore fail the statement itself, so that
-- the transaction rolls back instead of committing the rest. This function
-- raises SQLSTATE CQ409 when a command appended fewer events than it decided.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION cart_require_appended(decided integer, appended bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF appended <> decided THEN
        RAISE EXCEPTION 'stream version moved on: % of % events appended', appended, decided
            USING ERRCODE = 'CQ409';
    END IF;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION cart_require_appended(integer, bigint);
