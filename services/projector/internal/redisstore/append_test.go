package redisstore

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
)

// The append script does what the save script does for the changes it
// takes: the same steps through both leave the same keys and answers.
func TestAppendScript_IsTheSaveScriptForAppends(t *testing.T) {
	env := redistest.MustRedis(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	state := func(id, customer string, opened time.Time, version int, out bool) cart.State {
		s := cart.Evolve(cart.State{}, cart.Recorded{CartID: id, Version: 1, OccurredAt: opened, Event: cart.Opened{CustomerID: customer}})
		for v := 2; v <= version; v++ {
			var e cart.Event = cart.ItemAdded{ProductID: "123", Name: "Espresso", UnitPrice: 1899, Currency: "EUR", Quantity: 1}
			if out && v == version {
				e = cart.CheckedOut{}
			}
			s = cart.Evolve(s, cart.Recorded{CartID: id, Version: v, OccurredAt: opened.Add(time.Duration(v) * time.Minute), Event: e})
		}
		return s
	}
	entry := func(id string, v int) readmodel.HistoryEntry {
		return readmodel.HistoryEntry{Version: v, EventID: fmt.Sprintf("%s-%d", id, v), Type: "t", SchemaVersion: 1, OccurredAt: at}
	}
	write := func(id string, from, hlen int, s cart.State, skipped ...int) documents.Change {
		w := documents.Write{CartID: id, From: from, State: s, Changed: true, HistoryLen: hlen, Skipped: skipped}
		for v := from + 1; v <= s.Version; v++ {
			w.History = append(w.History, entry(id, v))
		}
		return documents.Change{CartID: id, Writes: []documents.Write{w}}
	}
	// stamped guards a change with the stamp of the document from, as
	// stored with its skipped versions.
	stamped := func(c documents.Change, from cart.State, skipped ...int) documents.Change {
		doc, err := appendDoc(nil, from)
		if err != nil {
			t.Fatal(err)
		}
		c.Writes[0].Stamp = stamp(formatWrites(skipped), doc)
		return c
	}
	s1, s2, s3 := state("s", "sam", at, 1, false), state("s", "sam", at, 2, false), state("s", "sam", at, 3, false)
	steps := []documents.Change{
		write("a", 0, 0, state("a", "alice", at, 2, false)),
		write("a", 2, 2, state("a", "alice", at, 3, false), 3),
		write("a", 3, 3, state("a", "alice", at, 4, false)),
		write("a", 3, 3, state("a", "alice", at, 4, false)),                 // a duplicate: conflict
		write("a", 4, 1, state("a", "alice", at, 5, false)),                 // history out of step: conflict
		write("b", 0, 0, state("b", "alice", at.Add(-time.Hour), 1, false)), // older: superseded
		write("c", 0, 0, state("c", "alice", at.Add(time.Hour), 1, false)),  // newer: takes the index
		write("a", 4, 4, state("a", "alice", at, 6, true)),
		write("c", 1, 1, state("c", "alice", at.Add(time.Hour), 3, true)),
		write("n", 0, 0, cart.State{CartID: "n", Version: 1}),
		write("p", 0, 0, state("p", "paul", at, 1, false)), // parked: conflict
		write("s", 0, 0, s1),
		stamped(write("s", 1, 1, s2), s1),
		stamped(write("s", 2, 2, s3), s1),                                 // another document at that version: conflict
		stamped(write("s", 2, 2, s3, 3), s2),                              // skipping version 3
		stamped(write("s", 3, 3, state("s", "sam", at, 4, false)), s3),    // without the skipped versions: conflict
		stamped(write("s", 3, 3, state("s", "sam", at, 4, false)), s3, 3), // with them
	}
	wantStamped := []string{"ok<nil>", "ok<nil>", "conflict<nil>", "ok<nil>", "conflict<nil>", "ok<nil>"}
	run := func(prefix string, fast bool) ([]string, map[string]any) {
		s := New(env.Client, prefix)
		if err := env.Client.SAdd(ctx, s.parkedCartsKey(), "p").Err(); err != nil {
			t.Fatal(err)
		}
		gens, err := s.Generations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var replies []string
		for _, c := range steps {
			if !appending(c) {
				t.Fatalf("step %+v does not append", c)
			}
			var cl call
			if fast {
				cl, _, err = s.appendCall(gens, c, nil)
			} else {
				cl, _, err = s.saveCall(gens, c, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.run(ctx, []call{cl})
			if err != nil {
				t.Fatal(err)
			}
			replies = append(replies, fmt.Sprint(res[0].reply, res[0].err))
		}
		return replies, dump(t, env.Client, prefix)
	}
	saveReplies, saved := run(env.Prefix+"save:", false)
	appendReplies, appended := run(env.Prefix+"append:", true)
	if !reflect.DeepEqual(saveReplies, appendReplies) {
		t.Errorf("replies differ:\n save   %v\n append %v", saveReplies, appendReplies)
	}
	if got := saveReplies[len(steps)-len(wantStamped):]; !reflect.DeepEqual(got, wantStamped) {
		t.Errorf("replies to the stamped writes = %v, want %v", got, wantStamped)
	}
	if !reflect.DeepEqual(saved, appended) {
		t.Errorf("keys differ:\n save   %v\n append %v", saved, appended)
	}
}

// dump reads every key under prefix, by its name after the prefix.
func dump(t *testing.T, c *goredis.Client, prefix string) map[string]any {
	t.Helper()
	ctx := context.Background()
	keys, err := c.Keys(ctx, readmodel.EscapeGlob(prefix)+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for _, k := range keys {
		typ, err := c.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = c.Get(ctx, k).Result()
		case "hash":
			v, err = c.HGetAll(ctx, k).Result()
		case "list":
			v, err = c.LRange(ctx, k, 0, -1).Result()
		case "set":
			v, err = c.SMembers(ctx, k).Result()
		}
		if err != nil {
			t.Fatal(err)
		}
		out[k[len(prefix):]] = v
	}
	return out
}
