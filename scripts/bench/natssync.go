package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/scripts/bench/report"
	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// The synchronous publisher's stream, apart from the system's, and what it
// publishes.
const (
	syncStream        = "CART_BENCH_SYNC"
	syncSubjectPrefix = "bench.sync"
	syncMessageBytes  = 512
	syncPublishWarmup = 500 * time.Millisecond
	syncPublishFor    = 3 * time.Second
	// syncCatchUp bounds the wait for the stream to have every event of a
	// run: with an fsync per message the relay may fall behind.
	syncCatchUp = 10 * time.Second
)

// natsSync measures what the stream's durability costs: for each sync
// setting of BENCH_NATS_SYNC, a nats-server of its own, first alone under
// one synchronous publisher, then under the commands at the most clients.
func (b *bench) natsSync(ctx context.Context) error {
	switch {
	case len(b.cfg.NATSSync) == 0:
		b.note("The NATS sync comparison was skipped (BENCH_NATS_SYNC=off).")
		return nil
	case b.cfg.NATSURL != "":
		b.note("The NATS sync comparison did not run: it sets the sync of a nats-server of the benchmark's own, and BENCH_NATS_URL names another.")
		return nil
	}
	start := time.Now()
	for _, sync := range b.cfg.NATSSync {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		run, err := b.syncRun(ctx, sync)
		b.res.NATSSync = append(b.res.NATSSync, run)
		if err != nil && ctx.Err() == nil {
			b.failedRun(fmt.Errorf("NATS sync %s: %w", sync, err))
		}
	}
	b.say("NATS sync comparison: %v", time.Since(start).Round(time.Second))
	return nil
}

// syncRun measures one sync setting on a fresh server, database and
// services.
func (b *bench) syncRun(ctx context.Context, sync string) (run report.SyncRun, err error) {
	run.Sync = sync
	nats, err := b.startNATS(ctx, "nats-server-sync-"+slug(sync), sync)
	if err != nil {
		return run, err
	}
	defer b.stopNATS(nats)
	b.say("NATS sync %s: one publisher waiting for each PubAck, %v", sync, syncPublishFor)
	pub, err := syncPublish(ctx, nats.url, syncPublishWarmup, syncPublishFor)
	if err != nil {
		return run, err
	}
	run.Publish = &pub
	b.say("    %.0f publishes/s, p50 %.2f ms, p99 %.2f ms", pub.PerSec, pub.P50Ms, pub.P99Ms)
	err = b.withServices(ctx, nats, func(ctx context.Context, st *stack, m *meter) error {
		c := b.cfg.maxClients()
		spec := loadSpec{
			name: fmt.Sprintf("commands, %d clients, NATS sync %s", c, sync), scenario: "commands", mode: load.Closed, clients: c,
			commandURL: st.url(report.ServiceCommand), queryURL: st.url(report.ServiceQuery),
		}
		res, u, err := b.measuredLoad(ctx, m, spec, report.Usage{Kind: report.WindowSync, Clients: c})
		if err != nil {
			return err
		}
		run.Commands, run.Usage = &res, &u
		b.say("    %.0f µs of CPU per command, every process of the system", u.PerUnit(u.System()))
		run.Behind, run.CaughtUp, run.CaughtUpSeconds, err = streamCatchUp(ctx, b.cfg.DatabaseURL, st.natsURL)
		if err == nil && run.Behind > 0 {
			b.say("    the stream lacked %d events when the load stopped; caught up: %v after %.1f s", run.Behind, run.CaughtUp, run.CaughtUpSeconds)
		}
		return err
	})
	return run, err
}

// syncPublish publishes syncMessageBytes-byte messages to a file stream
// of its own, one at a time, each waiting for its PubAck, for warmup and
// then for d, and deletes the stream.
func syncPublish(ctx context.Context, url string, warmup, d time.Duration) (pub report.SyncPublish, err error) {
	nc, err := nats.Connect(url, nats.Name("cart-bench-sync"))
	if err != nil {
		return pub, fmt.Errorf("sync publish: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return pub, fmt.Errorf("sync publish: %w", err)
	}
	// As the product's stream: file storage, one replica, a duplicate
	// window the Nats-Msg-Id of every message is checked against.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: syncStream, Subjects: []string{syncSubjectPrefix + ".>"},
		Storage: jetstream.FileStorage, Replicas: 1, Duplicates: 5 * time.Minute,
	}); err != nil {
		return pub, fmt.Errorf("sync publish: create stream: %w", err)
	}
	defer func() {
		if derr := js.DeleteStream(context.WithoutCancel(ctx), syncStream); derr != nil {
			err = errors.Join(err, fmt.Errorf("sync publish: delete stream: %w", derr))
		}
	}()
	payload := bytes.Repeat([]byte("x"), syncMessageBytes)
	var (
		took       []time.Duration
		start, end time.Time
	)
	measureFrom := time.Now().Add(warmup)
	for i := 0; ; i++ {
		sent := time.Now()
		if sent.After(measureFrom.Add(d)) {
			break
		}
		if _, err := js.Publish(ctx, syncSubjectPrefix+"."+strconv.Itoa(i%1000), payload,
			jetstream.WithMsgID("sync-"+strconv.Itoa(i)), jetstream.WithExpectStream(syncStream)); err != nil {
			return pub, fmt.Errorf("sync publish: message %d: %w", i, err)
		}
		if sent.Before(measureFrom) {
			continue
		}
		end = time.Now()
		if start.IsZero() {
			start = sent
		}
		took = append(took, end.Sub(sent))
	}
	return publishStats(took, end.Sub(start), syncMessageBytes), nil
}

// publishStats summarizes the publish-to-PubAck times of a window.
func publishStats(took []time.Duration, window time.Duration, size int) report.SyncPublish {
	p := report.SyncPublish{Messages: int64(len(took)), Bytes: size, Seconds: window.Seconds()}
	if len(took) == 0 || window <= 0 {
		return p
	}
	sorted := slices.Sorted(slices.Values(took))
	at := func(q float64) float64 { // nearest rank
		i := int(q*float64(len(sorted))+0.5) - 1
		return float64(sorted[min(max(i, 0), len(sorted)-1)]) / float64(time.Millisecond)
	}
	p.PerSec = float64(len(took)) / window.Seconds()
	p.P50Ms, p.P99Ms, p.MaxMs = at(0.50), at(0.99), at(1)
	return p
}

// streamCatchUp says how many of the event store's events the system's
// stream lacked when called, and waits up to syncCatchUp for it to hold
// them all: caught says whether it did, seconds how long it took or waited.
func streamCatchUp(ctx context.Context, dbURL, natsURL string) (behind int64, caught bool, seconds float64, err error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, false, 0, fmt.Errorf("catch-up: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }() // read-only
	nc, err := nats.Connect(natsURL, nats.Name("cart-bench"))
	if err != nil {
		return 0, false, 0, fmt.Errorf("catch-up: nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, false, 0, fmt.Errorf("catch-up: jetstream: %w", err)
	}
	lacking := func(ctx context.Context) (int64, error) {
		var events int64
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events); err != nil {
			return 0, fmt.Errorf("catch-up: events: %w", err)
		}
		s, err := js.Stream(ctx, natsStream)
		if err != nil {
			return 0, fmt.Errorf("catch-up: stream %s: %w", natsStream, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("catch-up: stream %s: %w", natsStream, err)
		}
		return max(0, events-int64(info.State.Msgs)), nil
	}
	start := time.Now()
	if behind, err = lacking(ctx); err != nil || behind == 0 {
		return behind, err == nil, 0, err
	}
	err = waitUntil(ctx, syncCatchUp, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		n, err := lacking(ctx)
		return n == 0, err
	})
	seconds = time.Since(start).Seconds()
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return behind, false, seconds, nil // still behind: that is the finding
	}
	return behind, err == nil, seconds, err
}
