package chaos

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
	Settled                 time.Duration
	Problems                []string
}

func (r Report) String() string {
	return fmt.Sprintf("%s; %d events in %d carts, %d stream messages, %d read-model samples; quiet after %s; %d problems",
		r.Counts, r.Events, r.Carts, r.Messages, r.Samples, r.Settled.Round(time.Millisecond), len(r.Problems))
}

// Check waits until the system is quiet — the outbox drained, the stream
// holding as many messages as the log holds events, every cart's document
// at its head version — and then compares the ledger, the event log, the
// stream and the read model. Any problem fails the test.
func (s *System) Check(tb testing.TB, ledger *Ledger, opts CheckOptions) Report {
	tb.Helper()
	start := time.Now()
	polltest.Until(tb, s.Mode.Settle(), "the system to become quiet", func() error { return s.quiet(opts) })
	rep := Report{Counts: ledger.Counts(time.Time{}, time.Time{}), Settled: time.Since(start)}
	ctx := context.Background()

	events, err := s.allEvents(ctx)
	if err != nil {
		tb.Fatalf("oracle: %v", err)
	}
	msgs, err := s.streamMessages(ctx)
	if err != nil {
		tb.Fatalf("oracle: %v", err)
	}
	rep.Events, rep.Messages = len(events), len(msgs)
	byCart := map[string][]envelope.Envelope{}
	for _, e := range events {
		byCart[e.StreamID] = append(byCart[e.StreamID], e)
	}
	rep.Carts = len(byCart)

	var p problems
	checkLog(&p, byCart)
	checkLedger(&p, ledger, events, byCart)
	checkStream(&p, events, msgs)
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

// quiet is nil once nothing is in flight any more.
func (s *System) quiet(opts CheckOptions) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var outbox, events int
	if err := s.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM events)`).Scan(&outbox, &events); err != nil {
		return err
	}
	if outbox > 0 {
		return fmt.Errorf("%d outbox rows not published", outbox)
	}
	st, err := s.JS.Stream(ctx, s.Stream)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	if int(info.State.Msgs) != events {
		return fmt.Errorf("%d stream messages for %d events", info.State.Msgs, events)
	}
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

// streamMessages reads the whole stream, in stream order.
func (s *System) streamMessages(ctx context.Context) ([]envelope.Envelope, error) {
	st, err := s.JS.Stream(ctx, s.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", s.Stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []envelope.Envelope
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stream message %d: %w", seq, err)
		}
		e, err := envelope.UnmarshalCloudEvent(m.Data)
		if err != nil {
			return nil, fmt.Errorf("stream message %d: %w", seq, err)
		}
		if id := m.Header.Get(jetstream.MsgIDHeader); id != e.EventID {
			return nil, fmt.Errorf("stream message %d: Nats-Msg-Id %q for event %s", seq, id, e.EventID)
		}
		out = append(out, e)
	}
	return out, nil
}
