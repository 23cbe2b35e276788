// Package auth turns a bearer JWT into the caller's identity. Every service
// verifies tokens the same way (HS256, issuer, audience, expiry) so that "a
// caller sees and changes only its own carts" means the same thing everywhere.
package auth

import (
	"errors"
	"fmt"
	"time"
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
	// DefaultLeeway absorbs clock skew between issuer and verifier.
	DefaultLeeway = 30 * time.Second
)

// Config is how tokens are checked and issued.
type Config struct {
	HS256Secret []byte
	Issuer      string
	Audience    string
	Leeway      time.Duration // 0 means DefaultLeeway
	// Disabled trusts X-Customer-Id/X-Role headers instead of tokens. It is
	// an explicit development setting; never the default.
	Disabled bool
}

func (cfg Config) validate() error {
	var errs []error
	if len(cfg.HS256Secret) < MinSecretLen {
		errs = append(errs, fmt.Errorf("HS256 secret must be at least %d bytes, got %d", MinSecretLen, len(cfg.HS256Secret)))
	}
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("issuer is required"))
	}
	if cfg.Audience == "" {
		errs = append(errs, errors.New("audience is required"))
	}
	return errors.Join(errs...)
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

// Verifier checks bearer tokens. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	parser *jwt.Parser
}

// NewVerifier validates cfg and returns a Verifier.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Disabled {
		return &Verifier{cfg: cfg}, nil
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("auth: config: %w", err)
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	return &Verifier{
		cfg: cfg,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.Leeway),
		),
	}, nil
}

// Disabled reports whether tokens are not checked (development only).
func (v *Verifier) Disabled() bool { return v.cfg.Disabled }

// ErrDisabled is returned by Verify when the verifier checks no tokens.
var ErrDisabled = errors.New("auth: token verification is disabled")

// ErrInvalidSubject means the token's sub claim is missing or too long.
var ErrInvalidSubject = errors.New("token has no valid subject")

// Verify checks the token's signature, algorithm, issuer, audience and
// times, and returns who it identifies. Errors wrap jwt's sentinel errors
// (jwt.ErrTokenExpired, ...) so callers can tell why without reading text.
func (v *Verifier) Verify(token string) (Principal, error) {
	if v.cfg.Disabled {
		return Principal{}, ErrDisabled
	}
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) {
		return v.cfg.HS256Secret, nil
	})
	if err != nil {
		return Principal{}, fmt.Errorf("auth: verify token: %w", err)
	}
	if c.Subject == "" || utf8.RuneCountInString(c.Subject) > MaxSubjectLen {
		return Principal{}, fmt.Errorf("auth: verify token: %w", ErrInvalidSubject)
	}
	return Principal{Subject: c.Subject, Role: c.Role}, nil
}

// Issue signs an HS256 token for subject, valid from now for ttl. Tests and
// the development token script use it; production tokens come from the
// shop's identity provider with the same claims.
func Issue(cfg Config, subject, role string, ttl time.Duration, now time.Time) (string, error) {
	if err := cfg.validate(); err != nil {
		return "", fmt.Errorf("auth: issue: config: %w", err)
	}
	if subject == "" || utf8.RuneCountInString(subject) > MaxSubjectLen {
		return "", fmt.Errorf("auth: issue: subject must be 1..%d characters", MaxSubjectLen)
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
