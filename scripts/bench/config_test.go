package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/envconf"
)

func TestConfigFromEnv(t *testing.T) {
	auth := map[string]string{"AUTH_HS256_SECRET": "s", "AUTH_ISSUER": "i", "AUTH_AUDIENCE": "a"}
	with := func(extra map[string]string) envconf.Env {
		m := map[string]string{}
		for k, v := range auth {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return envconf.Map(m)
	}

	t.Run("OKDefaults", func(t *testing.T) {
		cfg, err := configFromEnv(with(nil))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Duration != 10*time.Second || !slices.Equal(cfg.Clients, []int{1, 4, 16, 64}) || cfg.maxClients() != 64 ||
			cfg.DrainEvents != 100_000 || cfg.LagRate != 1000 || cfg.IdleRate != 50 || cfg.NATSURL != "" ||
			cfg.NATSServer != "bin/nats-server" || cfg.Before != "bench/before.json" ||
			!slices.Equal(cfg.NATSSync, []string{"default", "always"}) {
			t.Fatalf("defaults = %+v", cfg)
		}
		// The targets' rates are always among the steps.
		if got := cfg.steppedRates(); !slices.Equal(got, []float64{50, 250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000}) {
			t.Fatalf("stepped rates %v", got)
		}
		if cfg.stepClients(1000) != 64 || cfg.stepClients(8000) != 240 {
			t.Fatalf("step clients %d at 1000/s, %d at 8000/s", cfg.stepClients(1000), cfg.stepClients(8000))
		}
	})
	t.Run("OKEmptyPrefixMeansTheDefault", func(t *testing.T) {
		// The benchmark deletes every key under the prefix: an empty one
		// must never mean "every key".
		cfg, err := configFromEnv(with(map[string]string{"BENCH_REDIS_PREFIX": ""}))
		if err != nil || cfg.RedisPrefix != "cart-bench:" {
			t.Fatalf("prefix %q, %v", cfg.RedisPrefix, err)
		}
	})
	t.Run("OKOverrides", func(t *testing.T) {
		cfg, err := configFromEnv(with(map[string]string{"BENCH_DURATION": "3s", "BENCH_CLIENTS": "8,2 2  32",
			"BENCH_RATES": "700,300 300", "BENCH_LAG_RATE": "600", "BENCH_IDLE_RATE": "20", "BENCH_BIN": "/tmp/b"}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Duration != 3*time.Second || !slices.Equal(cfg.Clients, []int{2, 8, 32}) || cfg.NATSServer != "/tmp/b/nats-server" {
			t.Fatalf("cfg = %+v", cfg)
		}
		if got := cfg.steppedRates(); !slices.Equal(got, []float64{20, 300, 600, 700}) {
			t.Fatalf("stepped rates %v", got)
		}
	})
	for name, env := range map[string]map[string]string{
		"ErrClients":     {"BENCH_CLIENTS": "1 four"},
		"ErrNoClients":   {"BENCH_CLIENTS": " , "},
		"ErrZeroClients": {"BENCH_CLIENTS": "0 4"},
		"ErrDuration":    {"BENCH_DURATION": "500ms"},
		"ErrNotDuration": {"BENCH_DURATION": "ten"},
		"ErrNoAuth":      {"AUTH_HS256_SECRET": ""},
		"ErrRate":        {"BENCH_RATES": "100 fast"},
		"ErrZeroRate":    {"BENCH_RATES": "0 100"},
		"ErrIdleRate":    {"BENCH_IDLE_RATE": "0"},
		"ErrNATSSync":    {"BENCH_NATS_SYNC": "default sometimes"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := configFromEnv(with(env)); err == nil || !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("configFromEnv = %v, want a config error", err)
			}
		})
	}
}

func TestParseSync(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"OKBoth", "default always", []string{"default", "always"}},
		{"OKOrderKeptAndDurationsNormalized", "always, 1000ms default,1s ALWAYS", []string{"always", "1s", "default"}},
		{"OKOff", " off ", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSync(tc.in)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("parseSync(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
	for _, in := range []string{"sometimes", "0s", "-1s", "off always", " , "} {
		t.Run("Err"+in, func(t *testing.T) {
			if got, err := parseSync(in); err == nil || !strings.HasPrefix(err.Error(), "BENCH_NATS_SYNC=") {
				t.Fatalf("parseSync(%q) = %q, %v; want an error", in, got, err)
			}
		})
	}
}
