package eventlog

// StreamAfter is the statement that reads a cart's events after a version, in
// version order, for a caller that queues it with statements of its own (in a
// pgx.Batch) and reads the rows with Collect. $1 is the cart id; after is the
// SQL expression of the version to read after: a parameter, or a subquery
// over the caller's own tables (the command's snapshots).
func StreamAfter(after string) string {
	return `SELECT ` + Columns + ` FROM events WHERE stream_id = $1 AND version > ` + after + ` ORDER BY version`
}
