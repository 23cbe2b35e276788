package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/chaos"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// TestRandomCommandSequences is a property test over the real binaries:
// many customers at once each play a random sequence of commands, valid and
// invalid. A model of the cart rules, written here from the product
// contract, predicts every answer's status; the service must agree, and in
// the end every cart's document (served by the query service, read your
// writes) must be the model's cart and equal a replay of the event log.
func TestRandomCommandSequences(t *testing.T) {
	t.Parallel()
	s := chaos.Start(t, bin, mode, chaos.Options{})
	ledger := chaos.NewLedger()
	client := newPatientClient(s, ledger)
	sampler := s.StartSampler(t, ledger)
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(envOr("CHAOS_SEED", ""), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (CHAOS_SEED=%d replays it)", seed, seed)
	customers, steps := chaos.Pick(mode, 12, 60), chaos.Pick(mode, 30, 100)

	var wg sync.WaitGroup
	models := make([]*model, customers)
	for i := range models {
		m := &model{
			customer: fmt.Sprintf("prop-%d-%d", seed%100000, i),
			rnd:      rand.New(rand.NewPCG(seed, uint64(i))),
			lines:    map[string]int{},
		}
		m.token = s.Token(t, m.customer)
		models[i] = m
		wg.Go(func() { m.play(client, steps) })
	}
	wg.Wait()
	var disagreements []string
	for _, m := range models {
		disagreements = append(disagreements, m.disagreements...)
	}
	for i, d := range disagreements {
		if i == 30 {
			t.Errorf("… and %d more", len(disagreements)-i)
			break
		}
		t.Error(d)
	}
	if len(disagreements) > 0 {
		t.FailNow()
	}

	// Read your writes: the query service serves each customer's last cart
	// at the version of its last acknowledged command, as the model has it.
	for _, m := range models {
		if m.cartID == "" {
			continue
		}
		doc := m.read(t, s.Query.URL())
		var want []readmodel.Line
		for _, l := range doc.Lines {
			if m.lines[l.ProductID] != l.Quantity {
				t.Errorf("%s: cart %s holds %s×%d, the model %d", m.customer, m.cartID, l.ProductID, l.Quantity, m.lines[l.ProductID])
			}
			want = append(want, l)
		}
		if len(want) != len(m.lines) || doc.Status != m.status {
			t.Errorf("%s: cart %s is %s with %v, the model %s with %v", m.customer, m.cartID, doc.Status, doc.Lines, m.status, m.lines)
		}
	}
	rep := s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})
	if rep.Unknown > 0 {
		t.Fatalf("%d commands ended unknown without any fault", rep.Unknown)
	}
	t.Logf("%d customers × %d random commands agree with the model", customers, steps)
}

// model is one customer and what the cart rules say about its cart.
type model struct {
	customer, token string
	rnd             *rand.Rand
	cartID          string
	status          string
	version         int
	lines           map[string]int
	disagreements   []string
}

// Product ids the sequences use: available ones, an unavailable one (999)
// and one that does not exist.
var propertyProducts = []string{"123", "456", "789", "101", "999", "nope"}

func (m *model) play(client *chaos.Client, steps int) {
	for range steps {
		cmd, want := m.next()
		cmd.Customer = m.customer
		c := client.Send(context.Background(), m.token, cmd)
		if c.Status != want {
			m.disagreements = append(m.disagreements, fmt.Sprintf("%s: model expects %d, got %s: %s", m.customer, want, c, c.Result))
			return // the model no longer knows the cart
		}
		if c.Outcome == chaos.OK {
			m.apply(c)
		}
	}
}

// next draws a command and predicts its status.
func (m *model) next() (*chaos.Command, int) {
	if m.cartID == "" || (m.status == "checked-out" && m.rnd.IntN(3) > 0) {
		if m.status == "open" {
			return &chaos.Command{Kind: "open"}, http.StatusOK
		}
		return &chaos.Command{Kind: "open"}, http.StatusCreated
	}
	p := propertyProducts[m.rnd.IntN(len(propertyProducts))]
	if m.rnd.IntN(2) == 0 && len(m.lines) > 0 {
		for q := range m.lines {
			p = q
			break
		}
	}
	qty := []int{0, 1, 1, 2, 2, 3, 3, 5, 40, 98, 100}[m.rnd.IntN(11)]
	cmd := &chaos.Command{CartID: m.cartID, ProductID: p, Quantity: qty}
	closed := m.status == "checked-out"
	have, in := m.lines[p]
	switch r := m.rnd.IntN(100); {
	case r < 45:
		cmd.Kind = "add-item"
		switch {
		case qty < 1 || qty > 99 || p == "nope":
			return cmd, http.StatusUnprocessableEntity
		case closed || p == "999" || have+qty > 99:
			return cmd, http.StatusConflict
		}
	case r < 65:
		cmd.Kind = "change-quantity"
		switch {
		case qty < 1 || qty > 99:
			return cmd, http.StatusUnprocessableEntity
		case closed || !in:
			return cmd, http.StatusConflict
		}
	case r < 85:
		cmd.Kind, cmd.Quantity = "remove-item", 0
		if closed || !in {
			return cmd, http.StatusConflict
		}
	default:
		cmd.Kind, cmd.Quantity, cmd.ProductID = "checkout", 0, ""
		if closed || len(m.lines) == 0 {
			return cmd, http.StatusConflict
		}
	}
	return cmd, http.StatusOK
}

// apply is the model's side of an acknowledged command; it also checks the
// version the service answered with.
func (m *model) apply(c *chaos.Command) {
	want := m.version + 1
	switch c.Kind {
	case "open":
		if c.Status == http.StatusCreated {
			m.cartID, m.status, m.version = c.CartID, "open", 0
			clear(m.lines)
			want = 1
		} else {
			want = m.version
		}
	case "add-item":
		m.lines[c.ProductID] += c.Quantity
	case "change-quantity":
		if m.lines[c.ProductID] == c.Quantity {
			want = m.version // nothing to change
		}
		m.lines[c.ProductID] = c.Quantity
	case "remove-item":
		delete(m.lines, c.ProductID)
	case "checkout":
		m.status = "checked-out"
	}
	if c.Version != want || (c.CartID != m.cartID) {
		m.disagreements = append(m.disagreements, fmt.Sprintf("%s: model expects cart %s v%d, got %s", m.customer, m.cartID, want, c))
	}
	m.version = c.Version
}

// read gets the customer's cart from the query service at the version of
// its last command (read your writes).
func (m *model) read(t *testing.T, queryURL string) readmodel.Cart {
	t.Helper()
	var doc readmodel.Cart
	waitFor(t, time.Minute, "query serves cart "+m.cartID, func() bool {
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/v1/carts/%s?minVersion=%d", queryURL, m.cartID, m.version), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+m.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&doc) == nil && doc.Version == m.version
	})
	return doc
}
