package redisstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/redisstore"
)

// BenchmarkLoadSave measures a live projector's Redis side as a command
// load drives it: batches of 256 carts, one new event each, loaded and
// saved (two round trips per batch).
//
//	go test -run '^$' -bench LoadSave ./internal/redis
func BenchmarkLoadSave(b *testing.B) {
	env := redistest.MustRedis(b)
	var store *redisstore.Store
	ctx := context.Background()
	const carts, batch, versions = 2560, 256, 12
	ids := make([]string, carts)
	logs := make([][]envelope.Envelope, carts)
	states := make([][]cart.State, carts)
	for i := range ids {
		ids[i] = fmt.Sprintf("0195a3c0-0000-7000-8000-%012d", i)
		envs, _ := events(b, ids[i], "customer-"+ids[i], versions)
		logs[i] = envs
		var s cart.State
		for _, e := range envs {
			r, err := e.Recorded()
			if err != nil {
				b.Fatal(err)
			}
			s = cart.Evolve(s, r)
			states[i] = append(states[i], s)
		}
	}
	gens, err := redisstore.New(env.Client, env.Prefix).Generations(ctx)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		v := n / (carts / batch) % versions // the version each cart of the batch gets, 0-based
		lo := n % (carts / batch) * batch
		n++
		if v == 0 && lo == 0 {
			// Every cart at its last version: start again, under a new prefix.
			store = redisstore.New(env.Client, fmt.Sprintf("%sround%d:", env.Prefix, n))
		}
		recs, err := store.Load(ctx, gens, ids[lo:lo+batch])
		if err != nil {
			b.Fatal(err)
		}
		changes := make([]documents.Change, batch)
		for j, id := range ids[lo : lo+batch] {
			d := recs[id].Docs
			var from0 documents.Doc
			if len(d) > 0 {
				from0 = d[0]
			}
			from := from0.Version
			i := lo + j
			changes[j] = documents.Change{CartID: id, ParkedLen: len(recs[id].Parked), Writes: []documents.Write{{
				CartID: id, From: from, State: states[i][v], Changed: true, HistoryLen: from0.HistoryLen,
				History: entries(logs[i][from : v+1]), Stamp: from0.Stamp,
			}}}
		}
		res, err := store.Save(ctx, gens, changes)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*batch)/1000, "µs/event")
}
