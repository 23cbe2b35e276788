package auth_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/envconf"
)

func TestConfigFromEnv(t *testing.T) {
	t.Run("Defaults", func(t *testing.T) {
		r := envconf.New(envconf.Map(nil))
		got := auth.ConfigFromEnv(r)
		want := auth.Config{JWKSRefresh: auth.DefaultJWKSRefresh, Leeway: auth.DefaultLeeway}
		if err := r.Err(); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ConfigFromEnv = %+v (%v), want %+v", got, err, want)
		}
		if _, err := auth.NewVerifier(got); err == nil {
			t.Error("the default config verifies tokens: auth must be configured or explicitly disabled")
		}
	})
	t.Run("Production", func(t *testing.T) {
		r := envconf.New(envconf.Map(map[string]string{
			"AUTH_JWKS_URL":     "https://idp.example/.well-known/jwks.json",
			"AUTH_ALGORITHMS":   " RS256, ES256 ,",
			"AUTH_JWKS_REFRESH": "5m",
			"AUTH_ISSUER":       "https://idp.example/",
			"AUTH_AUDIENCE":     "cart-api",
			"AUTH_LEEWAY":       "10s",
			"AUTH_DISABLED":     "false",
		}))
		got := auth.ConfigFromEnv(r)
		want := auth.Config{
			JWKSURL: "https://idp.example/.well-known/jwks.json", Algorithms: []string{"RS256", "ES256"},
			JWKSRefresh: 5 * time.Minute, Issuer: "https://idp.example/", Audience: "cart-api", Leeway: 10 * time.Second,
		}
		if err := r.Err(); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ConfigFromEnv = %+v (%v), want %+v", got, err, want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("Validate = %v", err)
		}
	})
	t.Run("Development", func(t *testing.T) {
		r := envconf.New(envconf.Map(map[string]string{
			"AUTH_HS256_SECRET": string(testCfg.HS256Secret),
			"AUTH_ISSUER":       testCfg.Issuer,
			"AUTH_AUDIENCE":     testCfg.Audience,
		}))
		got := auth.ConfigFromEnv(r)
		if err := r.Err(); err != nil || string(got.HS256Secret) != string(testCfg.HS256Secret) || got.JWKSURL != "" {
			t.Errorf("ConfigFromEnv = %+v (%v)", got, err)
		}
		if _, err := auth.NewVerifier(got); err != nil {
			t.Errorf("NewVerifier: %v", err)
		}
	})
	t.Run("Disabled", func(t *testing.T) {
		r := envconf.New(envconf.Map(map[string]string{"AUTH_DISABLED": "true"}))
		if got := auth.ConfigFromEnv(r); !got.Disabled || got.Validate() != nil {
			t.Errorf("ConfigFromEnv = %+v", got)
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		r := envconf.New(envconf.Map(map[string]string{"AUTH_LEEWAY": "30", "AUTH_DISABLED": "maybe", "AUTH_JWKS_REFRESH": "soon"}))
		auth.ConfigFromEnv(r)
		if err := r.Err(); err == nil {
			t.Error("malformed values not reported")
		}
	})
}
