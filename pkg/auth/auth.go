// Package auth turns a bearer JWT into the caller's identity. Every service
// verifies tokens the same way so that "a caller sees and changes only its
// own carts" means the same thing everywhere.
//
// Two modes, chosen by Config:
//   - production (JWKSURL set): asymmetric tokens (RS256/ES256 by default)
//     whose keys come from the identity provider's JWKS endpoint; HS* and
//     none are never accepted, so a token signed with a public key as an
//     HMAC secret (key confusion) is refused;
//   - development (only HS256Secret set): HS256 tokens signed with a shared
//     secret, which Issue also uses to mint tokens for tests and scripts.
//
// In both, issuer, audience and expiry are required and checked with a small
// leeway, and sub (the customer id) must be present.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// MinSecretLen is the shortest HS256 secret accepted (RFC 7518 §3.2: at
	// least the hash size).
	MinSecretLen = 32
	// MaxSubjectLen bounds the subject, which becomes a customer id in keys
	// and rows.
	MaxSubjectLen = 200
	// MaxTokenLen bounds what is parsed at all; real tokens are far smaller.
	MaxTokenLen = 8 << 10
	// DefaultLeeway absorbs clock skew between issuer and verifier.
	DefaultLeeway = 30 * time.Second
	// MaxLeeway is the largest leeway accepted: more would let expired
	// tokens live on noticeably.
	MaxLeeway = 5 * time.Minute
)

// Config is how tokens are checked and issued.
type Config struct {
	// HS256Secret selects development mode when JWKSURL is empty: HS256
	// tokens signed with this secret (at least MinSecretLen bytes).
	HS256Secret []byte
	// JWKSURL selects production mode: the identity provider's JWK Set
	// (https, or http on a loopback host). It excludes HS256Secret.
	JWKSURL string
	// Algorithms is the production allow-list (default DefaultAlgorithms).
	// Only asymmetric algorithms are accepted here; in development mode it
	// must be empty or exactly ["HS256"].
	Algorithms []string
	// JWKSRefresh is how often Verifier.Run re-reads the key set (0 means
	// DefaultJWKSRefresh). An unknown kid also triggers a re-read, at most
	// once per MissRefreshInterval.
	JWKSRefresh time.Duration
	// Issuer and Audience must match the token's iss and aud.
	Issuer   string
	Audience string
	// Leeway absorbs clock skew on exp/nbf/iat (0 means DefaultLeeway).
	Leeway time.Duration
	// Disabled trusts X-Customer-Id/X-Role headers instead of tokens. It is
	// an explicit development setting; never the default.
	Disabled bool
}

// DefaultAlgorithms is the production allow-list when Config.Algorithms is
// empty.
var DefaultAlgorithms = []string{"RS256", "ES256"}

// asymmetric is every algorithm Config.Algorithms may name in production.
var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Validate reports every setting a service must not start with. Disabled
// configs are always valid.
func (cfg Config) Validate() error {
	if cfg.Disabled {
		return nil
	}
	errs := []error{cfg.validateClaims()}
	if cfg.JWKSURL != "" {
		if len(cfg.HS256Secret) > 0 {
			errs = append(errs, errors.New("set either an HS256 secret or a JWKS URL, not both"))
		}
		errs = append(errs, checkJWKSURL(cfg.JWKSURL))
		for _, a := range cfg.Algorithms {
			if !slices.Contains(asymmetric, a) {
				errs = append(errs, fmt.Errorf("algorithm %q is not allowed with a JWKS URL (want some of %v)", a, asymmetric))
			}
		}
		if cfg.JWKSRefresh < 0 {
			errs = append(errs, fmt.Errorf("JWKS refresh %v must not be negative", cfg.JWKSRefresh))
		}
	} else {
		errs = append(errs, cfg.validateSecret())
		if len(cfg.Algorithms) > 0 && !slices.Equal(cfg.Algorithms, []string{"HS256"}) {
			errs = append(errs, fmt.Errorf("algorithms %v: only HS256 is possible with an HS256 secret", cfg.Algorithms))
		}
	}
	return errors.Join(errs...)
}

func (cfg Config) validateClaims() error {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("issuer is required"))
	}
	if cfg.Audience == "" {
		errs = append(errs, errors.New("audience is required"))
	}
	if cfg.Leeway < 0 || cfg.Leeway > MaxLeeway {
		errs = append(errs, fmt.Errorf("leeway %v must be between 0 and %v", cfg.Leeway, MaxLeeway))
	}
	return errors.Join(errs...)
}

func (cfg Config) validateSecret() error {
	if len(cfg.HS256Secret) < MinSecretLen {
		return fmt.Errorf("HS256 secret must be at least %d bytes, got %d", MinSecretLen, len(cfg.HS256Secret))
	}
	return nil
}

// Principal is the authenticated caller.
type Principal struct {
	Subject string // the customer id
	Role    string // "" for customers
}

// IsSystem reports whether the caller acts for the shop rather than a
// customer (e.g. may remove an item as product-unavailable).
func (p Principal) IsSystem() bool { return p.Role == "admin" || p.Role == "system" }

type claims struct {
	jwt.RegisteredClaims
	Role string `json:"role,omitempty"`
}

// Option tunes a Verifier beyond its Config.
type Option func(*options)

type options struct {
	logger *slog.Logger
	client *http.Client
}

// WithLogger logs key-set refresh failures (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithHTTPClient fetches the JWK Set with c (default: a client with a
// JWKSTimeout timeout). Redirects to insecure URLs are refused either way.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// Verifier checks bearer tokens. It is safe for concurrent use. In
// production mode it keeps the identity provider's keys fresh while Run
// runs; it starts no goroutine of its own. Tokens that passed are
// remembered (bounded by CacheSize and CacheMaxAge, never past their exp):
// a client presents the same token request after request.
type Verifier struct {
	cfg    Config
	parser *jwt.Parser
	algs   []string
	keys   *keySet // production mode only
	cache  *tokenCache
	now    func() time.Time
}

// NewVerifier validates cfg and returns a Verifier. It does no I/O: in
// production mode keys are fetched by Refresh, by Run, or on the first
// token that names an unknown key.
func NewVerifier(cfg Config, opts ...Option) (*Verifier, error) {
	if cfg.Disabled {
		return &Verifier{cfg: cfg}, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("auth: config: %w", err)
	}
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	v := &Verifier{
		cfg: cfg, algs: []string{jwt.SigningMethodHS256.Alg()},
		cache: newTokenCache(CacheSize, CacheMaxAge), now: time.Now,
	}
	if cfg.JWKSURL != "" {
		v.algs = slices.Clone(cfg.Algorithms)
		if len(v.algs) == 0 {
			v.algs = slices.Clone(DefaultAlgorithms)
		}
		if cfg.JWKSRefresh == 0 {
			cfg.JWKSRefresh = DefaultJWKSRefresh
		}
		k, err := newKeySet(cfg.JWKSURL, cfg.JWKSRefresh, o.client, o.logger)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		v.keys = k
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(v.algs),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v, nil
}

// Disabled reports whether tokens are not checked (development only).
func (v *Verifier) Disabled() bool { return v.cfg.Disabled }

// ErrDisabled is returned by Verify when the verifier checks no tokens.
var ErrDisabled = errors.New("auth: token verification is disabled")

// ErrInvalidSubject means the token's sub claim is missing, too long, or
// holds control characters or invalid UTF-8.
var ErrInvalidSubject = errors.New("token has no valid subject")

// errAlgorithm backs up the parser's allow-list inside the key function.
var errAlgorithm = errors.New("signing algorithm not allowed")

// Verify is VerifyContext without a request context.
func (v *Verifier) Verify(token string) (Principal, error) {
	return v.VerifyContext(context.Background(), token)
}

// VerifyContext checks the token's signature, algorithm, issuer, audience
// and times, and returns who it identifies. ctx bounds a key-set refresh
// that an unknown kid may trigger. Errors wrap jwt's sentinel errors
// (jwt.ErrTokenExpired, ...) and ErrUnknownKey, so callers can tell why
// without reading text.
func (v *Verifier) VerifyContext(ctx context.Context, token string) (Principal, error) {
	p, err := v.verify(ctx, token)
	if err != nil {
		return Principal{}, err
	}
	return *p, nil
}

// verify is VerifyContext answering from the cache when it can; the
// principal is shared with the cache and must not be changed.
func (v *Verifier) verify(ctx context.Context, token string) (*Principal, error) {
	if v.cfg.Disabled {
		return nil, ErrDisabled
	}
	if len(token) > MaxTokenLen {
		return nil, fmt.Errorf("auth: verify token: %w: longer than %d bytes", jwt.ErrTokenMalformed, MaxTokenLen)
	}
	// The key-set generation is read before verifying: should the set be
	// re-read meanwhile, the entry is already stale.
	now, keys := v.now(), v.keyGeneration()
	if p, ok := v.cache.get(token, now, keys); ok {
		return p, nil
	}
	var c claims
	if _, err := v.parser.ParseWithClaims(token, &c, v.keyfunc(ctx)); err != nil {
		return nil, fmt.Errorf("auth: verify token: %w", err)
	}
	if !validSubject(c.Subject) {
		return nil, fmt.Errorf("auth: verify token: %w", ErrInvalidSubject)
	}
	// exp is required by the parser, so ExpiresAt is set.
	return v.cache.put(token, Principal{Subject: c.Subject, Role: c.Role}, c.ExpiresAt.Time, now, keys), nil
}

// keyGeneration counts the key set's loads (0 in development mode): a
// cached verification holds only while it is unchanged, so that a key the
// provider withdrew stops working on the next re-read.
func (v *Verifier) keyGeneration() uint64 {
	if v.keys == nil {
		return 0
	}
	return v.keys.gen()
}

func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		// The parser already enforces the allow-list; checking again here
		// keeps a key from ever reaching a method it was not meant for.
		if !slices.Contains(v.algs, t.Method.Alg()) {
			return nil, fmt.Errorf("%w: %s", errAlgorithm, t.Method.Alg())
		}
		if v.keys == nil {
			return v.cfg.HS256Secret, nil
		}
		return v.keys.keyfunc(ctx)(t)
	}
}

// Run keeps the production key set fresh until ctx ends: it fetches at
// once (unless Refresh just did), then every Config.JWKSRefresh, retrying
// failures sooner. Old keys stay in use while the provider is unreachable.
// In development or disabled mode it just waits for ctx. It returns nil
// when ctx ends.
func (v *Verifier) Run(ctx context.Context) error {
	if v.keys == nil {
		<-ctx.Done()
		return nil
	}
	v.keys.run(ctx)
	return nil
}

// Refresh fetches the production key set now (a no-op in other modes), so
// a service can load keys before it serves; a failure is worth a warning,
// not a refusal to start, since Run and unknown kids retry.
func (v *Verifier) Refresh(ctx context.Context) error {
	if v.keys == nil {
		return nil
	}
	if err := v.keys.refresh(ctx); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return nil
}

// Ready reports whether tokens can be verified: in production mode, whether
// a key set has been loaded. It fits httpserver.Health's checks.
func (v *Verifier) Ready(context.Context) error {
	if v.keys == nil {
		return nil
	}
	return v.keys.ready()
}

// Issue signs an HS256 token for subject, valid from now for ttl. Tests and
// the development token script use it; production tokens come from the
// shop's identity provider with the same claims.
func Issue(cfg Config, subject, role string, ttl time.Duration, now time.Time) (string, error) {
	if err := errors.Join(cfg.validateClaims(), cfg.validateSecret()); err != nil {
		return "", fmt.Errorf("auth: issue: config: %w", err)
	}
	if !validSubject(subject) {
		return "", fmt.Errorf("auth: issue: subject must be 1..%d printable characters", MaxSubjectLen)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("auth: issue: ttl must be positive, got %v", ttl)
	}
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    cfg.Issuer,
			Audience:  jwt.ClaimStrings{cfg.Audience},
			Subject:   subject,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Role: role,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(cfg.HS256Secret)
	if err != nil {
		return "", fmt.Errorf("auth: issue: sign: %w", err)
	}
	return s, nil
}

// Start builds the Verifier a service uses: it loads the production key set
// before the service takes requests (bounded by timeout; a failure is logged
// and left to Run to retry, so the service still starts) and says loudly
// when authentication is disabled.
func Start(ctx context.Context, cfg Config, timeout time.Duration, logger *slog.Logger) (*Verifier, error) {
	v, err := NewVerifier(cfg, WithLogger(logger))
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := v.Refresh(rctx); err != nil {
		logger.WarnContext(ctx, "signing keys not loaded yet; retrying in the background", "error", err)
	}
	if cfg.Disabled {
		logger.WarnContext(ctx, "authentication is DISABLED: callers are trusted by header (development only)")
	}
	return v, nil
}

// validSubject reports whether a subject can serve as a customer id: it is
// stored, used in key names and logged, so it is 1..MaxSubjectLen characters
// of valid UTF-8 without control characters.
func validSubject(s string) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxSubjectLen {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}
