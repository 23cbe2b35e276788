package redisstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/polltest"

	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/query/internal/redisstore"
)

type updatesFixture struct {
	env     redistest.Env
	rdb     *redis.Client // the subscriber's own client, named so a test can find its connection
	name    string
	store   *redisstore.Store
	updates *redisstore.Updates
}

// runUpdates runs a subscription over the test's key prefix until the test
// ends, and waits until it is up.
func runUpdates(t *testing.T) *updatesFixture {
	t.Helper()
	env := redistest.MustRedis(t)
	opts, err := redis.ParseURL(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	f := &updatesFixture{env: env, name: "updates-" + strings.Trim(env.Prefix, ":")}
	f.name = strings.ReplaceAll(f.name, ":", "-")
	opts.ClientName = f.name
	f.rdb = redis.NewClient(opts)
	logger := slog.New(slog.DiscardHandler)
	if f.store, err = redisstore.New(f.rdb, env.Prefix, logger); err != nil {
		t.Fatal(err)
	}
	f.updates = redisstore.NewUpdates(f.rdb, f.store, logger)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := f.updates.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if err := f.rdb.Close(); err != nil {
			t.Error(err)
		}
	})
	eventually(t, "subscribed", f.updates.Subscribed)
	return f
}

func (f *updatesFixture) publish(t *testing.T, u readmodel.Update) {
	t.Helper()
	ch := readmodel.Keys{Prefix: f.env.Prefix, Generation: 1}.Updates()
	if err := f.env.Client.Publish(context.Background(), ch, u.String()).Err(); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds, failing the test after 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	polltest.True(t, 10*time.Second, what, cond)
}

// woken waits for a wake-up, failing after 10s.
func woken(t *testing.T, what string, wake <-chan struct{}) {
	t.Helper()
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatalf("not woken within 10s: %s", what)
	}
}

func asleep(wake <-chan struct{}) bool {
	select {
	case <-wake:
		return false
	default:
		return true
	}
}

func TestUpdates_WakesWhoMayBeSatisfied(t *testing.T) {
	f := runUpdates(t)
	a3, _, stopA3 := f.updates.WatchCart("a", 3)
	a5, _, stopA5 := f.updates.WatchCart("a", 5)
	alice, _, stopAlice := f.updates.WatchCustomer("alice", 3)
	marker, _, stopMarker := f.updates.WatchCart("marker", 1)
	defer stopA5()
	defer stopAlice()
	if n := f.updates.Waiters(); n != 4 {
		t.Fatalf("Waiters() = %d, want 4", n)
	}

	// Updates arrive in order: once the marker's waiter is woken, the
	// updates before it have been handled.
	settle := func() {
		t.Helper()
		f.publish(t, readmodel.Update{CartID: "marker", Version: 1})
		woken(t, "marker", marker)
	}
	f.publish(t, readmodel.Update{CartID: "a", Version: 2, CustomerID: "alice"})
	f.publish(t, readmodel.Update{CartID: "other", Version: 9, CustomerID: "bob"})
	settle()
	if !asleep(a3) || !asleep(a5) || !asleep(alice) {
		t.Fatal("woken by an update that cannot satisfy them")
	}
	f.publish(t, readmodel.Update{CartID: "a", Version: 3, CustomerID: "alice"})
	settle()
	if asleep(a3) || !asleep(a5) || asleep(alice) {
		t.Fatal("version 3 of a: want a3 and alice woken, a5 asleep")
	}
	// A cart of alice's she did not know of (just opened) wakes her too.
	f.publish(t, readmodel.Update{CartID: "new", Version: 4, CustomerID: "alice"})
	settle()
	if asleep(alice) {
		t.Fatal("alice not woken by her new cart")
	}

	stopA3()
	stopA3() // idempotent
	stopMarker()
	if n := f.updates.Waiters(); n != 2 {
		t.Fatalf("Waiters() = %d after two stops, want 2", n)
	}
	// Malformed payloads are ignored.
	ch := readmodel.Keys{Prefix: f.env.Prefix, Generation: 1}.Updates()
	if err := f.env.Client.Publish(context.Background(), ch, "garbage").Err(); err != nil {
		t.Fatal(err)
	}
	f.publish(t, readmodel.Update{CartID: "a", Version: 5})
	woken(t, "a5", a5)
}

func TestUpdates_ResubscribingWakesEveryone(t *testing.T) {
	f := runUpdates(t)
	cart, _, stopCart := f.updates.WatchCart("a", 2)
	defer stopCart()
	me, _, stopMe := f.updates.WatchCustomer("alice", 1)
	defer stopMe()

	// Kill the subscription's connection: what is published until it is
	// back is lost, so everyone must re-read once it is.
	ctx := context.Background()
	list, err := f.env.Client.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for line := range strings.Lines(list) {
		if strings.Contains(line, " name="+f.name+" ") && strings.Contains(line, " flags=P ") {
			var id int64
			if _, err := fmt.Sscanf(line, "id=%d ", &id); err != nil {
				t.Fatal(err)
			}
			if err := f.env.Client.ClientKillByFilter(ctx, "ID", fmt.Sprint(id)).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("found %d subscriber connections named %s in\n%s", killed, f.name, list)
	}
	woken(t, "cart waiter after resubscribing", cart)
	woken(t, "customer waiter after resubscribing", me)
	eventually(t, "subscribed again", f.updates.Subscribed)

	// And updates flow again.
	f.publish(t, readmodel.Update{CartID: "a", Version: 2})
	woken(t, "cart waiter by an update", cart)
}

func TestUpdates_FollowsTheGeneration(t *testing.T) {
	f := runUpdates(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.store.Run(ctx, 20*time.Millisecond) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	wake, _, stop := f.updates.WatchCart("a", 1)
	defer stop()
	if err := f.env.Client.Set(context.Background(), readmodel.CurrentGeneration(f.env.Prefix), 2, 0).Err(); err != nil {
		t.Fatal(err)
	}
	woken(t, "waiter after the switch", wake) // it may have missed updates
	// Now generation 2's channel is the one listened to.
	u := readmodel.Update{CartID: "a", Version: 1}
	eventually(t, "an update of generation 2 wakes the waiter", func() bool {
		ch := readmodel.Keys{Prefix: f.env.Prefix, Generation: 2}.Updates()
		if err := f.env.Client.Publish(context.Background(), ch, u.String()).Err(); err != nil {
			t.Fatal(err)
		}
		return !asleep(wake)
	})
}

// What the subscription saw announced tells a request its read would find
// the cart behind — only for the generation the store reads, and only until
// the subscription is made again.
func TestUpdates_KnowsCartsBehind(t *testing.T) {
	f := runUpdates(t)
	watch := func(cartID string, minVersion int) bool {
		t.Helper()
		_, behind, stop := f.updates.WatchCart(cartID, minVersion)
		stop()
		return behind
	}
	if watch("k", 2) {
		t.Fatal("behind before any update of the cart was seen")
	}
	marker, _, stopMarker := f.updates.WatchCart("marker", 1)
	defer stopMarker()
	f.publish(t, readmodel.Update{CartID: "k", Version: 1, CustomerID: "kim"})
	f.publish(t, readmodel.Update{CartID: "marker", Version: 1})
	woken(t, "marker", marker)
	if !watch("k", 2) {
		t.Error("version 1 was announced last: a read for version 2 is behind")
	}
	if watch("k", 1) {
		t.Error("version 1 was announced: a read for it is not behind")
	}
	if _, behind, stop := f.updates.WatchCustomer("kim", 2); behind {
		t.Error("a customer's wait is never known behind")
	} else {
		stop()
	}

	// The store reads another generation: what was seen is not about it.
	if err := f.env.Client.Set(context.Background(), readmodel.CurrentGeneration(f.env.Prefix), 2, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if watch("k", 2) {
		t.Error("behind although the store reads generation 2")
	}
}
