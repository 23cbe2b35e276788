package natstest_test

import (
	"errors"
	"testing"

	"github.com/cart-cqrs/cart/pkg/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

func TestMustNATS_isolatedAndCleanedUp(t *testing.T) {
	ctx := t.Context()
	outer := natstest.MustNATS(t)
	var inner natstest.Env
	t.Run("inner", func(t *testing.T) {
		inner = natstest.MustNATS(t)
		if inner.Stream == outer.Stream || inner.SubjectPrefix == outer.SubjectPrefix {
			t.Fatalf("two calls share names: %+v / %+v", inner, outer)
		}
		if inner.Server != nil && !inner.Server.JetStreamEnabled() {
			t.Fatal("embedded server has JetStream disabled")
		}
		if _, err := inner.JS.CreateStream(ctx, jetstream.StreamConfig{
			Name:     inner.Stream,
			Subjects: []string{inner.SubjectPrefix + ".>"},
		}); err != nil {
			t.Fatalf("create stream: %v", err)
		}
		ack, err := inner.JS.Publish(ctx, inner.SubjectPrefix+".c1.cart.opened", []byte("{}"))
		if err != nil || ack.Stream != inner.Stream {
			t.Fatalf("publish: ack %+v, err %v", ack, err)
		}
	})

	if inner.Server == nil {
		// A shared external server: the inner stream must be gone.
		_, err := outer.JS.Stream(ctx, inner.Stream)
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("stream %s after its test ended: err %v, want ErrStreamNotFound", inner.Stream, err)
		}
		return
	}
	// An embedded server per call: it must be shut down.
	if inner.Server.Running() {
		t.Errorf("embedded server still running after its test ended")
	}
	if !inner.Conn.IsClosed() {
		t.Errorf("connection still open after its test ended")
	}
}
