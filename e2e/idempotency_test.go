package e2e_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// sendKeyed POSTs body to url with an Idempotency-Key.
func sendKeyed(url, tok, key string, body any) (reply, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return reply{}, err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Idempotency-Key", key)
	resp, err := clientFor(req.URL.Host).Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("POST %s: read body: %w", url, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: rb}, nil
}

// TestIdempotentRetries: a client that fires the same add-item twenty times
// at once with one Idempotency-Key (a retry storm after a timeout) adds the
// item once — one event in PostgreSQL, one message in the stream, a quantity
// of one in the read model — and every request gets the same answer.
func TestIdempotentRetries(t *testing.T) {
	const retries = 20
	s := mustStart(t, options{})
	tok := token(t, customer("retrier"), "")
	id := s.command(t, tok, "/v1/carts", nil).CartID

	url := s.commandURL + "/v1/carts/" + id + "/add-item"
	var (
		wg      sync.WaitGroup
		replies = make([]reply, retries)
		errs    = make([]error, retries)
	)
	for i := range retries {
		wg.Go(func() { replies[i], errs[i] = sendKeyed(url, tok, "retry-storm-1", item("123", 1)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	replayed := 0
	for _, r := range replies {
		if r.Status != http.StatusOK || !bytes.Equal(r.Body, replies[0].Body) || r.Header.Get("ETag") != `"2"` {
			t.Errorf("reply %d %s (ETag %s), want 200 %s with ETag \"2\"", r.Status, r.Body, r.Header.Get("ETag"), replies[0].Body)
		}
		if r.Header.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	if replayed != retries-1 {
		t.Errorf("%d replies marked replayed, want %d", replayed, retries-1)
	}

	if _, evs := s.replay(t, id); len(evs) != 2 || evs[1].Type != cart.TypeItemAdded {
		t.Fatalf("%d events in PostgreSQL, want cart.opened and one cart.item-added", len(evs))
	}
	eventually(t, 15*time.Second, "outbox drained", func() error {
		if n := s.outboxLen(t); n != 0 {
			return fmt.Errorf("%d rows left", n)
		}
		return nil
	})
	added := 0
	for _, e := range s.streamMessages(t) {
		if e.StreamID == id && e.Type == cart.TypeItemAdded {
			added++
		}
	}
	if added != 1 {
		t.Fatalf("%d cart.item-added messages in the stream, want 1", added)
	}
	doc := s.awaitCart(t, tok, id, 2)
	if len(doc.Lines) != 1 || doc.Lines[0].Quantity != 1 || doc.ItemCount != 1 {
		t.Fatalf("read model lines %+v, item count %d; want one 123 counted once", doc.Lines, doc.ItemCount)
	}
}
