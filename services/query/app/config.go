package app

import (
	"errors"
	"fmt"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/envconf"
)

// Config is everything the query service needs to start.
type Config struct {
	// HTTPAddr is the listen address of the API, health and metrics
	// (QUERY_ADDR, default ":8081"; ":0" picks a free port).
	HTTPAddr string
	// RedisURL locates the read model (REDIS_URL, default
	// "redis://127.0.0.1:6379/0").
	RedisURL string
	// RedisPrefix starts every read-model key (REDIS_PREFIX, default "cart:");
	// it must match the projector's.
	RedisPrefix string
	// Auth checks bearer tokens (AUTH_HS256_SECRET, AUTH_ISSUER,
	// AUTH_AUDIENCE, AUTH_DISABLED — disabling is for development only).
	Auth auth.Config
}

// ConfigFromEnv reads the Config from the environment; lookup is usually
// os.LookupEnv. Every malformed value is reported at once.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	r := envconf.New(lookup)
	cfg := Config{
		HTTPAddr:    r.String("QUERY_ADDR", ":8081"),
		RedisURL:    r.String("REDIS_URL", "redis://127.0.0.1:6379/0"),
		RedisPrefix: r.String("REDIS_PREFIX", "cart:"),
		Auth: auth.Config{
			HS256Secret: r.Bytes("AUTH_HS256_SECRET"),
			Issuer:      r.String("AUTH_ISSUER", ""),
			Audience:    r.String("AUTH_AUDIENCE", ""),
			Disabled:    r.Bool("AUTH_DISABLED", false),
		},
	}
	errs := []error{r.Err()}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("query: config: %w", err)
	}
	return cfg, nil
}
