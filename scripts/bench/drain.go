package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/scripts/bench/backlog"
	"github.com/cart-cqrs/cart/scripts/bench/report"
)

const (
	quietTimeout = 2 * time.Minute
	drainTimeout = 3 * time.Minute
	outboxPoll   = 10 * time.Millisecond
	consumerPoll = 50 * time.Millisecond
)

// drain stops the command service, writes an outbox backlog as it would
// have, starts it again and times its relay draining the outbox, then the
// projector catching up with the backlog, measuring the CPU time of every
// process over both.
func (b *bench) drain(ctx context.Context, st *stack, m *meter) (err error) {
	pool, err := pgxpool.New(ctx, b.cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	defer pool.Close()
	nc, err := nats.Connect(st.natsURL, nats.Name("cart-bench"))
	if err != nil {
		return fmt.Errorf("drain: nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("drain: jetstream: %w", err)
	}
	caughtUp := func(ctx context.Context) (bool, error) { return consumerIdle(ctx, js) }

	b.say("relay drain: waiting for the system to settle")
	if err := waitUntil(ctx, quietTimeout, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		left, err := outboxLeft(ctx, pool, 0)
		if err != nil || left > 0 {
			return false, err
		}
		return caughtUp(ctx)
	}); err != nil {
		return fmt.Errorf("drain: before the backlog: %w", err)
	}
	if err := st.stop(report.ServiceCommand); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	b.say("relay drain: writing %d events with their outbox rows while the command service is down", b.cfg.DrainEvents)
	seeded, err := backlog.Seed(ctx, pool, b.cfg.DrainEvents, fmt.Sprintf("bench-%s-backlog", b.runID), time.Now())
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}

	b.say("relay drain: starting the command service")
	wctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	watched := make(chan drainWatch, 1)
	begin := m.read(ctx, 0, true)
	start := time.Now()
	go func() { watched <- watchOutbox(wctx, pool, seeded) }()
	if err := st.start(ctx, report.ServiceCommand); err != nil {
		cancel()
		<-watched
		return fmt.Errorf("drain: %w", err)
	}
	w := <-watched
	if w.err != nil {
		return fmt.Errorf("drain: %w", w.err)
	}
	drained := usage(begin, m.read(ctx, 0, false), m.hz, report.WindowDrain, int64(seeded.Events), "event")
	b.res.Usage = append(b.res.Usage, drained)
	d := &report.Drain{Events: seeded.Events, StartupSeconds: w.firstAt.Sub(start).Seconds()}
	if span := w.emptyAt.Sub(w.firstAt); span > 0 {
		d.Seconds, d.EventsPerSec = span.Seconds(), float64(w.firstLeft)/span.Seconds()
	} else {
		// Drained between two looks: all we know is the time since start.
		span = w.emptyAt.Sub(start)
		d.Seconds, d.EventsPerSec = span.Seconds(), float64(seeded.Events)/span.Seconds()
	}
	b.say("    relay drained %d events at %.0f events/s (%.2f s after %.2f s of start-up)", seeded.Events, d.EventsPerSec, d.Seconds, d.StartupSeconds)
	b.res.Drain = d

	err = waitUntil(ctx, drainTimeout, consumerPoll, caughtUp)
	if err == nil {
		caught := time.Since(start)
		d.CatchUpSeconds = caught.Seconds()
		d.CatchUpPerSec = float64(seeded.Events) / time.Since(w.firstAt).Seconds()
		caughtUp := usage(begin, m.read(ctx, 0, false), m.hz, report.WindowCatchUp, int64(seeded.Events), "event")
		b.res.Usage = append(b.res.Usage, caughtUp)
		b.say("    projector caught up %.2f s after the start (%.0f events/s)", d.CatchUpSeconds, d.CatchUpPerSec)
		b.say("    %.0f µs of CPU per event until the outbox was empty, %.0f until the projector caught up",
			drained.PerUnit(drained.System()), caughtUp.PerUnit(caughtUp.System()))
	} else {
		b.note(fmt.Sprintf("The projector did not catch up with the backlog within %v: %v", drainTimeout, err))
	}
	for _, svc := range []string{report.ServiceCommand, report.ServiceProjector} {
		m, err := st.memory(svc, report.PhaseBacklog)
		if err != nil {
			return fmt.Errorf("drain: %w", err)
		}
		b.res.Memory = append(b.res.Memory, m)
	}
	return nil
}

// drainWatch is what watchOutbox saw: when the outbox first shrank (and how
// much of the backlog was left then) and when it was empty.
type drainWatch struct {
	firstAt, emptyAt time.Time
	firstLeft        int64
	err              error
}

// watchOutbox looks at the backlog's outbox rows every outboxPoll until
// none is left.
func watchOutbox(ctx context.Context, pool *pgxpool.Pool, s backlog.Seeded) drainWatch {
	var w drainWatch
	total := int64(s.Events)
	t := time.NewTicker(outboxPoll)
	defer t.Stop()
	for {
		left, err := outboxLeft(ctx, pool, s.Last)
		if err != nil {
			w.err = err
			return w
		}
		now := time.Now()
		if left < total && w.firstAt.IsZero() {
			w.firstAt, w.firstLeft = now, left
		}
		if left == 0 {
			w.emptyAt = now
			return w
		}
		select {
		case <-ctx.Done():
			w.err = fmt.Errorf("the outbox still held %d of %d rows: %w", left, total, ctx.Err())
			return w
		case <-t.C:
		}
	}
}

// outboxLeft is how many outbox rows are left up to position last (0: all
// of them), from the lowest one left: the relay publishes and deletes in
// position order, and the index answers min() without counting rows.
func outboxLeft(ctx context.Context, pool *pgxpool.Pool, last int64) (int64, error) {
	var lowest, highest *int64
	if err := pool.QueryRow(ctx, `SELECT min(position), max(position) FROM outbox`).Scan(&lowest, &highest); err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	if lowest == nil {
		return 0, nil
	}
	if last == 0 {
		last = *highest
	}
	return max(0, last-*lowest+1), nil
}

// consumerIdle reports whether the projector's consumer has nothing left to
// deliver and nothing unacknowledged.
func consumerIdle(ctx context.Context, js jetstream.JetStream) (bool, error) {
	c, err := js.Consumer(ctx, natsStream, natsDurable)
	if err != nil {
		return false, fmt.Errorf("consumer %s: %w", natsDurable, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("consumer %s: %w", natsDurable, err)
	}
	return info.NumPending == 0 && info.NumAckPending == 0, nil
}

// waitUntil polls cond every interval until it holds, fails, or timeout
// passes.
func waitUntil(ctx context.Context, timeout, interval time.Duration, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond(ctx)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not within %v: %w", timeout, ctx.Err())
		case <-t.C:
		}
	}
}
