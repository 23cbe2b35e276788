package auth

import (
	"errors"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/problem"
)

// Headers trusted instead of a token when verification is Disabled.
const (
	HeaderCustomerID = "X-Customer-Id"
	HeaderRole       = "X-Role"
)

// Problem codes returned by Middleware.
const (
	CodeUnauthorized = "unauthorized"  // no credentials
	CodeInvalidToken = "invalid-token" // a token was sent and refused
)

const principalKey = "auth.principal"

// Middleware authenticates every request it wraps and stores the Principal
// for FromContext. Failures are *problem.Error values (401) left to the
// shared error handler, which writes the body and WWW-Authenticate.
func Middleware(v *Verifier) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, err := authenticate(v, c)
			if err != nil {
				return err
			}
			// A pointer: the cache's principal is stored without a copy.
			c.Set(principalKey, p)
			return next(c)
		}
	}
}

func authenticate(v *Verifier, c echo.Context) (*Principal, error) {
	h := c.Request().Header
	if v.Disabled() {
		id := strings.TrimSpace(h.Get(HeaderCustomerID))
		if !validSubject(id) {
			return nil, problem.New(problem.Unauthorized, CodeUnauthorized,
				"authentication is disabled: send the caller's id in "+HeaderCustomerID)
		}
		return &Principal{Subject: id, Role: strings.TrimSpace(h.Get(HeaderRole))}, nil
	}
	scheme, token, ok := strings.Cut(h.Get(echo.HeaderAuthorization), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, problem.New(problem.Unauthorized, CodeUnauthorized, "a bearer token is required")
	}
	p, err := v.verify(c.Request().Context(), token)
	if err != nil {
		// The detail is a short reason; the token and jwt's text stay out
		// of the response (Err is logged at debug by the handler).
		return nil, &problem.Error{Kind: problem.Unauthorized, Code: CodeInvalidToken, Detail: reason(err), Err: err}
	}
	return p, nil
}

func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the token is not valid yet"
	case errors.Is(err, ErrUnknownKey):
		return "the token's signing key is unknown"
	default:
		return "the token is invalid"
	}
}

// FromContext returns the Principal stored by Middleware.
func FromContext(c echo.Context) (Principal, bool) {
	p, ok := c.Get(principalKey).(*Principal)
	if !ok {
		return Principal{}, false
	}
	return *p, true
}
