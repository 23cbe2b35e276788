package chaos

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// StreamLoss is a time the stream lost messages JetStream had already
// acknowledged: the relay must find out and publish them again.
type StreamLoss struct {
	What string // what happened, for the failure messages
	// At is when the stream lost them: the server came back, the stream
	// was deleted. The oracle's clock for the stream starts there.
	At time.Time
	// Before and After are the stream's last sequence before and after
	// (0: the stream is gone).
	Before, After uint64
	// Lost are the lost messages a StreamWatch had read.
	Lost []StreamEvent
}

func (l StreamLoss) String() string {
	carts := map[string]bool{}
	for _, m := range l.Lost {
		carts[m.StreamID] = true
	}
	return fmt.Sprintf("%s at %s: the last sequence went from %d to %d; %d acknowledged messages of %d carts lost",
		l.What, l.At.Format("15:04:05.000"), l.Before, l.After, len(l.Lost), len(carts))
}

// RevertNATS stops the NATS server, puts snapshot (a NATS.Snapshot) in
// place of its store, runs whileDown unless it is nil, and starts the
// server again on the same port: JetStream has forgotten what it
// acknowledged since the snapshot. w must be watching the stream;
// RevertNATS lets it read up to the last message and stops it. The test
// fails unless the stream's last sequence went backwards, so that a case
// cannot pass having lost nothing.
func (s *System) RevertNATS(tb testing.TB, snapshot string, w *StreamWatch, whileDown func()) StreamLoss {
	tb.Helper()
	ctx := context.Background()
	info, err := s.streamInfo(ctx)
	if err != nil {
		tb.Fatalf("chaos: %v", err)
	}
	before := info.State.LastSeq
	awaitWatch(tb, w, before)
	w.Stop()
	s.NATS.Shutdown()
	if err := s.NATS.Restore(snapshot); err != nil {
		tb.Fatal(err)
	}
	// Read before the clients can publish again.
	restored, err := RecoveredStreamState(ctx, s.NATS.StoreDir(), s.Stream)
	if err != nil {
		tb.Fatal(err)
	}
	if restored.LastSeq >= before {
		tb.Fatalf("chaos: the revert lost nothing: the stream's last sequence was %d and is %d in the restored store", before, restored.LastSeq)
	}
	if whileDown != nil {
		whileDown()
	}
	if err := s.NATS.Start(); err != nil {
		tb.Fatal(err)
	}
	loss := StreamLoss{What: "NATS came back with an older store", At: s.NATS.Returned(), Before: before, After: restored.LastSeq, Lost: w.Above(restored.LastSeq)}
	s.losses = append(s.losses, loss)
	return loss
}

// DeleteStream deletes the stream while the system runs, as an operator's
// mistake would. w is as for RevertNATS.
func (s *System) DeleteStream(tb testing.TB, w *StreamWatch) StreamLoss {
	tb.Helper()
	ctx := context.Background()
	info, err := s.streamInfo(ctx)
	if err != nil {
		tb.Fatalf("chaos: %v", err)
	}
	awaitWatch(tb, w, info.State.LastSeq)
	w.Stop()
	if err := s.JS.DeleteStream(ctx, s.Stream); err != nil {
		tb.Fatalf("chaos: delete stream %s: %v", s.Stream, err)
	}
	loss := StreamLoss{What: "the stream was deleted", At: time.Now(), Before: info.State.LastSeq, Lost: w.Above(0)}
	if len(loss.Lost) == 0 {
		tb.Fatalf("chaos: deleted stream %s before anything was published to it", s.Stream)
	}
	s.losses = append(s.losses, loss)
	return loss
}

// streamClock is where the oracle's clock for the stream starts, and why
// there: the last time the stream lost messages or NATS came back, or now.
func (s *System) streamClock(now time.Time) (time.Time, string) {
	var at time.Time
	var why string
	if r := s.NATS.Returned(); !r.IsZero() {
		at, why = r, "NATS came back"
	}
	for _, l := range s.losses {
		if !l.At.Before(at) {
			at, why = l.At, l.What
		}
	}
	if at.IsZero() {
		return now, "the oracle started"
	}
	return at, why
}

// lostEvents says, for each event a StreamLoss took, where it was.
func (s *System) lostEvents() map[string]string {
	lost := map[string]string{}
	for _, l := range s.losses {
		for _, m := range l.Lost {
			lost[m.EventID] = fmt.Sprintf("at sequence %d before %s at %s", m.Seq, l.What, l.At.Format("15:04:05.000"))
		}
	}
	return lost
}

// checkRestreamed: every acknowledged command's event is on the stream
// again (streamErr is what was still missing at the bound).
func checkRestreamed(p *problems, ledger *Ledger, events []envelope.Envelope, msgs []StreamEvent, lost map[string]string, streamErr error, bound time.Duration, since, why string) {
	if streamErr == nil {
		return
	}
	acked := map[string]bool{}
	for _, c := range ledger.Commands() {
		if c.Outcome == OK {
			acked[c.ID] = true
		}
	}
	on := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		on[m.EventID] = true
	}
	var missing, wasLost int
	var example string
	for _, e := range events {
		if !acked[e.Metadata.CorrelationID] || on[e.EventID] {
			continue
		}
		missing++
		if where, ok := lost[e.EventID]; ok {
			wasLost++
			if example == "" {
				example = fmt.Sprintf("; e.g. cart %s v%d, %s", e.StreamID, e.Version, where)
			}
		}
	}
	p.add("STREAM NOT WHOLE AGAIN %s after %s (at %s; the bound for the relay to publish what the stream lost): %v; %d acknowledged commands' events are not on it, %d of them lost by the stream%s",
		bound, why, since, streamErr, missing, wasLost, example)
}

// lostCart is a cart the stream lost events of: the highest version lost,
// and the cart's head in the event log.
type lostCart struct{ lost, head int }

// lostCarts picks up to limit carts the stream lost events of, those whose
// last event it lost first.
func (s *System) lostCarts(ctx context.Context, limit int) (map[string]lostCart, error) {
	lostTop := map[string]int{}
	for _, l := range s.losses {
		for _, m := range l.Lost {
			lostTop[m.StreamID] = max(lostTop[m.StreamID], m.Version)
		}
	}
	if len(lostTop) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(lostTop))
	for id := range lostTop {
		ids = append(ids, id)
	}
	rows, err := s.Pool.Query(ctx, `SELECT stream_id::text, max(version) FROM events WHERE stream_id = ANY($1::uuid[]) GROUP BY stream_id`, ids)
	if err != nil {
		return nil, fmt.Errorf("heads of the carts the stream lost events of: %w", err)
	}
	heads := map[string]int{}
	for rows.Next() {
		var id string
		var v int
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		heads[id] = v
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// The carts whose head was lost first, then the others; by id within.
	slices.SortFunc(ids, func(a, b string) int {
		ha, hb := lostTop[a] == heads[a], lostTop[b] == heads[b]
		switch {
		case ha && !hb:
			return -1
		case hb && !ha:
			return 1
		}
		return cmp.Compare(a, b)
	})
	picked := map[string]lostCart{}
	for _, id := range ids[:min(limit, len(ids))] {
		picked[id] = lostCart{lost: lostTop[id], head: heads[id]}
	}
	return picked, nil
}

// lostReads is how many carts the oracle reads after the stream lost
// their events.
const lostReads = 10

// checkLostReads reads carts the stream lost events of through the query
// service, as their customers would right after a command:
// GET /v1/carts/{id}?minVersion=<head> must answer 200 with the head by
// deadline (one try at least). It returns how many carts it read.
func (s *System) checkLostReads(tb testing.TB, p *problems, ledger *Ledger, deadline time.Time) int {
	tb.Helper()
	ctx := context.Background()
	carts, err := s.lostCarts(ctx, lostReads)
	if err != nil {
		p.add("reads after the stream lost events: %v", err)
		return 0
	}
	owners := ledger.owners()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, c := range carts {
		owner, ok := owners[id]
		if !ok {
			mu.Lock()
			p.add("reads after the stream lost events: no command names cart %s", id)
			mu.Unlock()
			continue
		}
		token := s.Token(tb, owner)
		wg.Go(func() {
			if err := s.awaitRead(ctx, token, id, c.head, deadline); err != nil {
				mu.Lock()
				defer mu.Unlock()
				p.add("READ AFTER LOSS: cart %s at v%d, whose v%d the stream lost: %v", id, c.head, c.lost, err)
			}
		})
	}
	wg.Wait()
	return len(carts)
}

// awaitRead asks the query service for cart id at version head or later
// until it answers 200 with it, or deadline.
func (s *System) awaitRead(ctx context.Context, token, id string, head int, deadline time.Time) error {
	tries := 0
	for {
		tries++
		status, body, err := s.ReadCart(ctx, token, id, head)
		var doc readmodel.Cart
		switch {
		case err != nil:
		case status != 200:
			err = fmt.Errorf("%d %.500s", status, body)
		case json.Unmarshal(body, &doc) != nil || doc.Version < head:
			err = fmt.Errorf("200 with version %d: %.500s", doc.Version, body)
		default:
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET /v1/carts/%s?minVersion=%d: %w (try %d, given up at %s)", id, head, err, tries, deadline.Format("15:04:05.000"))
		}
		time.Sleep(100 * time.Millisecond) // a reader's retry, not a wait for correctness
	}
}
