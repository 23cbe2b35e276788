package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/envconf"
)

func TestRun(t *testing.T) {
	env := map[string]string{
		"AUTH_HS256_SECRET": "dev-only-secret-do-not-use-in-production",
		"AUTH_ISSUER":       "cart-cqrs-dev",
		"AUTH_AUDIENCE":     "cart-cqrs",
	}
	t.Run("OK", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if err := run([]string{"-sub", "alice", "-role", "admin"}, envconf.Map(env), &out, &errOut, time.Now()); err != nil {
			t.Fatalf("run: %v (%s)", err, errOut.String())
		}
		tok := strings.TrimSuffix(out.String(), "\n")
		if strings.ContainsAny(tok, " \n") || errOut.Len() != 0 {
			t.Fatalf("stdout must hold only the token: %q, stderr %q", out.String(), errOut.String())
		}
		v, err := auth.NewVerifier(auth.Config{HS256Secret: []byte(env["AUTH_HS256_SECRET"]), Issuer: env["AUTH_ISSUER"], Audience: env["AUTH_AUDIENCE"]})
		if err != nil {
			t.Fatal(err)
		}
		if p, err := v.Verify(tok); err != nil || p.Subject != "alice" || !p.IsSystem() {
			t.Errorf("Verify = %+v, %v", p, err)
		}
	})
	t.Run("ErrNoSub", func(t *testing.T) {
		var out bytes.Buffer
		if err := run(nil, envconf.Map(env), &out, &bytes.Buffer{}, time.Now()); err == nil || out.Len() != 0 {
			t.Errorf("run without -sub: err %v, stdout %q", err, out.String())
		}
	})
	t.Run("ErrNoSecret", func(t *testing.T) {
		if err := run([]string{"-sub", "alice"}, envconf.Map(nil), &bytes.Buffer{}, &bytes.Buffer{}, time.Now()); err == nil {
			t.Error("run without AUTH_* succeeded")
		}
	})
}
