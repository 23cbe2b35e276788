package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/internal/rebuild"
	"github.com/cart-cqrs/cart/services/projector/internal/redisstore"
)

// BenchmarkMerge measures what a rebuild's writes cost: one page of 2,000
// carts of 10 events each merged into an empty generation.
func BenchmarkMerge(b *testing.B) {
	env := redistest.MustRedis(b)
	store := redisstore.New(env.Client, env.Prefix)
	var merges []rebuild.Merge
	for i := range 2000 {
		id := fmt.Sprintf("0195a3c0-0000-7000-8000-%012d", i)
		envs, s := events(b, id, "customer-"+id, 10)
		entries := make([][]byte, len(envs))
		for j, e := range envs {
			entry, err := store.AppendEntry(nil, readmodel.NewHistoryEntry(e))
			if err != nil {
				b.Fatal(err)
			}
			entries[j] = entry
		}
		merges = append(merges, rebuild.Merge{CartID: id, State: s, Entries: entries, Place: true, Index: true})
	}
	gen := 1
	start := time.Now()
	for b.Loop() {
		gen++
		res, err := store.WriteMerges(context.Background(), gen, merges)
		if err != nil {
			b.Fatal(err)
		}
		if res[0] != rebuild.Merged {
			b.Fatalf("result %v", res[0])
		}
	}
	b.ReportMetric(float64(20000*(gen-1))/time.Since(start).Seconds(), "events/s")
}
