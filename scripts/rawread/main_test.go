package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// TestRawRead: the raw read path serves the seeded synthetic carts as they
// were stored, a missing one as 404, and leaves nothing behind.
func TestRawRead(t *testing.T) {
	t.Parallel()
	r := redistest.MustRedis(t)
	ctx := t.Context()
	cfg := config{prefix: r.Prefix + "raw:", customerPrefix: "c", carts: 1500}
	if err := seed(ctx, r.Client, cfg); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler(r.Client, cfg.prefix))
	defer srv.Close()

	for _, i := range []int{0, 999, 1000, 1499} {
		resp, err := http.Get(srv.URL + "/v1/carts/" + load.SyntheticCartID(i))
		if err != nil {
			t.Fatal(err)
		}
		var body [4096]byte
		n, _ := resp.Body.Read(body[:])
		_ = resp.Body.Close()
		want, err := load.SyntheticCart(i, load.CustomerID("c", i))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || string(body[:n]) != string(want) || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("cart %d: %d %q %s, want 200 with %s", i, resp.StatusCode, resp.Header.Get("Content-Type"), body[:n], want)
		}
	}
	resp, err := http.Get(srv.URL + "/v1/carts/" + load.SyntheticCartID(1500))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("an unseeded cart answers %d, want 404", resp.StatusCode)
	}

	if err := unseed(ctx, r.Client, cfg); err != nil {
		t.Fatal(err)
	}
	if keys, err := r.Client.Keys(ctx, cfg.prefix+"*").Result(); err != nil || len(keys) != 0 {
		t.Fatalf("%d keys left after unseed (%v)", len(keys), err)
	}
}
