package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/chaos"
	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// TestPoisonEventParked stores an event the projector cannot read (a
// schema version the codec does not know) straight into the event log and
// the outbox, as a newer command service might, followed by a valid event
// of the same cart. The poison is parked after PROJECTOR_MAX_DELIVER
// deliveries, its cart's later event waits behind it, every other cart
// keeps flowing under load, and skipping it lets the cart catch up.
func TestPoisonEventParked(t *testing.T) {
	t.Parallel()
	const maxDeliver = 3
	s := chaos.Start(t, bin, mode, chaos.Options{ProjectorEnv: []string{fmt.Sprintf("PROJECTOR_MAX_DELIVER=%d", maxDeliver)}})
	ledger := chaos.NewLedger()
	client := newClient(s, ledger)
	sampler := s.StartSampler(t, ledger)
	ctx := context.Background()
	projector := s.Projectors[0]

	const customer = "poisoned-customer"
	tok := s.Token(t, customer)
	open := client.Send(ctx, tok, &chaos.Command{Customer: customer, Kind: "open"})
	added := client.Send(ctx, tok, &chaos.Command{Customer: customer, Kind: "add-item", CartID: open.CartID, ProductID: "123", Quantity: 2})
	if added.Outcome != chaos.OK {
		t.Fatalf("add-item: %s", added)
	}
	cartID, before := open.CartID, added.Version

	load := s.StartLoad(t, client, loadConfig())
	time.Sleep(chaos.Pick(mode, 500*time.Millisecond, 5*time.Second)) // traffic before the poison

	// The poison, then a valid event behind it, each committed as the
	// command service commits.
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	poisonID := uuid.Must(uuid.NewV7()).String()
	if _, err := tx.Exec(ctx, `UPDATE carts SET version = $2 WHERE cart_id = $1 AND version = $3`, cartID, before+1, before); err != nil {
		t.Fatal(err)
	}
	var position int64
	err = tx.QueryRow(ctx, `INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, metadata, occurred_at)
		VALUES ($1, $2, 'cart', $3, 'cart.item-added', 99, '{"productId":"123","quantity":{"amount":"a lot"}}', $4, now()) RETURNING position`,
		poisonID, cartID, before+1, fmt.Sprintf(`{"actor":%q,"correlationId":"poison-%s"}`, customer, poisonID)).Scan(&position)
	if err != nil {
		t.Fatal(err)
	}
	// Written by hand, as by no command instance: wake the relay as one
	// whose relay does not lead would.
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (position) VALUES ($1)`, position); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, eventlog.OutboxChannel); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	ledger.Inject(poisonID, true)
	tx2, err := s.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx2.Rollback(ctx) }()
	behindID, _ := appendHeld(t, tx2, cartID, customer, before+1)
	if err := tx2.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	ledger.Inject(behindID, true)

	// Parked after maxDeliver deliveries, for this cart only.
	admin := adminToken(t, s)
	var parked parkedList
	waitFor(t, 2*time.Minute, "the poison parked", func() bool {
		parked = listParked(t, projector.URL(), admin)
		return parked.Events > 0
	})
	if len(parked.Carts) != 1 || parked.Carts[0].CartID != cartID || parked.Carts[0].Events[0].EventID != poisonID {
		t.Fatalf("parked: %+v, want the poison %s of cart %s", parked, poisonID, cartID)
	}
	pe := parked.Carts[0].Events[0]
	t.Logf("parked v%d after %d deliveries: %s", pe.Version, pe.Attempts, pe.Error)
	if got := pe.Attempts; got < maxDeliver {
		t.Errorf("parked after %d deliveries, want %d", got, maxDeliver)
	}
	// The gauge counts the parked events, the poison and those of its cart
	// that wait behind it, as the admin API lists them.
	waitFor(t, time.Minute, "cart_projector_parked_events as listed", func() bool {
		n, err := projector.Metric(ctx, "cart_projector_parked_events")
		return err == nil && n >= 1 && int(n) == listParked(t, projector.URL(), admin).Events
	})

	// Other carts keep flowing while the poison is parked; the poisoned
	// cart's later event waits behind it.
	acked := ledger.Counts(time.Time{}, time.Time{}).OK
	waitFor(t, time.Minute, "commands acknowledged while the poison is parked", func() bool {
		return ledger.Counts(time.Time{}, time.Time{}).OK >= acked+chaos.Pick(mode, 50, 500)
	})
	load.Stop()
	unprojectable := map[string]bool{cartID: true}
	s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler, Unprojectable: unprojectable})
	if v := docVersion(t, s, cartID); v != before {
		t.Fatalf("the poisoned cart's document is at v%d, want v%d until the poison is dealt with", v, before)
	}

	// Skipping the poison lets the event behind it through.
	if status, body := post(t, projector.URL()+"/admin/parked/"+cartID+"/skip", admin); status != http.StatusOK {
		t.Fatalf("skip: %d %s", status, body)
	}
	waitFor(t, time.Minute, "the poisoned cart caught up", func() bool { return docVersion(t, s, cartID) == before+2 })
	if p := listParked(t, projector.URL(), admin); p.Events != 0 {
		t.Fatalf("still parked after the skip: %+v", p)
	}
	waitFor(t, time.Minute, "cart_projector_parked_events = 0", func() bool {
		n, err := projector.Metric(ctx, "cart_projector_parked_events")
		return err == nil && n == 0
	})
	s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler, Unprojectable: unprojectable})
}

type parkedList struct {
	Carts []struct {
		CartID string `json:"cartId"`
		Events []struct {
			EventID  string `json:"eventId"`
			Version  int    `json:"version"`
			Attempts int    `json:"attempts"`
			Error    string `json:"error"`
		} `json:"events"`
	} `json:"carts"`
	Events int `json:"events"`
}

func adminToken(t *testing.T, s *chaos.System) string {
	t.Helper()
	tok, err := auth.Issue(s.Auth, "chaos-operator", "admin", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func listParked(t *testing.T, base, tok string) parkedList {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/admin/parked", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l parkedList
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/parked: %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	return l
}

func post(t *testing.T, url, tok string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b [4096]byte
	n, _ := resp.Body.Read(b[:])
	return resp.StatusCode, string(b[:n])
}

// docVersion is the version of a cart's document in the current generation.
func docVersion(t *testing.T, s *chaos.System, cartID string) int {
	t.Helper()
	ctx := context.Background()
	gen, err := s.Generation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Redis.HGet(ctx, readmodel.Keys{Prefix: s.Prefix, Generation: gen}.Cart(cartID), readmodel.FieldVersion).Int()
	if err != nil {
		return 0
	}
	return v
}
