package auth_test

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/problem"
)

// fuzzVerifiers are the three ways a service checks tokens: development
// (HS256 secret), production (a JWKS endpoint, keys loaded) and disabled.
type fuzzVerifiers struct {
	dev, jwks, disabled *auth.Verifier
	idp                 *idp
}

func mustFuzzVerifiers(f *testing.F) fuzzVerifiers {
	f.Helper()
	p := MustIDP(f)
	v := fuzzVerifiers{
		dev: mustVerifier(f, testCfg), jwks: mustVerifier(f, p.Config()),
		disabled: mustVerifier(f, auth.Config{Disabled: true}), idp: p,
	}
	if err := v.jwks.Refresh(f.Context()); err != nil {
		f.Fatal(err)
	}
	return v
}

// fuzzTokens are realistic tokens, good and bad, for both modes.
func fuzzTokens(f *testing.F, p *idp) []string {
	f.Helper()
	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := validClaims(now)
		c["role"] = "system"
		if edit != nil {
			edit(c)
		}
		return c
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&p.RSA.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		f.Fatal(err)
	}
	good := mustIssueTB(f, testCfg, "alice", "", time.Hour, now)
	return []string{
		good,
		mustIssueTB(f, testCfg, "catalog-service", "system", time.Hour, now),
		mustIssueTB(f, testCfg, strings.Repeat("ü", auth.MaxSubjectLen), "", time.Hour, now),
		mustIssueTB(f, testCfg, "alice", "", time.Hour, now.Add(-2*time.Hour)), // expired
		signKid(f, jwt.SigningMethodHS256, "", claims(func(c jwt.MapClaims) { c["sub"] = "" }), testCfg.HS256Secret),
		signKid(f, jwt.SigningMethodHS256, "", claims(func(c jwt.MapClaims) { c["aud"] = []any{"x", 1, nil} }), testCfg.HS256Secret),
		signKid(f, jwt.SigningMethodHS256, "", claims(func(c jwt.MapClaims) { c["exp"] = 1e300 }), testCfg.HS256Secret),
		signKid(f, jwt.SigningMethodHS256, "", claims(func(c jwt.MapClaims) { c["nbf"] = "tomorrow" }), testCfg.HS256Secret),
		signKid(f, jwt.SigningMethodRS256, "rsa-1", claims(nil), p.RSA),
		signKid(f, jwt.SigningMethodES256, "ec-1", claims(nil), p.EC),
		signKid(f, jwt.SigningMethodES256, "", claims(nil), p.EC),             // no kid: every key is tried
		signKid(f, jwt.SigningMethodRS256, "unknown-kid", claims(nil), p.RSA), // a re-read, rate limited
		signKid(f, jwt.SigningMethodRS256, "ec-1", claims(nil), p.RSA),        // kid of another key type
		signKid(f, jwt.SigningMethodHS256, "rsa-1", claims(nil), pubPEM),      // key confusion
		signKid(f, jwt.SigningMethodPS256, "rsa-1", claims(nil), p.RSA),       // algorithm not allowed
		noneTok,
		good + ".", good[:len(good)-1], strings.ReplaceAll(good, ".", ".."), "a.b.c", "..", "", " ",
		strings.Repeat("A", auth.MaxTokenLen+1),
	}
}

func mustIssueTB(tb testing.TB, cfg auth.Config, sub, role string, ttl time.Duration, now time.Time) string {
	tb.Helper()
	tok, err := auth.Issue(cfg, sub, role, ttl, now)
	if err != nil {
		tb.Fatalf("Issue: %v", err)
	}
	return tok
}

// FuzzVerify feeds the token verification of both modes any token: Verify
// returns an error or a principal with a valid subject, never panics.
// Seeds: the tokens of fuzzTokens and the edge cases in
// testdata/fuzz/FuzzVerify.
func FuzzVerify(f *testing.F) {
	vs := mustFuzzVerifiers(f)
	for _, tok := range fuzzTokens(f, vs.idp) {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for name, v := range map[string]*auth.Verifier{"dev": vs.dev, "jwks": vs.jwks, "disabled": vs.disabled} {
			p, err := v.Verify(token)
			if err != nil {
				if p != (auth.Principal{}) {
					t.Fatalf("%s: Verify() = %+v and error %v", name, p, err)
				}
				continue
			}
			if p.Subject == "" || utf8.RuneCountInString(p.Subject) > auth.MaxSubjectLen {
				t.Fatalf("%s: Verify() accepted subject %q", name, p.Subject)
			}
		}
	})
}

// FuzzMiddleware feeds the authentication middleware any Authorization
// header (and, with verification disabled, any X-Customer-Id and X-Role):
// the answer is 200 or a 401 problem, never a 5xx or a panic.
func FuzzMiddleware(f *testing.F) {
	vs := mustFuzzVerifiers(f)
	for _, tok := range fuzzTokens(f, vs.idp) {
		f.Add("Bearer "+tok, "alice", "")
	}
	for _, h := range []string{"", "Bearer", "Bearer ", "bearer  x ", "Basic YWxpY2U6cHc=", "Bearer\tx", "BEARER a.b.c", "Bearer a b c"} {
		f.Add(h, "", "admin")
	}
	f.Add("", "  ", "")
	f.Add("", strings.Repeat("x", auth.MaxSubjectLen+1), "system")
	f.Add("", "\x00\xff", "\n")

	servers := map[string]*echo.Echo{"dev": echoFor(vs.dev), "jwks": echoFor(vs.jwks), "disabled": echoFor(vs.disabled)}
	f.Fuzz(func(t *testing.T, authorization, customerID, role string) {
		for name, e := range servers {
			req := httptest.NewRequest(http.MethodGet, "/v1/me", nil)
			if authorization != "" {
				req.Header.Set(echo.HeaderAuthorization, authorization)
			}
			req.Header.Set(auth.HeaderCustomerID, customerID)
			req.Header.Set(auth.HeaderRole, role)
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			switch rec.Code {
			case http.StatusOK:
			case http.StatusUnauthorized:
				var b problem.Body
				if ct := rec.Header().Get(echo.HeaderContentType); ct != problem.ContentType {
					t.Fatalf("%s: 401 with content type %q: %s", name, ct, rec.Body)
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Status != 401 || b.Code == "" {
					t.Fatalf("%s: 401 body %s (%v)", name, rec.Body, err)
				}
				if !strings.HasPrefix(rec.Header().Get(echo.HeaderWWWAuthenticate), "Bearer") {
					t.Fatalf("%s: 401 without WWW-Authenticate", name)
				}
			default:
				t.Fatalf("%s: status %d for Authorization %q: %s", name, rec.Code, authorization, rec.Body)
			}
		}
	})
}
