// Package e2e holds the end-to-end tests: all three services started in one
// test process on :0 ports against the real PostgreSQL, NATS JetStream and
// Redis, driven through their HTTP APIs, with the event log, the stream and
// the read model checked against each other.
package e2e
