// Package backoff is how the services wait before trying again: Sleep, a
// pause that ends with the context, and Backoff, a jittered exponential
// delay for loops that retry after a failure or a lost race. The jitter keeps
// writers that collided, or instances that saw the same outage, from trying
// again in lockstep.
package backoff

import (
	"context"
	"time"

	cenkalti "github.com/cenkalti/backoff/v5"
)

// Sleep waits for d or until ctx ends, whichever is first; it reports whether
// d elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Backoff is a delay that doubles from initial up to limit, each Next drawn at
// random from [d/2, 3d/2) around the current delay d. It is one loop's: not
// safe for concurrent use.
type Backoff struct {
	b cenkalti.ExponentialBackOff
}

// New returns a Backoff whose first delay is about initial and whose delays
// grow to about limit.
func New(initial, limit time.Duration) *Backoff {
	b := &Backoff{b: cenkalti.ExponentialBackOff{
		InitialInterval:     initial,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         limit,
	}}
	b.b.Reset()
	return b
}

// Next returns the delay to wait now and doubles the next one.
func (b *Backoff) Next() time.Duration { return b.b.NextBackOff() }

// Reset starts again at the initial delay, after a success.
func (b *Backoff) Reset() { b.b.Reset() }

// Wait sleeps for Next or until ctx ends; it reports whether the delay
// elapsed.
func (b *Backoff) Wait(ctx context.Context) bool { return Sleep(ctx, b.Next()) }
