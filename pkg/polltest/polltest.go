// Package polltest waits, in tests, for what is eventually consistent (the
// projector catching up, a relay taking over, a server becoming ready): it
// polls a check until it passes or a deadline does, instead of sleeping a
// guessed time. Every test package waits with it.
package polltest

import (
	"errors"
	"testing"
	"time"
)

// Interval is how often a check runs.
const Interval = 10 * time.Millisecond

// Until runs check every Interval until it returns nil; when within has
// passed it fails the test with what and the last error.
func Until(tb testing.TB, within time.Duration, what string, check func() error) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(Interval)
	}
}

var errNotYet = errors.New("condition not met")

// True is Until for a condition without an error to tell.
func True(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	Until(tb, within, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}
