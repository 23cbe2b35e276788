package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

func customer(prefix string) string { return prefix + "-" + uuid.NewString()[:8] }

func item(productID string, quantity int) map[string]any {
	return map[string]any{"productId": productID, "quantity": quantity}
}

// TestArticleExample plays the example of the cart article through HTTP:
// add 123×2, change 123→1, add 456×2, remove 123, change 456→3 ⇒ [456×3]; then
// checks that the event log, the NATS stream and the query service agree.
func TestArticleExample(t *testing.T) {
	s := mustStart(t, options{})
	tok := token(t, customer("alice"), "")

	opened := s.command(t, tok, "/v1/carts", nil)
	id := opened.CartID
	if opened.Version != 1 {
		t.Fatalf("opened at version %d", opened.Version)
	}
	last := opened
	for _, step := range []struct {
		path string
		body any
	}{
		{"add-item", item("123", 2)},
		{"change-quantity", item("123", 1)},
		{"add-item", item("456", 2)},
		{"remove-item", map[string]any{"productId": "123"}},
		{"change-quantity", item("456", 3)},
	} {
		res := s.command(t, tok, "/v1/carts/"+id+"/"+step.path, step.body)
		if res.Version != last.Version+1 || res.CartID != id {
			t.Fatalf("%s: %+v after %+v", step.path, res, last)
		}
		last = res
	}

	doc := s.awaitCart(t, tok, id, 6)
	want := []readmodel.Line{{ProductID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Quantity: 3, LineTotal: 3750}}
	if !jsonEqual(doc.Lines, want) || doc.ItemCount != 3 || doc.Total != 3750 || doc.Status != "open" {
		t.Fatalf("query serves %+v, want the lines %+v", doc, want)
	}

	// The event log holds exactly the six events, and the read model is their fold.
	replayed, stored := s.replay(t, id)
	wantTypes := []string{cart.TypeOpened, cart.TypeItemAdded, cart.TypeQuantityChanged, cart.TypeItemAdded, cart.TypeItemRemoved, cart.TypeQuantityChanged}
	if len(stored) != len(wantTypes) {
		t.Fatalf("%d events stored, want %d", len(stored), len(wantTypes))
	}
	for i, e := range stored {
		if e.Type != wantTypes[i] || e.Version != i+1 {
			t.Errorf("event %d: %s v%d, want %s v%d", i, e.Type, e.Version, wantTypes[i], i+1)
		}
	}
	if !jsonEqual(doc, replayed) {
		t.Fatalf("read model %+v\n!= replay %+v", doc, replayed)
	}

	// The stream holds the same six events, in order, as CloudEvents.
	eventually(t, 10*time.Second, "outbox drained", func() error {
		if n := s.outboxLen(t); n != 0 {
			return fmt.Errorf("%d rows left", n)
		}
		return nil
	})
	msgs := s.streamMessages(t)
	if len(msgs) != len(stored) {
		t.Fatalf("%d messages in the stream, %d events stored", len(msgs), len(stored))
	}
	for i, m := range msgs {
		if m.EventID != stored[i].EventID || m.Version != stored[i].Version || m.StreamID != id || m.Type != stored[i].Type {
			t.Errorf("message %d: %s %s v%d, stored %s %s v%d", i, m.EventID, m.Type, m.Version, stored[i].EventID, stored[i].Type, stored[i].Version)
		}
	}

	// The customer's open cart is the same document.
	r := do(t, http.MethodGet, s.queryURL+"/v1/customers/me/cart", tok, nil)
	var mine readmodel.Cart
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &mine) != nil || !jsonEqual(mine, doc) {
		t.Fatalf("GET /v1/customers/me/cart: %d %s", r.Status, r.Body)
	}
	// Someone else cannot see it.
	if r := do(t, http.MethodGet, s.queryURL+"/v1/carts/"+id, token(t, customer("mallory"), ""), nil); r.Status != http.StatusNotFound {
		t.Fatalf("another customer's GET: %d %s", r.Status, r.Body)
	}
}

// TestConcurrentWritersOnOneCart: 50 writers add one unit each to the same
// line at once. Every acknowledged add is in the cart; the rest got 409; the
// read model equals the fold of the stored events.
func TestConcurrentWritersOnOneCart(t *testing.T) {
	s := mustStart(t, options{})
	tok := token(t, customer("bob"), "")
	id := s.command(t, tok, "/v1/carts", nil).CartID

	const writers = 50
	var ok, conflicts atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := send(http.MethodPost, s.commandURL+"/v1/carts/"+id+"/add-item", tok, item("123", 1))
			switch {
			case err != nil:
				t.Error(err)
			case r.Status == http.StatusOK:
				ok.Add(1)
			case r.Status == http.StatusConflict:
				conflicts.Add(1)
			default:
				t.Errorf("add-item: %d %s", r.Status, r.Body)
			}
		}()
	}
	close(start)
	wg.Wait()
	t.Logf("%d writers: %d acknowledged, %d conflicts", writers, ok.Load(), conflicts.Load())
	if ok.Load() == 0 {
		t.Fatal("no writer succeeded")
	}

	doc := s.awaitCart(t, tok, id, 1+int(ok.Load()))
	if len(doc.Lines) != 1 || doc.Lines[0].Quantity != int(ok.Load()) {
		t.Fatalf("cart holds %+v, want 123×%d", doc.Lines, ok.Load())
	}
	replayed, stored := s.replay(t, id)
	if len(stored) != 1+int(ok.Load()) {
		t.Fatalf("%d events stored for %d acknowledged commands", len(stored), 1+ok.Load())
	}
	if !jsonEqual(doc, replayed) {
		t.Fatalf("read model %+v\n!= replay %+v", doc, replayed)
	}
}

// TestRelayCrashBetweenPubAckAndRemoval: the relay dies after NATS
// acknowledged a batch but before the outbox rows were removed, several times.
// The batch is published again; the stream's deduplication and the
// projector's version guard make sure nothing is lost or applied twice.
func TestRelayCrashBetweenPubAckAndRemoval(t *testing.T) {
	var crashes atomic.Int64
	s := mustStart(t, options{relayAfterPublish: func(context.Context, []envelope.Envelope) error {
		if crashes.Add(1) <= 3 {
			return errors.New("injected crash between PubAck and outbox removal")
		}
		return nil
	}})

	type tracked struct {
		tok, id string
		version int
	}
	var carts []tracked
	for i := range 4 {
		tok := token(t, customer(fmt.Sprint("crash", i)), "")
		res := s.command(t, tok, "/v1/carts", nil)
		for _, p := range []string{"123", "456", "789"} {
			res = s.command(t, tok, "/v1/carts/"+res.CartID+"/add-item", item(p, 1+i))
		}
		carts = append(carts, tracked{tok: tok, id: res.CartID, version: res.Version})
	}

	eventually(t, 30*time.Second, "outbox drained", func() error {
		if n := s.outboxLen(t); n != 0 {
			return fmt.Errorf("%d rows left", n)
		}
		return nil
	})
	if crashes.Load() <= 3 {
		t.Fatalf("the relay crashed %d times; the test needs 3 crashes and a success", crashes.Load())
	}
	s.assertAgree(t)
	for _, c := range carts {
		doc := s.awaitCart(t, c.tok, c.id, c.version)
		if replayed, _ := s.replay(t, c.id); !jsonEqual(doc, replayed) {
			t.Fatalf("cart %s: read model %+v\n!= replay %+v", c.id, doc, replayed)
		}
	}
}

// TestRandomCommandsAgree plays random command sequences from several
// customers, valid and invalid, then checks that the event log, the stream
// and the read model agree: as many messages as events, each once, and every
// cart's document equal to the fold of its events.
func TestRandomCommandsAgree(t *testing.T) {
	s := mustStart(t, options{})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, seed))
	products := []string{"123", "456", "789", "999", "nope"}

	type customerState struct{ tok, cartID string }
	customers := make([]*customerState, 5)
	for i := range customers {
		customers[i] = &customerState{tok: token(t, customer(fmt.Sprint("rnd", i)), "")}
	}
	statuses := map[int]int{}
	for range 300 {
		c := customers[rnd.IntN(len(customers))]
		if c.cartID == "" {
			c.cartID = s.command(t, c.tok, "/v1/carts", nil).CartID
			continue
		}
		base := s.commandURL + "/v1/carts/" + c.cartID
		p := products[rnd.IntN(len(products))]
		var r reply
		switch op := rnd.IntN(10); {
		case op < 4:
			r = do(t, http.MethodPost, base+"/add-item", c.tok, item(p, rnd.IntN(12)))
		case op < 6:
			r = do(t, http.MethodPost, base+"/change-quantity", c.tok, item(p, rnd.IntN(12)))
		case op < 8:
			r = do(t, http.MethodPost, base+"/remove-item", c.tok, map[string]any{"productId": p})
		default:
			r = do(t, http.MethodPost, base+"/checkout", c.tok, nil)
			if r.Status == http.StatusOK {
				c.cartID = ""
			}
		}
		statuses[r.Status]++
		if r.Status >= 500 {
			t.Fatalf("5xx: %d %s", r.Status, r.Body)
		}
	}
	t.Logf("responses by status: %v", statuses)
	eventually(t, 20*time.Second, "outbox drained", func() error {
		if n := s.outboxLen(t); n != 0 {
			return fmt.Errorf("%d rows left", n)
		}
		return nil
	})
	s.assertAgree(t)
}

// assertAgree checks the whole system against the event log: every stored
// event is in the stream exactly once, and every cart's read model is the fold
// of its events (waiting for the projector to catch up).
func (s *system) assertAgree(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var events int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	msgs := s.streamMessages(t)
	seen := map[string]bool{}
	for _, m := range msgs {
		if seen[m.EventID] {
			t.Errorf("event %s is in the stream twice", m.EventID)
		}
		seen[m.EventID] = true
	}
	if len(msgs) != events {
		t.Fatalf("%d messages in the stream, %d events in PostgreSQL", len(msgs), events)
	}

	rows, err := s.pool.Query(ctx, `SELECT cart_id::text FROM carts`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	keys := readmodel.Keys{Prefix: s.redis.Prefix, Generation: 1}
	for _, id := range ids {
		want, _ := s.replay(t, id)
		eventually(t, 15*time.Second, "read model of cart "+id, func() error {
			raw, err := s.redis.Client.HGet(ctx, keys.Cart(id), readmodel.FieldDoc).Result()
			if err != nil {
				return err
			}
			var got readmodel.Cart
			if err := json.Unmarshal([]byte(raw), &got); err != nil {
				return err
			}
			if !jsonEqual(got, want) {
				return fmt.Errorf("read model v%d != replay v%d", got.Version, want.Version)
			}
			return nil
		})
	}
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
