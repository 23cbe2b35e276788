package chaos_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/cart-cqrs/cart/chaos"
)

// TestConcurrentIfMatch sends 50 commands to one cart at once, all naming
// the same expected version with If-Match, round after round: exactly one
// wins each round, the others get 412 (or 409) and write nothing.
func TestConcurrentIfMatch(t *testing.T) {
	t.Parallel()
	s := chaos.Start(t, bin, mode, chaos.Options{})
	ledger := chaos.NewLedger()
	client := newPatientClient(s, ledger)
	sampler := s.StartSampler(t, ledger)
	ctx := context.Background()
	const customer, writers = "if-match-customer", 50
	tok := s.Token(t, customer)
	open := client.Send(ctx, tok, &chaos.Command{Customer: customer, Kind: "open"})
	if open.Outcome != chaos.OK {
		t.Fatalf("open: %s", open)
	}
	version := open.Version
	rounds := chaos.Pick(mode, 4, 40)
	losers := map[int]int{}
	for round := range rounds {
		cmds := make([]*chaos.Command, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range cmds {
			cmds[i] = &chaos.Command{
				Customer: customer, Kind: "add-item", CartID: open.CartID,
				ProductID: chaos.Products[i%len(chaos.Products)], Quantity: 1, IfMatch: version,
			}
			wg.Go(func() {
				<-start
				client.Send(ctx, tok, cmds[i])
			})
		}
		close(start)
		wg.Wait()
		var won []*chaos.Command
		for _, c := range cmds {
			switch {
			case c.Outcome == chaos.OK:
				won = append(won, c)
			case c.Outcome == chaos.Failed && (c.Status == http.StatusPreconditionFailed || c.Status == http.StatusConflict):
				losers[c.Status]++
			default:
				t.Errorf("round %d: %s", round+1, c)
			}
		}
		if len(won) != 1 {
			t.Fatalf("round %d at v%d: %d writers won, want exactly 1: %v", round+1, version, len(won), fmt.Sprint(won))
		}
		if won[0].Version != version+1 {
			t.Fatalf("round %d: the winner moved the cart from v%d to v%d", round+1, version, won[0].Version)
		}
		version = won[0].Version
	}
	t.Logf("%d rounds of %d writers: one winner each; losers by status %v", rounds, writers, losers)
	s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})
}
