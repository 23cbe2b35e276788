package chaos

import (
	"os"
	"time"
)

// Mode chooses how long and how hard the faults run.
type Mode struct {
	// Full is make chaos: each case runs for a minute or more.
	Full bool
}

// ModeFromEnv reads CHAOS: "full" for the full run, anything else (or
// nothing) for the short one that make test runs.
func ModeFromEnv() Mode { return Mode{Full: os.Getenv("CHAOS") == "full"} }

// Pick returns short in the short mode and full in the full one.
func Pick[T any](m Mode, short, full T) T {
	if m.Full {
		return full
	}
	return short
}

// Settle is how long the oracle waits at most for the system to become
// quiet: generous, because a deadline only bounds a failing run.
func (m Mode) Settle() time.Duration { return Pick(m, 90*time.Second, 5*time.Minute) }

// Republish is how long after the stream lost messages (NATS came back
// with an older store, the stream was deleted) or after NATS came back at
// all, the relay may take to have every event on the stream again.
func (m Mode) Republish() time.Duration { return Pick(m, 30*time.Second, 90*time.Second) }
