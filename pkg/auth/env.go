package auth

import (
	"strings"

	"github.com/cart-cqrs/cart/pkg/envconf"
)

// ConfigFromEnv reads the auth settings every service shares, so they mean
// the same everywhere:
//
//	AUTH_HS256_SECRET  development: HS256 shared secret (≥ 32 bytes)
//	AUTH_JWKS_URL      production: the identity provider's JWK Set URL
//	AUTH_ALGORITHMS    production allow-list, comma-separated (RS256,ES256)
//	AUTH_JWKS_REFRESH  how often the key set is re-read (15m)
//	AUTH_ISSUER        required iss
//	AUTH_AUDIENCE      required aud
//	AUTH_LEEWAY        clock-skew leeway (30s)
//	AUTH_DISABLED      trust X-Customer-Id instead of tokens (false; development only)
//
// Malformed values are recorded in r; call Config.Validate (or NewVerifier)
// for settings that parse but are unsafe.
func ConfigFromEnv(r *envconf.Reader) Config {
	return Config{
		HS256Secret: r.Bytes("AUTH_HS256_SECRET"),
		JWKSURL:     r.String("AUTH_JWKS_URL", ""),
		Algorithms:  splitList(r.String("AUTH_ALGORITHMS", "")),
		JWKSRefresh: r.Duration("AUTH_JWKS_REFRESH", DefaultJWKSRefresh),
		Issuer:      r.String("AUTH_ISSUER", ""),
		Audience:    r.String("AUTH_AUDIENCE", ""),
		Leeway:      r.Duration("AUTH_LEEWAY", DefaultLeeway),
		Disabled:    r.Bool("AUTH_DISABLED", false),
	}
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
