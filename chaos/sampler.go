package chaos

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// sampleWindow is the most carts read in one tick.
const sampleWindow = 128

// Sampler reads the version of every known cart's document from the read
// model many times a second, as readers would see it, and records every
// time a version went down.
type Sampler struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	next int // where the next tick's window of carts starts

	mu          sync.Mutex
	max         map[string]int
	samples     int
	regressions []string
}

// StartSampler samples the carts the ledger's commands touched until the
// test ends or Stop.
func (s *System) StartSampler(tb testing.TB, ledger *Ledger) *Sampler {
	ctx, cancel := context.WithCancel(context.Background())
	sm := &Sampler{cancel: cancel, max: map[string]int{}}
	sm.wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			sm.sample(ctx, s, ledger)
		}
	})
	tb.Cleanup(sm.Stop)
	return sm
}

// Stop ends sampling.
func (sm *Sampler) Stop() {
	sm.cancel()
	sm.wg.Wait()
}

func (sm *Sampler) sample(ctx context.Context, s *System, ledger *Ledger) {
	carts := ledger.carts()
	if len(carts) == 0 {
		return
	}
	// A window of the carts per tick, in turn: the sampler must not be
	// what loads the machine.
	if len(carts) > sampleWindow {
		start := sm.next % len(carts)
		sm.next = start + sampleWindow
		window := append([]string{}, carts[start:min(start+sampleWindow, len(carts))]...)
		if n := sampleWindow - len(window); n > 0 {
			window = append(window, carts[:n]...)
		}
		carts = window
	}
	gen, err := s.Generation(ctx)
	if err != nil {
		return // Redis is down: nobody reads anything
	}
	keys := readmodel.Keys{Prefix: s.Prefix, Generation: gen}
	pipe := s.Redis.Pipeline()
	cmds := make([]*redis.StringCmd, len(carts))
	for i, id := range carts {
		cmds[i] = pipe.HGet(ctx, keys.Cart(id), readmodel.FieldVersion)
	}
	_, _ = pipe.Exec(ctx) // each command's error is looked at below
	sm.mu.Lock()
	defer sm.mu.Unlock()
	for i, id := range carts {
		v, err := cmds[i].Int()
		if err != nil {
			continue // absent (not projected yet, or Redis restarted empty) or Redis down
		}
		sm.samples++
		if prev := sm.max[id]; v < prev {
			sm.regressions = append(sm.regressions, fmt.Sprintf("cart %s: read model version %d after %d", id, v, prev))
		} else {
			sm.max[id] = v
		}
	}
}

// Result returns how many versions were read and the regressions seen.
func (sm *Sampler) Result() (samples int, regressions []string) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return sm.samples, append([]string(nil), sm.regressions...)
}

// Generation is the read-model generation readers use now.
func (s *System) Generation(ctx context.Context) (int, error) {
	v, err := s.Redis.Get(ctx, readmodel.CurrentGeneration(s.Prefix)).Result()
	if errors.Is(err, redis.Nil) {
		return 1, nil
	}
	if err != nil {
		return 0, err
	}
	g, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("chaos: generation %q: %w", v, err)
	}
	return g, nil
}
