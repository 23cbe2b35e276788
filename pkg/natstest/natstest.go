// Package natstest gives each test its own JetStream stream name and subject
// prefix, so tests (and concurrent test runs) sharing one server never see
// each other's messages. The server is $NATS_URL when set; otherwise each call
// starts its own embedded, current nats-server with JetStream, so tests do not
// depend on whatever (possibly old) server runs on the machine.
package natstest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/internal/testserver"
)

// Env is one test's slice of a NATS server. The code under test creates the
// stream named Stream over subjects under SubjectPrefix.
type Env struct {
	URL           string
	Stream        string // "CART_T_<RANDOM HEX>"
	SubjectPrefix string // "t<random hex>.cart.events"
	Conn          *nats.Conn
	JS            jetstream.JetStream
	Server        *server.Server // the embedded server; nil when NATS_URL is set
}

// MustNATS returns a connection with JetStream and fresh stream and subject
// names. When the test ends the stream is deleted (if it was created), the
// connection drained and an embedded server shut down.
func MustNATS(tb testing.TB) Env {
	tb.Helper()
	id := testserver.RandomHex(8)
	env := Env{
		Stream:        "CART_T_" + strings.ToUpper(id),
		SubjectPrefix: "t" + id + ".cart.events",
	}
	env.URL = os.Getenv("NATS_URL")
	if env.URL == "" {
		env.Server = mustEmbedded(tb)
		env.URL = env.Server.ClientURL()
	}

	nc, err := nats.Connect(env.URL, nats.Name("natstest "+tb.Name()))
	if err != nil {
		tb.Fatalf("natstest: connect %s: %v", env.URL, err)
	}
	env.Conn = nc
	tb.Cleanup(func() { cleanup(tb, env) })

	env.JS, err = jetstream.New(nc)
	if err != nil {
		tb.Fatalf("natstest: jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := env.JS.AccountInfo(ctx); err != nil {
		tb.Fatalf("natstest: JetStream is not available on %s: %v", env.URL, err)
	}
	return env
}

// MustStream creates the test's stream as the command service's relay
// does — file storage, the subjects under SubjectPrefix, a 5-minute
// duplicate window — for tests of consumers that run without a relay.
func (e Env) MustStream(tb testing.TB) jetstream.Stream {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := e.JS.CreateStream(ctx, jetstream.StreamConfig{
		Name: e.Stream, Subjects: []string{e.SubjectPrefix + ".>"},
		Storage: jetstream.FileStorage, Duplicates: 5 * time.Minute, Replicas: 1,
	})
	if err != nil {
		tb.Fatalf("natstest: create stream %s: %v", e.Stream, err)
	}
	return st
}

func mustEmbedded(tb testing.TB) *server.Server {
	tb.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  tb.TempDir(), // removed after the server is shut down (cleanups run last-in first-out)
		NoSigs:    true,
		NoLog:     true,
	})
	if err != nil {
		tb.Fatalf("natstest: embedded server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		tb.Fatalf("natstest: embedded server not ready after 10s")
	}
	return s
}

func cleanup(tb testing.TB, env Env) {
	if env.JS != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := env.JS.DeleteStream(ctx, env.Stream)
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			tb.Errorf("natstest: delete stream %s: %v", env.Stream, err)
		}
	}
	drain(tb, env.Conn)
	if env.Server != nil {
		env.Server.Shutdown()
		env.Server.WaitForShutdown()
	}
}

// drain lets in-flight messages of the test's subscriptions finish, then
// closes the connection; it gives up after a few seconds.
func drain(tb testing.TB, nc *nats.Conn) {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		if !errors.Is(err, nats.ErrConnectionClosed) {
			tb.Errorf("natstest: drain: %v", err)
		}
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		tb.Errorf("natstest: drain did not finish in 5s")
		nc.Close()
	}
}

// MustPublish publishes events to the stream as the relay does (CloudEvents,
// in order, the event id as Nats-Msg-Id) and waits for their PubAcks.
// msgIDSuffix makes a duplicate get past the stream's deduplication (a relay
// that published again after a crash).
func (e Env) MustPublish(tb testing.TB, msgIDSuffix string, envs ...envelope.Envelope) {
	tb.Helper()
	for _, ev := range envs {
		data, err := envelope.MarshalCloudEvent(ev, "urn:cart-cqrs:test")
		if err != nil {
			tb.Fatal(err)
		}
		msg := nats.NewMsg(envelope.Subject(e.SubjectPrefix, ev.StreamID, ev.Type))
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, ev.EventID+msgIDSuffix)
		if _, err := e.JS.PublishMsgAsync(msg); err != nil {
			tb.Fatalf("publish %s v%d: %v", ev.StreamID, ev.Version, err)
		}
	}
	select {
	case <-e.JS.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		tb.Fatal("publishing did not complete in 30s")
	}
}
