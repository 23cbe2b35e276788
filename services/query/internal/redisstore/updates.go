package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// Timings of the update subscription.
const (
	// receiveTimeout bounds one wait for a message, so that a generation
	// switch and a silent connection are noticed.
	receiveTimeout = time.Second
	// pingAfter is how long the subscription may be quiet before it is
	// probed with a PING, and silentAfter how long before it is given up
	// and made again (a half-open connection never reports an error).
	pingAfter   = 5 * time.Second
	silentAfter = 15 * time.Second
	// retryMin and retryMax bound the pause between failed subscriptions.
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
	// maxSeen bounds the carts whose announced version the subscription
	// remembers; past it, it forgets them all and starts again.
	maxSeen = 16384
)

// Updates holds the query service's one subscription to the projector's
// update channel (readmodel.Keys.Updates of the current generation) and the
// requests waiting for a cart to reach a version (?minVersion: read your
// writes). A request registers, re-reads Redis, and sleeps until an update
// that may satisfy it arrives — no polling.
//
// Pub/Sub delivers at most once: while the subscription is down, updates
// are lost. So every (re)subscription and every generation switch wakes all
// waiters, and each re-reads Redis; a waiter that is still behind waits on.
//
// The subscription also remembers the last version announced for each cart
// since it was made (seen): a request for a version above it would read the
// cart behind, so it need not read before it is woken (see WatchCart).
type Updates struct {
	rdb    redis.UniversalClient
	store  *Store
	logger *slog.Logger

	mu        sync.Mutex
	carts     map[string]map[*waiter]struct{}
	customers map[string]map[*waiter]struct{}
	waiters   int
	// seen holds the versions announced on the subscription to generation
	// seenGen (0: no subscription holds, nothing is known).
	seen    map[string]int
	seenGen int

	subscribed atomic.Bool
}

// waiter is one waiting request.
type waiter struct {
	min int
	// wake has room for one signal: a wake-up arriving while the request
	// is reading Redis is kept for its next wait, and sending never blocks.
	wake chan struct{}
}

func (w *waiter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// NewUpdates returns the subscription of store's key prefix; Run holds it.
func NewUpdates(rdb redis.UniversalClient, store *Store, logger *slog.Logger) *Updates {
	return &Updates{
		rdb: rdb, store: store, logger: logger,
		carts: map[string]map[*waiter]struct{}{}, customers: map[string]map[*waiter]struct{}{},
	}
}

// WatchCart registers a request waiting for cart cartID to reach minVersion.
// wake receives when an update of the cart at minVersion or later arrives,
// or when updates may have been missed; the request then re-reads Redis.
// behind reports that the read model is known to hold the cart below
// minVersion — an update announced an older version, and no newer one came
// since — so reading it before wake would be in vain. stop unregisters the
// request and must be called (it is idempotent).
func (u *Updates) WatchCart(cartID string, minVersion int) (wake <-chan struct{}, behind bool, stop func()) {
	return u.watch(u.carts, cartID, minVersion, true)
}

// WatchCustomer is WatchCart for a request about a customer's open cart,
// whose id it may not know yet (the cart is about to be opened): it is
// woken by an update of any of the customer's carts. It never knows the
// read model behind.
func (u *Updates) WatchCustomer(customerID string, minVersion int) (wake <-chan struct{}, behind bool, stop func()) {
	return u.watch(u.customers, customerID, minVersion, false)
}

func (u *Updates) watch(index map[string]map[*waiter]struct{}, key string, minVersion int, cart bool) (<-chan struct{}, bool, func()) {
	w := &waiter{min: minVersion, wake: make(chan struct{}, 1)}
	// The requests read the store's generation: what the subscription saw
	// is known of it only if it is the same.
	gen := u.store.gen.Load()
	u.mu.Lock()
	behind := false
	if cart && u.seenGen != 0 && int64(u.seenGen) == gen {
		v, ok := u.seen[key]
		behind = ok && v < minVersion
	}
	set := index[key]
	if set == nil {
		set = map[*waiter]struct{}{}
		index[key] = set
	}
	set[w] = struct{}{}
	u.waiters++
	u.mu.Unlock()
	var once sync.Once
	return w.wake, behind, func() {
		once.Do(func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			// w's set stays in the index while it holds w.
			set := index[key]
			delete(set, w)
			if len(set) == 0 {
				delete(index, key)
			}
			u.waiters--
		})
	}
}

// Waiters is the number of requests waiting now.
func (u *Updates) Waiters() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.waiters
}

// Subscribed reports whether the subscription is up.
func (u *Updates) Subscribed() bool { return u.subscribed.Load() }

// notify wakes the waiters an update may satisfy.
func (u *Updates) notify(payload string) {
	up, err := readmodel.ParseUpdate(payload)
	if err != nil {
		u.logger.Warn("ignoring a malformed read-model update", slog.Any("error", err))
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seenGen != 0 && up.Version > u.seen[up.CartID] {
		if len(u.seen) >= maxSeen {
			clear(u.seen)
		}
		u.seen[up.CartID] = up.Version
	}
	for w := range u.carts[up.CartID] {
		if up.Version >= w.min {
			w.signal()
		}
	}
	if up.CustomerID == "" {
		return
	}
	for w := range u.customers[up.CustomerID] {
		if up.Version >= w.min {
			w.signal()
		}
	}
}

// forget drops the versions seen, and starts seeing those of generation
// gen's subscription (0: none).
func (u *Updates) forget(gen int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.seen, u.seenGen = make(map[string]int), gen
}

// wakeAll wakes every waiter: updates may have been missed.
func (u *Updates) wakeAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, index := range []map[string]map[*waiter]struct{}{u.carts, u.customers} {
		for _, set := range index {
			for w := range set {
				w.signal()
			}
		}
	}
}

// Run holds the subscription until ctx ends, then returns nil. A failed or
// silent subscription is made again after a pause (growing to retryMax while
// Redis stays away); a generation switch moves it to the new generation's
// channel at once.
func (u *Updates) Run(ctx context.Context) error {
	pause := retryMin
	failing := false
	for {
		up, err := u.subscribe(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if up {
			pause = retryMin
			if failing {
				failing = false
				u.logger.InfoContext(ctx, "read-model update subscription restored")
			}
		}
		if err == nil {
			continue
		}
		if !failing {
			failing = true
			u.logger.WarnContext(ctx, "read-model update subscription lost; ?minVersion waits until its deadline meanwhile",
				slog.Any("error", err))
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		pause = min(2*pause, retryMax)
	}
}

// subscribe runs one subscription until it fails (an error), the generation
// switches (nil) or ctx ends. up reports whether it was ever subscribed.
func (u *Updates) subscribe(ctx context.Context) (up bool, err error) {
	gen, err := u.store.Generation(ctx)
	if err != nil {
		return false, err
	}
	channel := readmodel.Keys{Prefix: u.store.prefix, Generation: gen}.Updates()
	ps := u.rdb.Subscribe(ctx, channel)
	// Close interrupts a blocked receive when ctx ends.
	closed := make(chan struct{})
	closeSub := func() {
		if err := ps.Close(); err != nil {
			u.logger.Debug("redis: close update subscription", "channel", channel, "error", err)
		}
	}
	stopClose := context.AfterFunc(ctx, func() {
		defer close(closed)
		closeSub()
	})
	defer func() {
		u.subscribed.Store(false)
		u.forget(0)
		if stopClose() {
			closeSub()
		} else {
			<-closed
		}
	}()

	heard, pinged := time.Now(), false
	for {
		msg, err := ps.ReceiveTimeout(ctx, receiveTimeout)
		if ctx.Err() != nil {
			return up, nil
		}
		if err != nil {
			if !isTimeout(err) {
				return up, fmt.Errorf("redis: receive on %s: %w", channel, err)
			}
			if g, err := u.store.Generation(ctx); err == nil && g != gen {
				u.logger.InfoContext(ctx, "read-model update subscription follows the generation switch", slog.Int("to", g))
				return up, nil
			}
			switch quiet := time.Since(heard); {
			case quiet > silentAfter:
				return up, fmt.Errorf("redis: subscription to %s silent for %s", channel, quiet.Round(time.Second))
			case quiet > pingAfter && !pinged:
				if err := ps.Ping(ctx); err != nil {
					return up, fmt.Errorf("redis: ping subscription to %s: %w", channel, err)
				}
				pinged = true
			}
			continue
		}
		heard, pinged = time.Now(), false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				// Subscribed (again): what was published meanwhile is lost.
				up = true
				u.subscribed.Store(true)
				u.forget(gen)
				u.wakeAll()
			}
		case *redis.Message:
			u.notify(m.Payload)
		}
		// The old generation's channel stays busy for a while after a
		// switch (the projector keeps it up to date): move on as soon as
		// the store has seen the switch, not when the channel falls quiet.
		if g, err := u.store.Generation(ctx); err == nil && g != gen {
			u.logger.InfoContext(ctx, "read-model update subscription follows the generation switch", slog.Int("to", g))
			return up, nil
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
