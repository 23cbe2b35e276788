package pgtest

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/cart-cqrs/cart/pkg/internal/testserver"
)

// MustRoleURL creates a login user that is a member of role — one of the
// service roles the migrations define (cart_command, cart_projector) — and
// returns dbURL connecting as that user, so that a test runs with exactly the
// privileges a deployment grants the service. The user is dropped when the
// test ends; close its connections before then (register the pool's cleanup
// after this call).
func MustRoleURL(tb testing.TB, dbURL, role string) string {
	tb.Helper()
	adminURL := server.Must(tb)
	user := role + "_t" + testserver.RandomHex(6)
	password := testserver.RandomHex(12)
	if err := admin(adminURL, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE %s", ident(user), password, ident(role))); err != nil {
		tb.Fatalf("pgtest: create user %s in role %s: %v", user, role, err)
	}
	tb.Cleanup(func() {
		if err := admin(adminURL, "DROP ROLE IF EXISTS "+ident(user)); err != nil {
			tb.Errorf("pgtest: drop user %s: %v", user, err)
		}
	})
	u, err := withUser(dbURL, user, password)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return u
}

// withUser returns dbURL connecting as user instead.
func withUser(dbURL, user, password string) (string, error) {
	if strings.HasPrefix(dbURL, "postgres://") || strings.HasPrefix(dbURL, "postgresql://") {
		u, err := url.Parse(dbURL)
		if err != nil {
			return "", fmt.Errorf("parse database url: %w", err)
		}
		u.User = url.UserPassword(user, password)
		q := u.Query()
		q.Del("user")
		q.Del("password")
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	// keyword/value: a later keyword wins.
	return dbURL + " user=" + user + " password=" + password, nil
}
