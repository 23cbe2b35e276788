package engine

import "time"

// Config is how the engine consumes the stream.
type Config struct {
	// Stream is the JetStream stream holding the cart events; the consumer
	// takes <SubjectPrefix>.>, from the stream's first message.
	Stream, SubjectPrefix string
	// Durable names the consumer that every projector instance shares.
	Durable string
	// BatchSize is the most messages projected in one batch (default 256).
	BatchSize int
	// AckWait is how long the server waits for an ack before redelivering;
	// it also bounds the time spent on one batch (default 30s).
	AckWait time.Duration
	// MaxAckPending is the most unacknowledged messages across all
	// instances (default 1024).
	MaxAckPending int
	// IdleWait is how long one pull request lives at the server before the
	// client renews it (default and least 1s); it bounds how soon a silent
	// server is noticed.
	IdleWait time.Duration
	// RetryDelay is how long a message a projection wants again waits
	// before it is redelivered (default 1s).
	RetryDelay time.Duration
	// TrailingWindow is the longest the trailing projections' events are
	// held to be applied together (default 25ms). Keep it well below
	// AckWait: held messages are not acknowledged yet.
	TrailingWindow time.Duration
}

func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 1024
	}
	c.IdleWait = max(c.IdleWait, time.Second)
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.TrailingWindow <= 0 {
		c.TrailingWindow = 25 * time.Millisecond
	}
	return c
}

// holdLimit is how many events are held for the trailing projections
// before they are applied without waiting out the window: a batch's worth,
// and at most a quarter of MaxAckPending, which every instance's held
// messages count against.
func (c Config) holdLimit() int {
	return max(1, min(c.BatchSize, c.MaxAckPending/4))
}
