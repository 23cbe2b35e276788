package postgres_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/services/command/internal/postgres"
)

// BenchmarkUpdateParallel adds items from many goroutines, each on a cart of
// its own, with each command committed alone (group 1) and with the group
// commit: go test -bench UpdateParallel -run '^$' ./services/command/internal/postgres
func BenchmarkUpdateParallel(b *testing.B) {
	for _, c := range []struct{ workers, group int }{{2, 1}, {1, 64}, {2, 64}, {4, 64}} {
		b.Run(fmt.Sprintf("workers=%d/group=%d", c.workers, c.group), func(b *testing.B) {
			pool, err := pgxpool.New(b.Context(), pgtest.MustDatabase(b)+"&pool_max_conns=16")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(pool.Close)
			repo := postgres.New(pool, postgres.WithGroupCommit(c.workers, c.group))
			b.Cleanup(repo.Close)
			beans, err := repo.Product(b.Context(), "123")
			if err != nil {
				b.Fatal(err)
			}
			var customers atomic.Int64
			b.SetParallelism(8) // 8 × GOMAXPROCS writers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				by := cart.Actor{ID: fmt.Sprintf("bench-%d", customers.Add(1))}
				id, _, _, err := repo.Open(b.Context(), by, md)
				if err != nil {
					b.Error(err)
					return
				}
				for i := 0; pb.Next(); i++ {
					var cmd cart.Command = add(beans, 1)
					if i%2 == 1 {
						cmd = cart.RemoveItem{ProductID: beans.ID}
					}
					if _, err := do(b.Context(), repo, id, by, cmd); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
		})
	}
}
