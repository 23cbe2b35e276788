package e2e_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"net/http"
	"strings"
	"testing"
	"time"
)

// jwtSeg is a JWT segment: base64url of v's JSON.
func jwtSeg(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// craft builds a JWT by hand: header {alg}, claims, and an HMAC signature
// (SHA-512 for HS512, else SHA-256 whatever alg says) — none for alg none.
func craft(alg string, claims map[string]any, secret []byte) string {
	in := jwtSeg(map[string]any{"alg": alg, "typ": "JWT"}) + "." + jwtSeg(claims)
	if alg == "none" {
		return in + "."
	}
	h := sha256.New
	if alg == "HS512" {
		h = sha512.New
	}
	m := hmac.New(func() hash.Hash { return h() }, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func badTokens(t *testing.T, s *system, aSub, aTok string, open *secCart, aCarts []string) {
	now := time.Now()
	// Claims that would make the caller an admin acting as the victim: any
	// of these tokens, if accepted, could write to the victim's cart.
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"iss": testAuth.Issuer, "aud": testAuth.Audience, "sub": aSub, "role": "admin",
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	secret := []byte(testSecret)
	valid := craft("HS256", claims(nil), secret)
	other := strings.Split(token(t, customer("mallory"), ""), ".")

	// Control: the hand-made token is accepted, so the refusals below are
	// the verifier's doing, not a crafting mistake.
	if r := do(t, http.MethodGet, s.queryURL+"/v1/carts/"+open.id, valid, nil); r.Status != http.StatusOK {
		t.Fatalf("a well-made token is refused: %d %s", r.Status, r.Body)
	}

	tokens := []struct {
		name, auth, code string
	}{
		{"no-header", "", "unauthorized"},
		{"basic-scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte(aSub+":pw")), "unauthorized"},
		{"empty-bearer", "Bearer ", "unauthorized"},
		{"garbage", "Bearer not-a-jwt", "invalid-token"},
		{"alg-none", "Bearer " + craft("none", claims(nil), nil), "invalid-token"},
		{"wrong-secret", "Bearer " + craft("HS256", claims(nil), []byte(strings.Repeat("k", 48))), "invalid-token"},
		{"hs512-right-secret", "Bearer " + craft("HS512", claims(nil), secret), "invalid-token"},
		{"tampered-payload", "Bearer " + other[0] + "." + jwtSeg(claims(nil)) + "." + other[2], "invalid-token"},
		{"expired", "Bearer " + craft("HS256", claims(func(c map[string]any) {
			c["iat"], c["nbf"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
		}), secret), "invalid-token"},
		{"no-exp", "Bearer " + craft("HS256", claims(func(c map[string]any) { delete(c, "exp") }), secret), "invalid-token"},
		{"wrong-iss", "Bearer " + craft("HS256", claims(func(c map[string]any) { c["iss"] = "https://evil.test" }), secret), "invalid-token"},
		{"wrong-aud", "Bearer " + craft("HS256", claims(func(c map[string]any) { c["aud"] = "other-api" }), secret), "invalid-token"},
		{"empty-sub", "Bearer " + craft("HS256", claims(func(c map[string]any) { c["sub"] = "" }), secret), "invalid-token"},
		{"nbf-future", "Bearer " + craft("HS256", claims(func(c map[string]any) { c["nbf"] = now.Add(5 * time.Minute).Unix() }), secret), "invalid-token"},
		{"key-confusion-rs256", "Bearer " + craft("RS256", claims(nil), secret), "invalid-token"},
	}
	type route struct {
		method, url string
		body        any
	}
	routes := []route{
		{http.MethodPost, s.commandURL + "/v1/carts", nil},
		{http.MethodPost, s.commandURL + "/v1/carts/" + open.id + "/add-item", item("123", 1)},
		{http.MethodPost, s.commandURL + "/v1/carts/" + open.id + "/remove-item", map[string]any{"productId": "123", "reason": "product-unavailable"}},
		{http.MethodPost, s.commandURL + "/v1/carts/" + open.id + "/change-quantity", item("123", 5)},
		{http.MethodPost, s.commandURL + "/v1/carts/" + open.id + "/checkout", nil},
		{http.MethodGet, s.queryURL + "/v1/carts/" + open.id, nil},
		{http.MethodGet, s.queryURL + "/v1/carts/" + open.id + "/history", nil},
		{http.MethodGet, s.queryURL + "/v1/customers/me/cart", nil},
	}
	before := s.ownerView(t, aTok, aCarts)
	n := 0
	for _, tk := range tokens {
		for _, rt := range routes {
			n++
			name := tk.name + "/" + rt.method + strings.NewReplacer(s.commandURL, "", s.queryURL, "", open.id, "{id}").Replace(rt.url)
			t.Run(name, func(t *testing.T) {
				h := hdr("", "Content-Type", "application/json")
				if tk.auth != "" {
					h.Set("Authorization", tk.auth)
				}
				r, err := call(rt.method, rt.url, h, jsonBody(rt.body))
				if err != nil {
					t.Fatal(err)
				}
				problemOf(t, r, http.StatusUnauthorized, tk.code)
				if wa := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer") {
					t.Errorf("WWW-Authenticate %q", wa)
				}
				if _, tok, _ := strings.Cut(tk.auth, " "); len(tok) > 16 && bytes.Contains(r.Body, []byte(tok)) {
					t.Error("the answer echoes the token")
				}
			})
		}
	}
	if after := s.ownerView(t, aTok, aCarts); after != before {
		t.Errorf("bad tokens changed something:\nbefore %s\nafter %s", before, after)
	}
	t.Logf("bad tokens: %d requests (%d tokens × %d routes), all must be 401", n, len(tokens), len(routes))
}
