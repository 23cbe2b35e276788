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
			cfg.DrainEvents != 100_000 || cfg.LagRate != 1000 || cfg.NATSURL != "" {
			t.Fatalf("defaults = %+v", cfg)
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
		cfg, err := configFromEnv(with(map[string]string{"BENCH_DURATION": "3s", "BENCH_CLIENTS": "8,2 2  32"}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Duration != 3*time.Second || !slices.Equal(cfg.Clients, []int{2, 8, 32}) {
			t.Fatalf("cfg = %+v", cfg)
		}
	})
	for name, env := range map[string]map[string]string{
		"ErrClients":     {"BENCH_CLIENTS": "1 four"},
		"ErrNoClients":   {"BENCH_CLIENTS": " , "},
		"ErrZeroClients": {"BENCH_CLIENTS": "0 4"},
		"ErrDuration":    {"BENCH_DURATION": "500ms"},
		"ErrNotDuration": {"BENCH_DURATION": "ten"},
		"ErrNoAuth":      {"AUTH_HS256_SECRET": ""},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := configFromEnv(with(env)); err == nil || !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("configFromEnv = %v, want a config error", err)
			}
		})
	}
}
