package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/natstest"
)

// natsConfig is the NATS configuration the deployments ship.
const natsConfig = "../deploy/nats/nats.conf"

var natsPasswords = map[string]string{
	"command": "command-e2e-password", "projector": "projector-e2e-password", "subscriber": "subscriber-e2e-password",
}

// mustConfiguredNATS runs a NATS server from the shipped configuration, on a
// free loopback port and a store of the test's own.
func mustConfiguredNATS(t *testing.T) *server.Server {
	t.Helper()
	for user, pw := range natsPasswords {
		t.Setenv("NATS_"+map[string]string{"command": "COMMAND", "projector": "PROJECTOR", "subscriber": "SUBSCRIBER"}[user]+"_PASSWORD", pw)
	}
	opts, err := server.ProcessConfigFile(natsConfig)
	if err != nil {
		t.Fatalf("%s: %v", natsConfig, err)
	}
	opts.Host, opts.Port, opts.HTTPPort, opts.StoreDir = "127.0.0.1", server.RANDOM_PORT, 0, t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS did not start")
	}
	return srv
}

// mustConnectAs connects as user; the permission violations the server
// reports (asynchronously) arrive on the returned channel.
func mustConnectAs(t *testing.T, srv *server.Server, user string) (jetstream.JetStream, <-chan error) {
	t.Helper()
	violations := make(chan error, 16)
	c, err := nats.Connect(natsURLFor(srv, user), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			select {
			case violations <- err:
			default:
			}
		}
	}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(c.Close)
	js, err := jetstream.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return js, violations
}

// mustBeDenied runs op, which the server must refuse: op fails, and the
// server reports a permissions violation.
func mustBeDenied(t *testing.T, violations <-chan error, what string, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := op(ctx); err == nil {
		t.Errorf("%s: allowed", what)
		return
	}
	select {
	case <-violations:
	case <-time.After(5 * time.Second):
		t.Errorf("%s: failed, but the server reported no permissions violation", what)
	}
}

func natsURLFor(srv *server.Server, user string) string {
	u, _ := url.Parse(srv.ClientURL())
	u.User = url.UserPassword(user, natsPasswords[user])
	return u.String()
}

// TestNATSPermissions runs the pipeline with each service connecting as its
// own NATS user of the shipped configuration: the users' permissions are
// enough for the real code, and nothing more — no anonymous access, only the
// command service's relay publishes cart events, and another microservice
// reads them through its own consumer but cannot touch the projector's.
func TestNATSPermissions(t *testing.T) {
	srv := mustConfiguredNATS(t)
	js, violations := mustConnectAs(t, srv, "subscriber")
	env := natstest.Env{URL: srv.ClientURL(), Stream: "CART_EVENTS", SubjectPrefix: "cart.events", Conn: js.Conn(), JS: js, Server: srv}
	s := mustStart(t, options{
		nats:          &env,
		commandVars:   map[string]string{"NATS_URL": natsURLFor(srv, "command")},
		projectorVars: map[string]string{"NATS_URL": natsURLFor(srv, "projector"), "NATS_DURABLE": "cart-projector"},
	})

	tok := token(t, customer("perm"), "")
	opened := s.command(t, tok, "/v1/carts", nil)
	added := s.command(t, tok, "/v1/carts/"+opened.CartID+"/add-item", item("123", 1))
	s.awaitCart(t, tok, opened.CartID, added.Version)

	t.Run("NoAnonymousAccess", func(t *testing.T) {
		if c, err := nats.Connect(srv.ClientURL()); err == nil {
			c.Close()
			t.Fatal("an anonymous client connected")
		}
	})
	t.Run("OnlyTheRelayPublishesEvents", func(t *testing.T) {
		for _, user := range []string{"projector", "subscriber"} {
			cjs, violations := mustConnectAs(t, srv, user)
			subject := fmt.Sprintf("cart.events.%s.cart.opened", uuid.NewString())
			mustBeDenied(t, violations, user+" publishes "+subject, func(ctx context.Context) error {
				_, err := cjs.Publish(ctx, subject, []byte(`{}`), jetstream.WithRetryAttempts(0))
				return err
			})
		}
	})
	t.Run("SubscriberReadsThroughItsOwnConsumer", func(t *testing.T) {
		st, err := js.Stream(t.Context(), "CART_EVENTS")
		if err != nil {
			t.Fatal(err)
		}
		cons, err := st.CreateOrUpdateConsumer(t.Context(), jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatalf("the subscriber's own consumer: %v", err)
		}
		batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			if err := m.Ack(); err != nil {
				t.Errorf("ack: %v", err)
			}
			n++
		}
		if n != 2 || batch.Error() != nil {
			t.Fatalf("the subscriber read %d of 2 events (%v)", n, batch.Error())
		}
		mustBeDenied(t, violations, "the subscriber looks up the projector's consumer", func(ctx context.Context) error {
			_, err := st.Consumer(ctx, "cart-projector")
			return err
		})
		mustBeDenied(t, violations, "the subscriber changes the projector's consumer", func(ctx context.Context) error {
			_, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "cart-projector", AckPolicy: jetstream.AckNonePolicy})
			return err
		})
	})
}
