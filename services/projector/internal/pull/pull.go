// Package pull runs a durable JetStream pull consumer for a projection: it
// waits for the stream (the command service's relay creates it), creates
// or updates the consumer, fetches batches and hands each to the
// projection, which settles every message (ack, nak or term); after a
// failed pull (the consumer deleted, NATS gone) it attaches again. The cart
// projector and the product analytics each run one, on consumers of their
// own.
package pull

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Config is the consumer and how it is pulled. Every field is required.
type Config struct {
	// Stream is the JetStream stream of cart events; the consumer takes
	// <SubjectPrefix>.>, from the stream's first message.
	Stream, SubjectPrefix string
	// Durable names the consumer every instance of the projection shares;
	// Description says what it feeds.
	Durable, Description string
	// BatchSize is the most messages handed over at once.
	BatchSize int
	// AckWait is how long the server waits for an ack before redelivering;
	// it also bounds the time one batch may take.
	AckWait time.Duration
	// MaxAckPending is the most unacknowledged messages across instances.
	MaxAckPending int
	// IdleWait is how long one pull waits for a first message; it bounds
	// how long shutdown waits for an idle pull.
	IdleWait time.Duration
}

// Loop pulls batches for one projection.
type Loop struct {
	cfg      Config
	js       jetstream.JetStream
	name     string
	handle   func(context.Context, []jetstream.Msg)
	logger   *slog.Logger
	attached atomic.Bool
}

// New returns a loop that hands each batch to handle, which must settle
// every message. name prefixes the loop's log lines.
func New(cfg Config, js jetstream.JetStream, name string, handle func(context.Context, []jetstream.Msg), logger *slog.Logger) *Loop {
	return &Loop{cfg: cfg, js: js, name: name, handle: handle, logger: logger}
}

// Attached reports whether the loop has its consumer and is pulling.
func (l *Loop) Attached() bool { return l.attached.Load() }

// Run pulls and hands over batches until ctx ends. A batch already pulled
// is finished, and its acks flushed, before Run returns; Run then returns
// nil.
func (l *Loop) Run(ctx context.Context) error {
	defer l.attached.Store(false)
	for {
		cons, err := l.attach(ctx)
		if err != nil {
			return nil // ctx ended while waiting for the stream
		}
		err = l.pull(ctx, cons)
		if ctx.Err() != nil {
			l.flush()
			return nil
		}
		// The consumer was deleted or NATS went away: attach again.
		l.attached.Store(false)
		l.logger.WarnContext(ctx, l.name+": pull failed, attaching again", "err", err)
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
}

// attach waits for the stream and creates or updates the durable consumer.
// It returns an error only when ctx ends.
func (l *Loop) attach(ctx context.Context) (jetstream.Consumer, error) {
	waiting := false
	for {
		cons, err := l.createConsumer(ctx)
		if err == nil {
			l.attached.Store(true)
			l.logger.InfoContext(ctx, l.name+": attached", "stream", l.cfg.Stream, "durable", l.cfg.Durable)
			return cons, nil
		}
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, jetstream.ErrStreamNotFound):
			if !waiting {
				l.logger.InfoContext(ctx, l.name+": waiting for the stream", "stream", l.cfg.Stream)
				waiting = true
			}
		default:
			l.logger.WarnContext(ctx, l.name+": attach", "err", err)
		}
		if !sleep(ctx, time.Second) {
			return nil, ctx.Err()
		}
	}
}

func (l *Loop) createConsumer(ctx context.Context) (jetstream.Consumer, error) {
	st, err := l.js.Stream(ctx, l.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("nats: stream %s: %w", l.cfg.Stream, err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       l.cfg.Durable,
		Description:   l.cfg.Description,
		FilterSubject: l.cfg.SubjectPrefix + ".>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       l.cfg.AckWait,
		MaxAckPending: l.cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: consumer %s on %s: %w", l.cfg.Durable, l.cfg.Stream, err)
	}
	return cons, nil
}

// pull fetches and hands over batches until ctx ends (nil) or a pull fails.
func (l *Loop) pull(ctx context.Context, cons jetstream.Consumer) error {
	for ctx.Err() == nil {
		msgs, err := l.fetch(cons)
		if len(msgs) > 0 {
			// The batch is finished even when ctx ends meanwhile: its
			// messages are ours until acked, and a half-done batch would
			// only wait AckWait to be redelivered.
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.AckWait)
			l.handle(bctx, msgs)
			cancel()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fetch waits up to IdleWait for a first message, then takes whatever else
// is already available up to BatchSize: a burst becomes one batch, and a
// lone event is not held back waiting for company. A pull is never cut
// short (a cancelled pull would strand messages the server already sent),
// so shutdown waits at most IdleWait.
func (l *Loop) fetch(cons jetstream.Consumer) ([]jetstream.Msg, error) {
	first, err := cons.Fetch(1, jetstream.FetchMaxWait(l.cfg.IdleWait))
	if err != nil {
		return nil, fmt.Errorf("nats: fetch: %w", err)
	}
	msgs, err := collect(first, nil)
	if err != nil || len(msgs) == 0 || l.cfg.BatchSize == 1 {
		return msgs, err
	}
	rest, err := cons.FetchNoWait(l.cfg.BatchSize - 1)
	if err != nil {
		return msgs, fmt.Errorf("nats: fetch: %w", err)
	}
	return collect(rest, msgs)
}

func collect(b jetstream.MessageBatch, msgs []jetstream.Msg) ([]jetstream.Msg, error) {
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	if err := b.Error(); err != nil {
		return msgs, fmt.Errorf("nats: fetch: %w", err)
	}
	return msgs, nil
}

// flush makes sure the acks sent so far have reached the server.
func (l *Loop) flush() {
	if err := l.js.Conn().FlushTimeout(5 * time.Second); err != nil {
		l.logger.Error(l.name+": flush acks", "err", err)
	}
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
