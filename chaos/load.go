package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// Products are the seeded catalog products the load adds (all available).
var Products = []string{"123", "456", "789", "101", "202", "303", "404", "505"}

// LoadConfig shapes the background load.
type LoadConfig struct {
	// Workers is how many customers send commands at once, each one
	// command after the other.
	Workers int
	// Think is the pause between two commands of one customer.
	Think time.Duration
	// MaxCartEvents is when a customer checks out (a stream stays short).
	MaxCartEvents int
}

// Load is background traffic of many customers: they open carts, add,
// change and remove items and check out, every command recorded.
type Load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartLoad starts cfg.Workers customers sending commands through client
// until Stop.
func (s *System) StartLoad(tb testing.TB, client *Client, cfg LoadConfig) *Load {
	tb.Helper()
	if cfg.MaxCartEvents == 0 {
		cfg.MaxCartEvents = 30
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{cancel: cancel}
	for i := range cfg.Workers {
		w := &worker{
			customer: fmt.Sprintf("load-%d-%s", i, randomHex(4)),
			client:   client,
			cfg:      cfg,
			rnd:      rand.New(rand.NewPCG(rand.Uint64(), uint64(i))),
			lines:    map[string]int{},
		}
		w.token = s.Token(tb, w.customer)
		l.wg.Go(func() { w.run(ctx) })
	}
	tb.Cleanup(l.Stop)
	return l
}

// Stop ends the load and waits for the commands in flight to settle
// (retries included).
func (l *Load) Stop() {
	l.cancel()
	l.wg.Wait()
}

// worker is one customer of the load. Its picture of its cart comes from
// its acknowledged commands only; after an unknown outcome it may be
// wrong, and the service's 409s put it right.
type worker struct {
	customer, token string
	client          *Client
	cfg             LoadConfig
	rnd             *rand.Rand
	cartID          string
	events          int
	lines           map[string]int
}

func (w *worker) run(ctx context.Context) {
	for ctx.Err() == nil {
		w.step()
		if w.cfg.Think > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(w.cfg.Think):
			}
		}
	}
}

func (w *worker) step() {
	if w.cartID == "" {
		c := w.client.Send(context.Background(), w.token, &Command{Customer: w.customer, Kind: "open"})
		if c.Outcome == OK {
			w.cartID, w.events = c.CartID, c.Version
			clear(w.lines)
		}
		return
	}
	cmd := &Command{Customer: w.customer, CartID: w.cartID, ProductID: Products[w.rnd.IntN(len(Products))]}
	in := w.someLine()
	switch r := w.rnd.IntN(100); {
	case w.events >= w.cfg.MaxCartEvents || (r < 6 && len(w.lines) > 0):
		cmd.Kind = "checkout"
	case r < 55 || in == "":
		cmd.Kind, cmd.Quantity = "add-item", 1+w.rnd.IntN(3)
	case r < 80:
		cmd.Kind, cmd.ProductID, cmd.Quantity = "change-quantity", in, 1+w.rnd.IntN(9)
		if cmd.Quantity == w.lines[in] {
			cmd.Quantity++
		}
	default:
		cmd.Kind, cmd.ProductID = "remove-item", in
	}
	c := w.client.Send(context.Background(), w.token, cmd)
	switch {
	case c.Outcome == OK:
		w.events = c.Version
		switch cmd.Kind {
		case "checkout":
			w.cartID = ""
		case "add-item":
			w.lines[cmd.ProductID] += cmd.Quantity
		case "change-quantity":
			w.lines[cmd.ProductID] = cmd.Quantity
		case "remove-item":
			delete(w.lines, cmd.ProductID)
		}
	case c.Outcome == Failed && c.Status == 409 && cmd.Kind == "checkout":
		w.cartID = "" // checked out already, by an earlier try
	case c.Outcome == Failed && c.Status == 409:
		// The picture was wrong (an earlier command's outcome was unknown,
		// or a line is full): start the cart's picture over.
		clear(w.lines)
		if cmd.Kind == "add-item" {
			w.cartID = "" // e.g. checked out by an unknown checkout: open the next one
		}
	case c.Outcome == Unknown:
		if cmd.Kind == "checkout" {
			w.cartID = ""
		}
	}
}

// someLine is a product the worker believes is in its cart, or "".
func (w *worker) someLine() string {
	if len(w.lines) == 0 {
		return ""
	}
	i := w.rnd.IntN(len(w.lines))
	for p := range w.lines {
		if i == 0 {
			return p
		}
		i--
	}
	return ""
}
