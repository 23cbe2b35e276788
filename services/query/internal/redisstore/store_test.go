package redisstore_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/query/internal/redisstore"
)

func TestGeneration(t *testing.T) {
	env := redistest.MustRedis(t)
	ctx := context.Background()
	s := redisstore.New(env.Client, env.Prefix, slog.New(slog.DiscardHandler))

	t.Run("AbsentMeansOne", func(t *testing.T) {
		if g, err := s.Generation(ctx); err != nil || g != 1 {
			t.Fatalf("Generation() = %d, %v; want 1", g, err)
		}
	})
	t.Run("Refresh", func(t *testing.T) {
		if err := env.Client.Set(ctx, readmodel.CurrentGeneration(env.Prefix), "3", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if g, err := s.Generation(ctx); err != nil || g != 1 {
			t.Fatalf("before Refresh: Generation() = %d, %v; want the cached 1", g, err)
		}
		if g, err := s.Refresh(ctx); err != nil || g != 3 {
			t.Fatalf("Refresh() = %d, %v; want 3", g, err)
		}
		if g, err := s.Generation(ctx); err != nil || g != 3 {
			t.Fatalf("after Refresh: Generation() = %d, %v; want 3", g, err)
		}
	})
	t.Run("ErrGarbage", func(t *testing.T) {
		if err := env.Client.Set(ctx, readmodel.CurrentGeneration(env.Prefix), "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Refresh(ctx); err == nil {
			t.Fatal("Refresh() accepted a non-numeric generation")
		}
		if g, err := s.Generation(ctx); err != nil || g != 3 {
			t.Fatalf("Generation() = %d, %v; want the last good 3", g, err)
		}
	})
}
