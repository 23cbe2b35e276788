package httpserver

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/cart-cqrs/cart/pkg/envconf"
)

// Defaults of Limits.
const (
	DefaultRateLimitRPS    = 20
	DefaultRateLimitBurst  = 40
	DefaultRateLimitExpiry = 3 * time.Minute
	// CORSMaxAge is how long a browser may cache a preflight answer.
	CORSMaxAge = 10 * time.Minute
)

// Limits is what the public API lets one client do.
type Limits struct {
	// RatePerSecond refills each caller's token bucket (RATE_LIMIT_RPS,
	// default 20); 0 turns rate limiting off. The limit is per instance.
	RatePerSecond float64
	// Burst is the bucket size: how many requests may come at once
	// (RATE_LIMIT_BURST, default 40; 0 means RatePerSecond rounded up).
	Burst int
	// RateLimitExpiry forgets a caller's bucket after this long without
	// requests (default 3m; never less than a full refill). Not read from
	// the environment.
	RateLimitExpiry time.Duration
	// CORSAllowedOrigins are the exact browser origins allowed to call the
	// API, e.g. https://shop.example.com (CORS_ALLOWED_ORIGINS, comma
	// separated; empty means no CORS headers at all).
	CORSAllowedOrigins []string
}

// LimitsFromEnv reads RATE_LIMIT_RPS, RATE_LIMIT_BURST and
// CORS_ALLOWED_ORIGINS. Malformed numbers are recorded in r; call
// Limits.Validate for values that parse but make no sense.
func LimitsFromEnv(r *envconf.Reader) Limits {
	l := Limits{
		RatePerSecond: float64(r.Int("RATE_LIMIT_RPS", DefaultRateLimitRPS)),
		Burst:         r.Int("RATE_LIMIT_BURST", DefaultRateLimitBurst),
	}
	for o := range strings.SplitSeq(r.String("CORS_ALLOWED_ORIGINS", ""), ",") {
		if o = strings.TrimSpace(o); o != "" {
			l.CORSAllowedOrigins = append(l.CORSAllowedOrigins, o)
		}
	}
	return l
}

// Validate reports every unusable value: negative rates, and origins that
// are not exactly scheme://host[:port] (wildcards included).
func (l Limits) Validate() error {
	var errs []error
	if l.RatePerSecond < 0 {
		errs = append(errs, fmt.Errorf("RATE_LIMIT_RPS=%v: want 0 (off) or more", l.RatePerSecond))
	}
	if l.Burst < 0 {
		errs = append(errs, fmt.Errorf("RATE_LIMIT_BURST=%d: want 0 or more", l.Burst))
	}
	if l.RateLimitExpiry < 0 {
		errs = append(errs, fmt.Errorf("rate limit expiry %v: want 0 or more", l.RateLimitExpiry))
	}
	for _, o := range l.CORSAllowedOrigins {
		if err := checkOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("CORS_ALLOWED_ORIGINS: %w", err))
		}
	}
	return errors.Join(errs...)
}

func checkOrigin(o string) error {
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return fmt.Errorf("origin %q: %w", o, err)
	case strings.Contains(o, "*"):
		return fmt.Errorf("origin %q: wildcards are not allowed; list each origin", o)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "", u.User != nil,
		u.Path != "", u.RawQuery != "", u.Fragment != "", u.Opaque != "":
		return fmt.Errorf("origin %q: want scheme://host[:port], e.g. https://shop.example.com", o)
	case o != strings.ToLower(o):
		return fmt.Errorf("origin %q: write it in lower case, as browsers send it", o)
	}
	return nil
}
