package chaos

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/polltest"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// CheckOptions tune the oracle for a case.
type CheckOptions struct {
	// Sampler, when set, contributes the version regressions it saw.
	Sampler *Sampler
	// Unprojectable are carts whose events the projector cannot apply
	// (a parked poison): their read model is not compared.
	Unprojectable map[string]bool
}

// Report is what the oracle found.
type Report struct {
	Counts
	Events, Carts, Messages int
	Samples                 int
	// Lost are the acknowledged messages the stream lost that the case
	// saw; LostReads the carts among theirs read through the query.
	Lost, LostReads int
	Settled         time.Duration
	Problems        []string
}

func (r Report) String() string {
	return fmt.Sprintf("%s; %d events in %d carts, %d stream messages (%d acknowledged ones the stream lost, %d of their carts read after), %d read-model samples; quiet after %s; %d problems",
		r.Counts, r.Events, r.Carts, r.Messages, r.Lost, r.LostReads, r.Samples, r.Settled.Round(time.Millisecond), len(r.Problems))
}

// Check waits until the system is quiet — the outbox drained, the stream
// holding as many messages as the log holds events, every cart's document
// at its head version — and then compares the ledger, the event log, the
// stream and the read model. Any problem fails the test.
//
// The stream has a bound of its own, Mode.Republish, from the last time it
// lost messages or NATS came back (or from now): the relay must have
// published every event by then, those the stream lost included. Carts the
// stream lost events of are read through the query service meanwhile.
func (s *System) Check(tb testing.TB, ledger *Ledger, opts CheckOptions) Report {
	tb.Helper()
	start := time.Now()
	ctx := context.Background()
	var p problems
	since, why := s.streamClock(start)
	bound := s.Mode.Republish()
	streamErr := wait(time.Until(since.Add(bound)), s.streamComplete)
	lostReads := s.checkLostReads(tb, &p, ledger, since.Add(bound))

	settle, quiet := s.Mode.Settle(), func() error {
		if err := s.streamComplete(); err != nil {
			return err
		}
		return s.readModelAtHeads(opts)
	}
	if streamErr != nil {
		// The stream will not be whole: what can still come is the read
		// model catching up with what the projector got.
		settle, quiet = bound, func() error { return s.readModelAtHeads(opts) }
	}
	if err := wait(settle, quiet); err != nil {
		p.add("NOT QUIET within %s: %v", settle, err)
	}
	rep := Report{Counts: ledger.Counts(time.Time{}, time.Time{}), LostReads: lostReads, Settled: time.Since(start)}

	events, err := s.allEvents(ctx)
	if err != nil {
		tb.Fatalf("oracle: %v", err)
	}
	msgs, err := s.streamMessages(ctx)
	if err != nil {
		p.add("stream: %v", err)
	}
	lost := s.lostEvents()
	rep.Events, rep.Messages, rep.Lost = len(events), len(msgs), len(lost)
	byCart := map[string][]envelope.Envelope{}
	for _, e := range events {
		byCart[e.StreamID] = append(byCart[e.StreamID], e)
	}
	rep.Carts = len(byCart)

	checkRestreamed(&p, ledger, events, msgs, lost, streamErr, bound, since.Format("15:04:05.000"), why)
	checkLog(&p, byCart)
	checkLedger(&p, ledger, events, byCart)
	checkStream(&p, events, msgs, lost)
	s.checkReadModel(ctx, &p, byCart, opts.Unprojectable)
	if opts.Sampler != nil {
		samples, regressions := opts.Sampler.Result()
		rep.Samples = samples
		for _, r := range regressions {
			p.add("version regression: %s", r)
		}
	}
	rep.Problems = p
	tb.Logf("oracle: %s", rep)
	if len(p) > 0 {
		const show = 40
		for i, msg := range p {
			if i == show {
				tb.Errorf("oracle: … and %d more", len(p)-show)
				break
			}
			tb.Errorf("oracle: %s", msg)
		}
		tb.FailNow()
	}
	return rep
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// wait polls check until it returns nil or within has passed, and returns
// its last error.
func wait(within time.Duration, check func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(polltest.Interval)
	}
}

// streamComplete is nil once the outbox is drained and the stream holds as
// many messages as the log holds events.
func (s *System) streamComplete() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var outbox, events int
	if err := s.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM events)`).Scan(&outbox, &events); err != nil {
		return err
	}
	if outbox > 0 {
		return fmt.Errorf("%d outbox rows not published", outbox)
	}
	info, err := s.streamInfo(ctx)
	if err != nil {
		return err
	}
	if int(info.State.Msgs) != events {
		return fmt.Errorf("%d stream messages for %d events", info.State.Msgs, events)
	}
	return nil
}

// readModelAtHeads is nil once every cart's document is at the cart's
// head version.
func (s *System) readModelAtHeads(opts CheckOptions) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := s.Pool.Query(ctx, `SELECT stream_id::text, max(version) FROM events GROUP BY stream_id`)
	if err != nil {
		return err
	}
	heads := map[string]int{}
	for rows.Next() {
		var id string
		var v int
		if err := rows.Scan(&id, &v); err != nil {
			return err
		}
		if !opts.Unprojectable[id] {
			heads[id] = v
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	gen, err := s.Generation(ctx)
	if err != nil {
		return err
	}
	keys := readmodel.Keys{Prefix: s.Prefix, Generation: gen}
	pipe := s.Redis.Pipeline()
	cmds := map[string]*redis.StringCmd{}
	for id := range heads {
		cmds[id] = pipe.HGet(ctx, keys.Cart(id), readmodel.FieldVersion)
	}
	_, _ = pipe.Exec(ctx)
	behind := 0
	var example string
	for id, head := range heads {
		v, err := cmds[id].Int()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if v != head {
			behind++
			example = fmt.Sprintf("cart %s at v%d of %d", id, v, head)
		}
	}
	if behind > 0 {
		return fmt.Errorf("%d carts behind in the read model (e.g. %s)", behind, example)
	}
	return nil
}

func (s *System) allEvents(ctx context.Context) ([]envelope.Envelope, error) {
	var all []envelope.Envelope
	var after int64
	for {
		page, err := eventlog.ReadAll(ctx, s.Pool, after, 2000)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 2000 {
			return all, nil
		}
		after = page[len(page)-1].Position
	}
}
