-- Outbox rows are written by the append statement alone, from the positions
-- its own event insert returns (see the command service's
-- internal/postgres/write.go), so the foreign key to events proves nothing
-- that statement does not already ensure. It cost a key-share lock on every
-- new event row, and the WAL record of that lock, in every append.

-- +goose Up
ALTER TABLE outbox DROP CONSTRAINT outbox_position_fkey;

-- +goose Down
ALTER TABLE outbox ADD CONSTRAINT outbox_position_fkey FOREIGN KEY (position) REFERENCES events (position);
