package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/backoff"
)

// loop runs the durable pull consumer: it waits for the stream (the
// command service's relay creates it), creates or updates the consumer,
// receives messages and hands them in batches to the handler, which
// settles every message (ack, nak or term) or holds it until it is
// flushed; after a failed pull (the consumer deleted, NATS gone) it
// attaches again.
type loop struct {
	cfg      Config
	js       jetstream.JetStream
	h        handler
	logger   *slog.Logger
	attached atomic.Bool
}

// handler is what the loop hands batches to; the loop is its one caller.
type handler interface {
	// Process settles a batch's messages or holds them.
	Process(ctx context.Context, msgs []jetstream.Msg)
	// due is when the held messages must be flushed; false when none are.
	due() (time.Time, bool)
	// flush settles every held message.
	flush(ctx context.Context)
}

func newLoop(cfg Config, js jetstream.JetStream, h handler, logger *slog.Logger) *loop {
	return &loop{cfg: cfg, js: js, h: h, logger: logger}
}

// Attached reports whether the loop has its consumer and is pulling.
func (l *loop) Attached() bool { return l.attached.Load() }

// Run pulls and hands over batches until ctx ends. A batch already pulled
// is finished, what is held flushed, and the acks sent, before Run
// returns; Run then returns nil.
func (l *loop) Run(ctx context.Context) error {
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
		l.logger.WarnContext(ctx, "projector: pull failed, attaching again", "err", err)
		if !backoff.Sleep(ctx, time.Second) {
			return nil
		}
	}
}

// attach waits for the stream and creates or updates the durable consumer.
// It returns an error only when ctx ends.
func (l *loop) attach(ctx context.Context) (jetstream.Consumer, error) {
	waiting := false
	for {
		cons, err := l.createConsumer(ctx)
		if err == nil {
			l.attached.Store(true)
			l.logger.InfoContext(ctx, "projector: attached", "stream", l.cfg.Stream, "durable", l.cfg.Durable)
			return cons, nil
		}
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, jetstream.ErrStreamNotFound):
			if !waiting {
				l.logger.InfoContext(ctx, "projector: waiting for the stream", "stream", l.cfg.Stream)
				waiting = true
			}
		default:
			l.logger.WarnContext(ctx, "projector: attach", "err", err)
		}
		if !backoff.Sleep(ctx, time.Second) {
			return nil, ctx.Err()
		}
	}
}

func (l *loop) createConsumer(ctx context.Context) (jetstream.Consumer, error) {
	st, err := l.js.Stream(ctx, l.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("nats: stream %s: %w", l.cfg.Stream, err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       l.cfg.Durable,
		Description:   "cart read models in Redis",
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

// pull receives messages and hands them over in batches until ctx ends
// (nil) or the consumer is gone (an error: attach again). Either way, what
// is held is flushed before it returns.
//
// The messages come from one long-lived pull subscription (Consume) that
// asks for more before the client's buffer runs dry, so a message is handed
// over the moment it arrives, with no pull request of its own. A batch is
// whatever has arrived by the time the previous one is done, up to
// BatchSize: one message when idle, full batches under load.
func (l *loop) pull(ctx context.Context, cons jetstream.Consumer) error {
	msgs := make(chan jetstream.Msg, l.cfg.BatchSize)
	errs := make(chan error, 1)
	stopped := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-stopped: // not handed over: redelivered after AckWait
		}
	},
		jetstream.PullMaxMessages(l.cfg.BatchSize),
		jetstream.PullExpiry(max(l.cfg.IdleWait, time.Second)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		return fmt.Errorf("nats: consume %s: %w", l.cfg.Durable, err)
	}
	defer close(stopped)
	// Held messages are flushed when due even if nothing else arrives.
	due := time.NewTimer(time.Hour)
	due.Stop()
	defer due.Stop()
	defer l.within(ctx, l.h.flush)
	batch := make([]jetstream.Msg, 0, l.cfg.BatchSize)
	for {
		select {
		case m := <-msgs:
			l.handleBatch(ctx, gather(append(batch[:0], m), msgs, l.cfg.BatchSize), due)
		case <-due.C:
			l.tend(ctx, due)
		case err := <-errs:
			if l.gone(ctx, cons, err) {
				cc.Stop()
				return err
			}
		case <-cc.Closed(): // the library gave up: the consumer was deleted
			return errors.New("nats: consume: subscription closed")
		case <-ctx.Done():
			// What the client already holds is ours: finish it, rather than
			// leave it to be redelivered after AckWait.
			cc.Drain()
			for {
				select {
				case m := <-msgs:
					l.handleBatch(ctx, gather(append(batch[:0], m), msgs, l.cfg.BatchSize), due)
				case <-cc.Closed():
					for len(msgs) > 0 {
						l.handleBatch(ctx, gather(batch[:0], msgs, l.cfg.BatchSize), due)
					}
					return nil
				}
			}
		}
	}
}

// handleBatch hands a batch over, then flushes what is held if it is due.
// The batch is finished even when ctx ends meanwhile (see within).
func (l *loop) handleBatch(ctx context.Context, batch []jetstream.Msg, due *time.Timer) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.AckWait)
	l.h.Process(bctx, batch)
	cancel()
	l.tend(ctx, due)
}

// tend flushes what is held once it is due, and sets the timer to when
// what is held next will be.
func (l *loop) tend(ctx context.Context, due *time.Timer) {
	at, ok := l.h.due()
	if ok && !time.Now().Before(at) {
		l.within(ctx, l.h.flush)
		at, ok = l.h.due()
	}
	if ok {
		due.Reset(time.Until(at))
	} else {
		due.Stop()
	}
}

// within runs fn to the end even when ctx ends meanwhile, bounded by
// AckWait: the messages it works on are ours until settled, and a
// half-done batch would only wait AckWait to be redelivered.
func (l *loop) within(ctx context.Context, fn func(context.Context)) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.AckWait)
	defer cancel()
	fn(wctx)
}

// gather adds what msgs already holds to batch, up to n messages.
func gather(batch []jetstream.Msg, msgs <-chan jetstream.Msg, n int) []jetstream.Msg {
	for len(batch) < n {
		select {
		case m := <-msgs:
			batch = append(batch, m)
		default:
			return batch
		}
	}
	return batch
}

// gone reports whether err means the consumer (or its stream) no longer
// exists, so that the loop must attach again. Missed heartbeats while NATS
// is away are not that: the subscription resumes by itself on reconnect.
func (l *loop) gone(ctx context.Context, cons jetstream.Consumer, err error) bool {
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return true
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, ierr := cons.Info(ictx)
	return errors.Is(ierr, jetstream.ErrConsumerNotFound) || errors.Is(ierr, jetstream.ErrStreamNotFound)
}

// flush makes sure the acks sent so far have reached the server.
func (l *loop) flush() {
	if err := l.js.Conn().FlushTimeout(5 * time.Second); err != nil {
		l.logger.Error("projector: flush acks", "err", err)
	}
}
