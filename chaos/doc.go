// Package chaos runs the real service binaries (command, projector, query)
// under load, injects faults into them and into their dependencies —
// kill -9, SIGSTOP, terminated PostgreSQL sessions, NATS and Redis restarts,
// a NATS store put back to an older copy and a deleted stream (JetStream
// losing messages it acknowledged), slow and broken connections through
// toxiproxy — and then checks the whole system with an oracle.
//
// The oracle knows every command the load sent and how it ended: ok (2xx),
// failed (a definite 4xx, or never sent) or unknown (a timeout, a broken
// connection or a 5xx: the command may or may not have been applied). After a
// quiet period it demands that
//
//   - every acknowledged command is in the event log, at the version it was
//     acknowledged with, and no failed command is;
//   - no command was applied twice (one event per command at most) and the
//     log holds no event that no command can explain;
//   - a subscriber reading the NATS stream from the start sees every event
//     exactly once, each cart's events in version order, and nothing else;
//     and the stream holds every event again within Mode.Republish of
//     losing messages it had acknowledged, or of NATS coming back;
//   - a cart whose events the stream lost reads at its head version
//     through the query service (?minVersion) meanwhile;
//   - every cart's Redis document equals a fresh fold of its events from
//     PostgreSQL, and its history lists each event once (nothing applied
//     twice);
//   - no reader ever saw a cart's version go down.
//
// Durations and rates come from the Mode: short by default, so the suite
// runs in make test in seconds per case; CHAOS=full (make chaos) runs each
// fault for a minute or more. Correctness never waits a fixed time: the
// oracle polls with deadlines.
package chaos
