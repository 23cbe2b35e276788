package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cart-cqrs/cart/pkg/service"
)

func waitForCtx(ctx context.Context) error { <-ctx.Done(); return nil }

func TestRunAll(t *testing.T) {
	t.Run("OK every part stops when ctx ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := service.RunAll(ctx, service.Part{Name: "a", Run: waitForCtx}, service.Part{Name: "b", Run: waitForCtx}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrPart stops the others and is named", func(t *testing.T) {
		stopped := make(chan struct{})
		err := service.RunAll(context.Background(),
			service.Part{Name: "server", Run: func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil }},
			service.Part{Name: "relay", Run: func(context.Context) error { return errors.New("boom") }},
		)
		<-stopped
		if err == nil || !strings.Contains(err.Error(), "relay: boom") || strings.Contains(err.Error(), "server") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrUnexpectedStop a part returning nil early is an error", func(t *testing.T) {
		err := service.RunAll(context.Background(),
			service.Part{Name: "server", Run: waitForCtx},
			service.Part{Name: "cleanup", Run: func(context.Context) error { return nil }},
		)
		if err == nil || !strings.Contains(err.Error(), "cleanup: stopped unexpectedly") {
			t.Fatalf("err = %v", err)
		}
	})
}
