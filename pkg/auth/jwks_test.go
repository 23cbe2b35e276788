package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/polltest"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/problem"
)

// idp is a local identity provider: a JWKS endpoint whose key set a test
// can change, and the private keys to sign with.
type idp struct {
	URL     string
	RSA     *rsa.PrivateKey // kid "rsa-1", RS256
	EC      *ecdsa.PrivateKey
	fetches atomic.Int64

	mu     sync.Mutex
	keys   []jwkset.JWKMarshal
	status int
}

func MustIDP(tb testing.TB) *idp {
	tb.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	p := &idp{RSA: rsaKey, EC: ecKey, status: http.StatusOK}
	p.SetKeys(tb, jwkOf(tb, &rsaKey.PublicKey, "rsa-1", jwkset.AlgRS256), jwkOf(tb, &ecKey.PublicKey, "ec-1", jwkset.AlgES256))
	srv := httptest.NewServer(p)
	tb.Cleanup(srv.Close)
	p.URL = srv.URL + "/.well-known/jwks.json"
	return p
}

func (p *idp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.fetches.Add(1)
	p.mu.Lock()
	status, body := p.status, jwkset.JWKSMarshal{Keys: p.keys}
	p.mu.Unlock()
	if status != http.StatusOK {
		http.Error(w, "down", status)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	json.NewEncoder(w).Encode(body)
}

func (p *idp) SetKeys(tb testing.TB, keys ...jwkset.JWKMarshal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = keys
}

func (p *idp) SetStatus(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = status
}

func jwkOf(tb testing.TB, pub crypto.PublicKey, kid string, alg jwkset.ALG) jwkset.JWKMarshal {
	tb.Helper()
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: jwkset.UseSig}})
	if err != nil {
		tb.Fatalf("jwk %s: %v", kid, err)
	}
	return j.Marshal()
}

func (p *idp) Config() auth.Config {
	return auth.Config{JWKSURL: p.URL, Issuer: testCfg.Issuer, Audience: testCfg.Audience}
}

func mustVerifier(tb testing.TB, cfg auth.Config, opts ...auth.Option) *auth.Verifier {
	tb.Helper()
	v, err := auth.NewVerifier(cfg, opts...)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// signKid signs claims with key under method, naming kid ("" for none).
func signKid(tb testing.TB, m jwt.SigningMethod, kid string, claims jwt.MapClaims, key any) string {
	tb.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

func echoFor(v *auth.Verifier) *echo.Echo {
	e := echo.New()
	e.HTTPErrorHandler = problem.HTTPErrorHandler(slog.New(slog.DiscardHandler))
	e.GET("/v1/me", func(c echo.Context) error {
		p, _ := auth.FromContext(c)
		return c.JSON(http.StatusOK, map[string]any{"sub": p.Subject})
	}, auth.Middleware(v))
	return e
}

func TestJWKS(t *testing.T) {
	p := MustIDP(t)
	v := mustVerifier(t, p.Config())
	if err := v.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	e := echoFor(v)
	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := validClaims(now)
		if edit != nil {
			edit(c)
		}
		return c
	}

	for name, tok := range map[string]string{
		"RS256":               signKid(t, jwt.SigningMethodRS256, "rsa-1", claims(nil), p.RSA),
		"ES256":               signKid(t, jwt.SigningMethodES256, "ec-1", claims(nil), p.EC),
		"NoKidTriesEveryKey":  signKid(t, jwt.SigningMethodES256, "", claims(nil), p.EC),
		"ExpiredWithinLeeway": signKid(t, jwt.SigningMethodRS256, "rsa-1", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() }), p.RSA),
	} {
		t.Run("OK"+name, func(t *testing.T) {
			rec := do(e, bearer(tok))
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"sub":"alice"`) {
				t.Fatalf("status = %d: %s", rec.Code, rec.Body)
			}
		})
	}

	rogue, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&p.RSA.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pkcs1 := x509.MarshalPKCS1PublicKey(&p.RSA.PublicKey)
	valid := signKid(t, jwt.SigningMethodRS256, "rsa-1", claims(nil), p.RSA)
	parts := strings.Split(valid, ".")
	sig := []byte(parts[2])
	if mid := len(sig) / 2; sig[mid] == 'A' {
		sig[mid] = 'B'
	} else {
		sig[mid] = 'A'
	}
	header := strings.Split(signKid(t, jwt.SigningMethodRS256, "rsa-1", claims(nil), p.RSA), ".")[0]

	for name, tc := range map[string]struct {
		token string
		why   error
	}{
		"AlgNone":             {signKid(t, jwt.SigningMethodNone, "rsa-1", claims(nil), jwt.UnsafeAllowNoneSignatureType), jwt.ErrTokenSignatureInvalid},
		"KeyConfusionPEM":     {signKid(t, jwt.SigningMethodHS256, "rsa-1", claims(nil), pemBytes), jwt.ErrTokenSignatureInvalid},
		"KeyConfusionDER":     {signKid(t, jwt.SigningMethodHS256, "rsa-1", claims(nil), der), jwt.ErrTokenSignatureInvalid},
		"KeyConfusionPKCS1":   {signKid(t, jwt.SigningMethodHS256, "rsa-1", claims(nil), pkcs1), jwt.ErrTokenSignatureInvalid},
		"KeyConfusionNoKid":   {signKid(t, jwt.SigningMethodHS256, "", claims(nil), pemBytes), jwt.ErrTokenSignatureInvalid},
		"AlgNotAllowedRS512":  {signKid(t, jwt.SigningMethodRS512, "rsa-1", claims(nil), p.RSA), jwt.ErrTokenSignatureInvalid},
		"Expired":             {signKid(t, jwt.SigningMethodRS256, "rsa-1", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() }), p.RSA), jwt.ErrTokenExpired},
		"NoExp":               {signKid(t, jwt.SigningMethodRS256, "rsa-1", claims(func(c jwt.MapClaims) { delete(c, "exp") }), p.RSA), jwt.ErrTokenRequiredClaimMissing},
		"NotYetValid":         {signKid(t, jwt.SigningMethodRS256, "rsa-1", claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }), p.RSA), jwt.ErrTokenNotValidYet},
		"WrongIssuer":         {signKid(t, jwt.SigningMethodRS256, "rsa-1", claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }), p.RSA), jwt.ErrTokenInvalidIssuer},
		"NoIssuer":            {signKid(t, jwt.SigningMethodRS256, "rsa-1", claims(func(c jwt.MapClaims) { delete(c, "iss") }), p.RSA), jwt.ErrTokenRequiredClaimMissing},
		"WrongAudience":       {signKid(t, jwt.SigningMethodES256, "ec-1", claims(func(c jwt.MapClaims) { c["aud"] = "other-api" }), p.EC), jwt.ErrTokenInvalidAudience},
		"NoAudience":          {signKid(t, jwt.SigningMethodES256, "ec-1", claims(func(c jwt.MapClaims) { delete(c, "aud") }), p.EC), jwt.ErrTokenRequiredClaimMissing},
		"TamperedSignature":   {parts[0] + "." + parts[1] + "." + string(sig), jwt.ErrTokenSignatureInvalid},
		"TamperedClaims":      {header + "." + jwtSegment(t, claims(func(c jwt.MapClaims) { c["sub"] = "mallory" })) + "." + parts[2], jwt.ErrTokenSignatureInvalid},
		"UnknownKid":          {signKid(t, jwt.SigningMethodRS256, "rogue-1", claims(nil), rogue), auth.ErrUnknownKey},
		"KnownKidOtherKey":    {signKid(t, jwt.SigningMethodRS256, "rsa-1", claims(nil), rogue), jwt.ErrTokenSignatureInvalid},
		"NoKidOtherKey":       {signKid(t, jwt.SigningMethodRS256, "", claims(nil), rogue), jwt.ErrTokenSignatureInvalid},
		"KidOfOtherKeyType":   {signKid(t, jwt.SigningMethodRS256, "ec-1", claims(nil), p.RSA), jwt.ErrTokenUnverifiable},
		"EmptySub":            {signKid(t, jwt.SigningMethodRS256, "rsa-1", claims(func(c jwt.MapClaims) { c["sub"] = "" }), p.RSA), auth.ErrInvalidSubject},
		"NoSub":               {signKid(t, jwt.SigningMethodRS256, "rsa-1", claims(func(c jwt.MapClaims) { delete(c, "sub") }), p.RSA), auth.ErrInvalidSubject},
		"TooLong":             {signKid(t, jwt.SigningMethodRS256, "rsa-1", claims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", auth.MaxTokenLen) }), p.RSA), jwt.ErrTokenMalformed},
		"HS256WithTestSecret": {signKid(t, jwt.SigningMethodHS256, "", claims(nil), testCfg.HS256Secret), jwt.ErrTokenSignatureInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(tc.token); !errors.Is(err, tc.why) {
				t.Errorf("Verify error = %v, want %v", err, tc.why)
			}
			// Every time: the answer must not depend on what came before.
			for range 2 {
				rec := do(e, bearer(tc.token))
				if rec.Code != http.StatusUnauthorized {
					t.Fatalf("status = %d, want 401: %s", rec.Code, rec.Body)
				}
				var b problem.Body
				if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Code != auth.CodeInvalidToken {
					t.Errorf("body = %s (%v), want code %q", rec.Body, err, auth.CodeInvalidToken)
				}
			}
		})
	}
}

func TestJWKS_Algorithms(t *testing.T) {
	p := MustIDP(t)
	cfg := p.Config()
	cfg.Algorithms = []string{"ES256"}
	v := mustVerifier(t, cfg)
	now := time.Now()
	if _, err := v.Verify(signKid(t, jwt.SigningMethodES256, "ec-1", validClaims(now), p.EC)); err != nil {
		t.Errorf("ES256: %v", err)
	}
	if _, err := v.Verify(signKid(t, jwt.SigningMethodRS256, "rsa-1", validClaims(now), p.RSA)); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Errorf("RS256 outside the allow-list: err = %v", err)
	}
}

// A key must be used with the algorithm the provider published it for.
func TestJWKS_KeyAlgMismatch(t *testing.T) {
	p := MustIDP(t)
	p.SetKeys(t, jwkOf(t, &p.RSA.PublicKey, "rsa-1", jwkset.AlgRS256))
	cfg := p.Config()
	cfg.Algorithms = []string{"RS256", "PS256"}
	v := mustVerifier(t, cfg)
	if _, err := v.Verify(signKid(t, jwt.SigningMethodPS256, "rsa-1", validClaims(time.Now()), p.RSA)); !errors.Is(err, jwt.ErrTokenUnverifiable) {
		t.Errorf("PS256 with an RS256 key: err = %v", err)
	}
}

func TestJWKS_Rotation(t *testing.T) {
	p := MustIDP(t)
	v := mustVerifier(t, p.Config())
	// No Refresh and no Run: the first token loads the keys.
	now := time.Now()
	if _, err := v.Verify(signKid(t, jwt.SigningMethodRS256, "rsa-1", validClaims(now), p.RSA)); err != nil {
		t.Fatalf("first token: %v", err)
	}
	next, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p.SetKeys(t, jwkOf(t, &p.RSA.PublicKey, "rsa-1", jwkset.AlgRS256), jwkOf(t, &next.PublicKey, "rsa-2", jwkset.AlgRS256))
	if _, err := v.Verify(signKid(t, jwt.SigningMethodRS256, "rsa-2", validClaims(now), next)); err != nil {
		t.Fatalf("token with the rotated-in key: %v", err)
	}
	// Forged kids cannot make us hammer the provider: within
	// MissRefreshInterval a further miss does not fetch again.
	before := p.fetches.Load()
	for i := range 5 {
		tok := signKid(t, jwt.SigningMethodRS256, "forged-"+string(rune('a'+i)), validClaims(now), next)
		if _, err := v.Verify(tok); !errors.Is(err, auth.ErrUnknownKey) {
			t.Fatalf("forged kid: err = %v", err)
		}
	}
	if got := p.fetches.Load() - before; got > 0 {
		t.Errorf("%d fetches for forged kids, want 0 right after a refresh", got)
	}
}

func TestJWKS_RunRefreshesAndRevokes(t *testing.T) {
	p := MustIDP(t)
	cfg := p.Config()
	cfg.JWKSRefresh = 20 * time.Millisecond
	v := mustVerifier(t, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- v.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	}()
	poll(t, "keys loaded", func() bool { return v.Ready(ctx) == nil })

	tok := signKid(t, jwt.SigningMethodES256, "ec-1", validClaims(time.Now()), p.EC)
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	p.SetKeys(t, jwkOf(t, &p.RSA.PublicKey, "rsa-1", jwkset.AlgRS256)) // ec-1 revoked
	poll(t, "revoked key refused", func() bool {
		_, err := v.Verify(tok)
		return errors.Is(err, auth.ErrUnknownKey)
	})

	// The provider going down keeps the keys we have.
	p.SetStatus(http.StatusInternalServerError)
	n := p.fetches.Load()
	poll(t, "a failed refresh", func() bool { return p.fetches.Load() > n+1 })
	if err := v.Ready(ctx); err != nil {
		t.Errorf("Ready after a failed refresh = %v, want nil (keys kept)", err)
	}
	if _, err := v.Verify(signKid(t, jwt.SigningMethodRS256, "rsa-1", validClaims(time.Now()), p.RSA)); err != nil {
		t.Errorf("kept key: %v", err)
	}
}

func TestJWKS_ReadyAndRefresh(t *testing.T) {
	p := MustIDP(t)
	p.SetStatus(http.StatusServiceUnavailable)
	v := mustVerifier(t, p.Config())
	if err := v.Ready(t.Context()); err == nil {
		t.Error("Ready before any key was loaded = nil")
	}
	if err := v.Refresh(t.Context()); err == nil {
		t.Error("Refresh from a failing provider = nil")
	}
	if err := v.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("Ready = %v, want the last fetch error", err)
	}
	p.SetStatus(http.StatusOK)
	if err := v.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if err := v.Ready(t.Context()); err != nil {
		t.Errorf("Ready = %v", err)
	}
}

// A symmetric key in the set is a secret anyone can read: never used.
func TestJWKS_SymmetricKeysIgnored(t *testing.T) {
	p := MustIDP(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	oct, err := jwkset.NewJWKFromKey(secret, jwkset.JWKOptions{
		Marshal:  jwkset.JWKMarshalOptions{Private: true},
		Metadata: jwkset.JWKMetadataOptions{KID: "hs", ALG: jwkset.AlgHS256},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.SetKeys(t, oct.Marshal())
	v := mustVerifier(t, p.Config())
	if err := v.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "no usable signing keys") {
		t.Errorf("Refresh of a set with only a symmetric key = %v", err)
	}
	if _, err := v.Verify(signKid(t, jwt.SigningMethodHS256, "hs", validClaims(time.Now()), secret)); err == nil {
		t.Error("HS256 token accepted in JWKS mode")
	}
}

func TestJWKS_TLS(t *testing.T) {
	p := MustIDP(t)
	srv := httptest.NewTLSServer(p)
	defer srv.Close()
	cfg := p.Config()
	cfg.JWKSURL = srv.URL
	v := mustVerifier(t, cfg, auth.WithHTTPClient(srv.Client()), auth.WithLogger(slog.New(slog.DiscardHandler)))
	if _, err := v.Verify(signKid(t, jwt.SigningMethodRS256, "rsa-1", validClaims(time.Now()), p.RSA)); err != nil {
		t.Errorf("over TLS: %v", err)
	}
}

func TestNewVerifier_JWKSConfig(t *testing.T) {
	ok := auth.Config{JWKSURL: "https://idp.example/jwks", Issuer: "i", Audience: "a"}
	if _, err := auth.NewVerifier(ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, edit := range map[string]func(*auth.Config){
		"AlsoSecret":      func(c *auth.Config) { c.HS256Secret = testCfg.HS256Secret },
		"HS256Allowed":    func(c *auth.Config) { c.Algorithms = []string{"RS256", "HS256"} },
		"NoneAllowed":     func(c *auth.Config) { c.Algorithms = []string{"none"} },
		"PlainHTTP":       func(c *auth.Config) { c.JWKSURL = "http://idp.example/jwks" },
		"NoHost":          func(c *auth.Config) { c.JWKSURL = "https:///jwks" },
		"NotAURL":         func(c *auth.Config) { c.JWKSURL = "://" },
		"NoIssuer":        func(c *auth.Config) { c.Issuer = "" },
		"NoAudience":      func(c *auth.Config) { c.Audience = "" },
		"HugeLeeway":      func(c *auth.Config) { c.Leeway = time.Hour },
		"NegativeRefresh": func(c *auth.Config) { c.JWKSRefresh = -time.Second },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := ok
			edit(&cfg)
			if _, err := auth.NewVerifier(cfg); err == nil {
				t.Error("NewVerifier accepted an unsafe config")
			}
		})
	}
	hs := testCfg
	hs.Algorithms = []string{"RS256"}
	if _, err := auth.NewVerifier(hs); err == nil {
		t.Error("an HS256 secret with an RS256 allow-list was accepted")
	}
	local := ok
	local.JWKSURL = "http://127.0.0.1:9/jwks"
	if _, err := auth.NewVerifier(local); err != nil {
		t.Errorf("http on loopback: %v", err)
	}
}

func TestRun_DevelopmentModeWaits(t *testing.T) {
	v := mustVerifier(t, testCfg)
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- v.Run(ctx) }()
	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run = %v", err)
	}
	if err := v.Ready(ctx); err != nil {
		t.Errorf("Ready = %v", err)
	}
	if err := v.Refresh(ctx); err != nil {
		t.Errorf("Refresh = %v", err)
	}
}

// poll waits for cond with a deadline instead of sleeping a fixed time.
func poll(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	polltest.True(tb, 10*time.Second, what, cond)
}
