package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/jsontest"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// checkLog: each cart's stream is versions 1..n without a hole.
func checkLog(p *problems, byCart map[string][]envelope.Envelope) {
	for id, evs := range byCart {
		for i, e := range evs {
			if e.Version != i+1 {
				p.add("event log: cart %s has version %d at place %d", id, e.Version, i+1)
				break
			}
		}
	}
}

// kindType is the event each kind of command appends.
var kindType = map[string]string{
	"open": cart.TypeOpened, "add-item": cart.TypeItemAdded, "change-quantity": cart.TypeQuantityChanged,
	"remove-item": cart.TypeItemRemoved, "checkout": cart.TypeCheckedOut,
}

// checkLedger compares what the clients were told with the event log:
// nothing acknowledged is missing, nothing failed is there, nothing is
// there twice, and nothing is there that no command explains.
func checkLedger(p *problems, ledger *Ledger, events []envelope.Envelope, byCart map[string][]envelope.Envelope) {
	byCommand := map[string][]envelope.Envelope{}
	for _, e := range events {
		byCommand[e.Metadata.CorrelationID] = append(byCommand[e.Metadata.CorrelationID], e)
	}
	injected := ledger.injectedEvents()
	explained := map[string]bool{}
	for _, c := range ledger.Commands() {
		evs := byCommand[c.ID]
		for _, e := range evs {
			explained[e.EventID] = true
		}
		if len(evs) > 1 {
			p.add("APPLIED TWICE: %d events for command %s", len(evs), c)
		}
		for _, e := range evs {
			if e.Type != kindType[c.Kind] || (c.CartID != "" && e.StreamID != c.CartID) {
				p.add("command %s stored as %s in cart %s", c, e.Type, e.StreamID)
			}
		}
		switch c.Outcome {
		case OK:
			switch {
			case len(evs) >= 1 && evs[0].Version != c.Version:
				p.add("acknowledged at v%d but stored at v%d: %s", c.Version, evs[0].Version, c)
			case len(evs) == 0 && !noOp(c, byCart[c.CartID]):
				p.add("LOST: acknowledged command not in the event log: %s", c)
			}
		case Failed:
			if len(evs) > 0 {
				p.add("failed command applied: %s", c)
			}
		}
	}
	for id, committed := range injected {
		found := false
		for _, e := range events {
			if e.EventID == id {
				found, explained[id] = true, true
			}
		}
		switch {
		case committed && !found:
			p.add("LOST: injected event %s committed but not in the event log", id)
		case !committed && found:
			p.add("injected event %s rolled back but in the event log", id)
		}
	}
	for _, e := range events {
		if !explained[e.EventID] {
			p.add("event %s (cart %s v%d, %s, correlation %q) comes from no command", e.EventID, e.StreamID, e.Version, e.Type, e.Metadata.CorrelationID)
		}
	}
}

// noOp reports whether an acknowledged command rightly appended nothing:
// opening returned the open cart (200), or the line already had the
// quantity at the version the command was answered with.
func noOp(c *Command, evs []envelope.Envelope) bool {
	switch c.Kind {
	case "open":
		return c.Status == 200
	case "change-quantity":
		if c.Version > len(evs) {
			return false
		}
		st, err := fold(evs[:c.Version])
		if err != nil {
			return false
		}
		l, ok := st.Line(c.ProductID)
		return ok && l.Quantity == c.Quantity
	}
	return false
}

func fold(evs []envelope.Envelope) (cart.State, error) {
	st := cart.State{}
	for _, e := range evs {
		r, err := e.Recorded()
		if err != nil {
			return cart.State{}, err
		}
		st = cart.Evolve(st, r)
	}
	return st, nil
}

// checkStream: a subscriber reading the stream from the start sees every
// event exactly once and nothing else, each cart's events in version
// order. lost says where the events the stream lost had been.
func checkStream(p *problems, events []envelope.Envelope, msgs []StreamEvent, lost map[string]string) {
	stored := make(map[string]envelope.Envelope, len(events))
	for _, e := range events {
		stored[e.EventID] = e
	}
	seen := map[string]int{}
	last := map[string]int{}
	for _, m := range msgs {
		seen[m.EventID]++
		e, ok := stored[m.EventID]
		switch {
		case !ok:
			p.add("stream message %d: event %s (cart %s v%d) is not in the event log", m.Seq, m.EventID, m.StreamID, m.Version)
			continue
		case seen[m.EventID] == 2:
			p.add("DUPLICATE: event %s is in the stream more than once (again at sequence %d)", m.EventID, m.Seq)
		case m.StreamID != e.StreamID || m.Version != e.Version || m.Type != e.Type || !jsontest.Equal(m.Data, e.Data):
			p.add("stream message %d: event %s differs from the stored one", m.Seq, m.EventID)
		}
		if m.Version <= last[m.StreamID] {
			p.add("ORDER: cart %s v%d published after v%d (sequence %d)", m.StreamID, m.Version, last[m.StreamID], m.Seq)
		}
		last[m.StreamID] = max(last[m.StreamID], m.Version)
	}
	for _, e := range events {
		if seen[e.EventID] == 0 {
			where := ""
			if l, ok := lost[e.EventID]; ok {
				where = ", lost: it was " + l
			}
			p.add("MISSING from the stream: event %s (cart %s v%d%s)", e.EventID, e.StreamID, e.Version, where)
		}
	}
}

// checkReadModel compares every cart's document with a fresh fold of its
// events and its history with the events themselves.
func (s *System) checkReadModel(ctx context.Context, p *problems, byCart map[string][]envelope.Envelope, skip map[string]bool) {
	gen, err := s.Generation(ctx)
	if err != nil {
		p.add("read model: generation: %v", err)
		return
	}
	keys := readmodel.Keys{Prefix: s.Prefix, Generation: gen}
	for id, evs := range byCart {
		if skip[id] {
			continue
		}
		st, err := fold(evs)
		if err != nil {
			p.add("replay of cart %s: %v", id, err)
			continue
		}
		want, _ := json.Marshal(readmodel.FromState(st))
		raw, err := s.Redis.HGet(ctx, keys.Cart(id), readmodel.FieldDoc).Result()
		if err != nil {
			p.add("read model: cart %s: %v", id, err)
			continue
		}
		var doc readmodel.Cart
		if err := json.Unmarshal([]byte(raw), &doc); err != nil {
			p.add("read model: cart %s: %v", id, err)
			continue
		}
		if got, _ := json.Marshal(doc); string(got) != string(want) {
			p.add("READ MODEL != REPLAY for cart %s:\n  redis  %s\n  replay %s", id, got, want)
		}
		entries, err := s.Redis.LRange(ctx, keys.History(id), 0, -1).Result()
		if err != nil {
			p.add("read model: history of cart %s: %v", id, err)
			continue
		}
		var got []string
		for _, raw := range entries {
			var h readmodel.HistoryEntry
			if err := json.Unmarshal([]byte(raw), &h); err != nil {
				p.add("read model: history of cart %s: %v", id, err)
				break
			}
			got = append(got, fmt.Sprintf("v%d:%s", h.Version, h.EventID))
		}
		want2 := make([]string, len(evs))
		for i, e := range evs {
			want2[i] = fmt.Sprintf("v%d:%s", e.Version, e.EventID)
		}
		if strings.Join(got, " ") != strings.Join(want2, " ") {
			p.add("HISTORY of cart %s: applied %v, events %v", id, got, want2)
		}
	}
}
