package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

var devAuth = envconf.Map(map[string]string{
	"AUTH_HS256_SECRET": "dev-only-secret-do-not-use-in-production", "AUTH_ISSUER": "cart-cqrs-dev", "AUTH_AUDIENCE": "cart-cqrs",
})

func TestParse(t *testing.T) {
	t.Run("OKDefaults", func(t *testing.T) {
		cfg, jsonOut, _, err := parse(nil, devAuth, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Scenario != "mix" || cfg.Mode != load.Closed || cfg.Clients != 16 || cfg.Customers != 128 ||
			cfg.Duration != 10*time.Second || !strings.HasPrefix(cfg.CustomerPrefix, "load-") || jsonOut != "" ||
			cfg.Mix != load.Scenarios["mix"] || len(cfg.Products) != len(load.SeededProducts) || string(cfg.Auth.HS256Secret) == "" {
			t.Fatalf("defaults = %+v", cfg)
		}
	})
	t.Run("OKOpenLoop", func(t *testing.T) {
		cfg, jsonOut, _, err := parse(strings.Fields("-scenario lag -mode open -rate 1000 -clients 64 -customers 100 -products 123,456 -json -"), devAuth, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Mode != load.Open || cfg.Rate != 1000 || cfg.Customers != 100 || len(cfg.Products) != 2 || jsonOut != "-" || cfg.Mix.ReadAfterWrite != 1 {
			t.Fatalf("cfg = %+v", cfg)
		}
	})
	for name, args := range map[string]string{
		"ErrScenario":     "-scenario browse",
		"ErrOpenNoRate":   "-mode open",
		"ErrArgument":     "extra",
		"ErrTooFewPeople": "-clients 8 -customers 4",
		"ErrMarksAndJSON": "-marks -json -",
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := parse(strings.Fields(args), devAuth, io.Discard); err == nil {
				t.Fatalf("parse(%q) accepted", args)
			}
		})
	}
	t.Run("ErrNoSecret", func(t *testing.T) {
		if _, _, _, err := parse(nil, envconf.Map(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "secret") {
			t.Fatalf("parse without AUTH_* = %v", err)
		}
	})
}
