package app_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/natstest"
	"github.com/cart-cqrs/cart/pkg/openapi/openapitest"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/services/command/api"
	"github.com/cart-cqrs/cart/services/command/app"
	"github.com/cart-cqrs/cart/services/command/relay"
)

// TestAsyncAPIServed: the service serves its AsyncAPI document, as YAML and
// without a token, as its OpenAPI document says.
func TestAsyncAPIServed(t *testing.T) {
	nt := natstest.MustNATS(t)
	a, err := app.New(t.Context(), app.Config{
		HTTPAddr: "127.0.0.1:0", DatabaseURL: pgtest.MustDatabase(t), DatabaseMaxConns: 2, NATSURL: nt.URL,
		Auth:  auth.Config{HS256Secret: []byte("asyncapi-test-secret-asyncapi-te!"), Issuer: "i", Audience: "a"},
		Relay: relay.Options{Stream: nt.Stream, SubjectPrefix: nt.SubjectPrefix}, SnapshotEvery: 20, Migrate: true,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	client := openapitest.Client(t, map[string]*openapi3.T{a.Addr(): openapitest.MustLoad(t, api.OpenAPI)})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+a.Addr()+"/asyncapi.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if cerr := res.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(body, api.AsyncAPI) {
		t.Fatalf("GET /asyncapi.yaml: %d %q, %d bytes (want %d)", res.StatusCode, res.Header.Get("Content-Type"), len(body), len(api.AsyncAPI))
	}
}
