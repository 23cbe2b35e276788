package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/problem"
)

var testCfg = auth.Config{
	HS256Secret: []byte("0123456789abcdef0123456789abcdef"),
	Issuer:      "https://issuer.test",
	Audience:    "cart-api",
}

// newServer mounts the middleware in front of a handler that echoes the
// principal, with the shared problem handler as in the services.
func newServer(t *testing.T, cfg auth.Config) *echo.Echo {
	t.Helper()
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	e := echo.New()
	e.HTTPErrorHandler = problem.HTTPErrorHandler(slog.New(slog.DiscardHandler))
	g := e.Group("/v1", auth.Middleware(v))
	g.GET("/me", func(c echo.Context) error {
		p, ok := auth.FromContext(c)
		if !ok {
			return echo.ErrInternalServerError
		}
		return c.JSON(http.StatusOK, map[string]any{"sub": p.Subject, "role": p.Role, "system": p.IsSystem()})
	})
	return e
}

func do(e *echo.Echo, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/v1/me", nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

func mustIssue(t *testing.T, cfg auth.Config, sub, role string, ttl time.Duration, now time.Time) string {
	t.Helper()
	tok, err := auth.Issue(cfg, sub, role, ttl, now)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok
}

func sign(t *testing.T, m jwt.SigningMethod, claims jwt.MapClaims, key any) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return tok
}

func validClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testCfg.Issuer, "aud": testCfg.Audience, "sub": "alice",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

func TestMiddleware(t *testing.T) {
	e := newServer(t, testCfg)
	verifier, err := auth.NewVerifier(testCfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()

	t.Run("OK", func(t *testing.T) {
		rec := do(e, bearer(mustIssue(t, testCfg, "alice", "", time.Hour, now)))
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d: %s", rec.Code, rec.Body)
		}
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got["sub"] != "alice" || got["system"] != false {
			t.Errorf("principal = %v (%v)", got, err)
		}
	})
	t.Run("OKSystemRoleLowercaseScheme", func(t *testing.T) {
		tok := mustIssue(t, testCfg, "catalog-service", "system", time.Hour, now)
		rec := do(e, http.Header{"Authorization": {"bearer " + tok}})
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"system":true`) {
			t.Errorf("status = %d: %s", rec.Code, rec.Body)
		}
	})

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	valid := mustIssue(t, testCfg, "alice", "", time.Hour, now)
	parts := strings.Split(valid, ".")
	sig := []byte(parts[2])
	// Change a character in the middle (all six bits are significant there)
	// to another valid base64url character, so only the signature is wrong.
	if mid := len(sig) / 2; sig[mid] == 'A' {
		sig[mid] = 'B'
	} else {
		sig[mid] = 'A'
	}
	tampered := parts[0] + "." + parts[1] + "." + string(sig)
	tamperedClaims := parts[0] + "." + jwtSegment(t, jwt.MapClaims{
		"iss": testCfg.Issuer, "aud": testCfg.Audience, "sub": "mallory", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}) + "." + parts[2]

	noExp := validClaims(now)
	delete(noExp, "exp")
	emptySub := validClaims(now)
	emptySub["sub"] = ""
	longSub := validClaims(now)
	longSub["sub"] = strings.Repeat("x", auth.MaxSubjectLen+1)
	futureIat := validClaims(now)
	futureIat["iat"] = now.Add(time.Hour).Unix()

	wrongIss, wrongAud := testCfg, testCfg
	wrongIss.Issuer = "https://evil.test"
	wrongAud.Audience = "other-api"
	otherSecret := testCfg
	otherSecret.HS256Secret = []byte("ffffffffffffffffffffffffffffffff")

	for name, tc := range map[string]struct {
		header http.Header
		code   string
		why    error // the reason Verify must give, so a test cannot pass by accident
	}{
		"NoHeader":          {nil, auth.CodeUnauthorized, nil},
		"WrongScheme":       {http.Header{"Authorization": {"Basic YWxpY2U6cHc="}}, auth.CodeUnauthorized, nil},
		"EmptyBearer":       {http.Header{"Authorization": {"Bearer "}}, auth.CodeUnauthorized, nil},
		"Garbage":           {bearer("not-a-jwt"), auth.CodeInvalidToken, jwt.ErrTokenMalformed},
		"AlgNone":           {bearer(sign(t, jwt.SigningMethodNone, validClaims(now), jwt.UnsafeAllowNoneSignatureType)), auth.CodeInvalidToken, jwt.ErrTokenSignatureInvalid},
		"RS256":             {bearer(sign(t, jwt.SigningMethodRS256, validClaims(now), rsaKey)), auth.CodeInvalidToken, jwt.ErrTokenSignatureInvalid},
		"HS512":             {bearer(sign(t, jwt.SigningMethodHS512, validClaims(now), testCfg.HS256Secret)), auth.CodeInvalidToken, jwt.ErrTokenSignatureInvalid},
		"Expired":           {bearer(mustIssue(t, testCfg, "alice", "", time.Hour, now.Add(-2*time.Hour))), auth.CodeInvalidToken, jwt.ErrTokenExpired},
		"NoExp":             {bearer(sign(t, jwt.SigningMethodHS256, noExp, testCfg.HS256Secret)), auth.CodeInvalidToken, jwt.ErrTokenRequiredClaimMissing},
		"IssuedInFuture":    {bearer(sign(t, jwt.SigningMethodHS256, futureIat, testCfg.HS256Secret)), auth.CodeInvalidToken, jwt.ErrTokenUsedBeforeIssued},
		"WrongIssuer":       {bearer(mustIssue(t, wrongIss, "alice", "", time.Hour, now)), auth.CodeInvalidToken, jwt.ErrTokenInvalidIssuer},
		"WrongAudience":     {bearer(mustIssue(t, wrongAud, "alice", "", time.Hour, now)), auth.CodeInvalidToken, jwt.ErrTokenInvalidAudience},
		"WrongSecret":       {bearer(mustIssue(t, otherSecret, "alice", "", time.Hour, now)), auth.CodeInvalidToken, jwt.ErrTokenSignatureInvalid},
		"TamperedSig":       {bearer(tampered), auth.CodeInvalidToken, jwt.ErrTokenSignatureInvalid},
		"TamperedClaims":    {bearer(tamperedClaims), auth.CodeInvalidToken, jwt.ErrTokenSignatureInvalid},
		"EmptySub":          {bearer(sign(t, jwt.SigningMethodHS256, emptySub, testCfg.HS256Secret)), auth.CodeInvalidToken, auth.ErrInvalidSubject},
		"SubTooLong":        {bearer(sign(t, jwt.SigningMethodHS256, longSub, testCfg.HS256Secret)), auth.CodeInvalidToken, auth.ErrInvalidSubject},
		"DevHeadersIgnored": {http.Header{"X-Customer-Id": {"alice"}}, auth.CodeUnauthorized, nil},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.why != nil {
				_, err := verifier.Verify(strings.TrimPrefix(tc.header.Get("Authorization"), "Bearer "))
				if !errors.Is(err, tc.why) {
					t.Errorf("Verify error = %v, want %v", err, tc.why)
				}
			}
			rec := do(e, tc.header)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401: %s", rec.Code, rec.Body)
			}
			var b problem.Body
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Code != tc.code {
				t.Errorf("body = %s (%v), want code %q", rec.Body, err, tc.code)
			}
			if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
			}
			if auth := tc.header.Get("Authorization"); len(auth) > 20 && strings.Contains(rec.Body.String(), auth[7:]) {
				t.Error("the response echoes the token")
			}
		})
	}
}

func jwtSegment(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestMiddleware_Disabled(t *testing.T) {
	e := newServer(t, auth.Config{Disabled: true})
	t.Run("OK", func(t *testing.T) {
		rec := do(e, http.Header{"X-Customer-Id": {"bob"}, "X-Role": {"admin"}})
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"sub":"bob"`) || !strings.Contains(rec.Body.String(), `"system":true`) {
			t.Errorf("status = %d: %s", rec.Code, rec.Body)
		}
	})
	t.Run("ErrNoCustomerID", func(t *testing.T) {
		if rec := do(e, nil); rec.Code != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", rec.Code)
		}
	})
}

func TestNewVerifier(t *testing.T) {
	for name, cfg := range map[string]auth.Config{
		"ShortSecret": {HS256Secret: []byte("short"), Issuer: "i", Audience: "a"},
		"NoIssuer":    {HS256Secret: testCfg.HS256Secret, Audience: "a"},
		"NoAudience":  {HS256Secret: testCfg.HS256Secret, Issuer: "i"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := auth.NewVerifier(cfg); err == nil {
				t.Error("NewVerifier accepted an unsafe config")
			}
		})
	}
	if _, err := auth.NewVerifier(auth.Config{Disabled: true}); err != nil {
		t.Errorf("Disabled config: %v", err)
	}
}

func TestIssueRoundTrip(t *testing.T) {
	v, err := auth.NewVerifier(testCfg)
	if err != nil {
		t.Fatal(err)
	}
	tok := mustIssue(t, testCfg, "alice", "admin", time.Minute, time.Now())
	p, err := v.Verify(tok)
	if err != nil || p != (auth.Principal{Subject: "alice", Role: "admin"}) {
		t.Errorf("Verify = %+v, %v", p, err)
	}
	// A token issued a little in the future (clock skew) is within leeway.
	if _, err := v.Verify(mustIssue(t, testCfg, "alice", "", time.Minute, time.Now().Add(10*time.Second))); err != nil {
		t.Errorf("skewed token: %v", err)
	}
	if _, err := auth.Issue(testCfg, "", "", time.Minute, time.Now()); err == nil {
		t.Error("Issue accepted an empty subject")
	}
}
