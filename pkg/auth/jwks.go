package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

const (
	// DefaultJWKSRefresh is how often Run re-reads the key set.
	DefaultJWKSRefresh = 15 * time.Minute
	// MissRefreshInterval is the least time between re-reads triggered by
	// tokens naming an unknown kid, so forged kids cannot hammer the
	// identity provider.
	MissRefreshInterval = 30 * time.Second
	// coldRefreshInterval is the least time between fetches triggered by
	// tokens while no key set has been loaded yet (start-up, provider down).
	coldRefreshInterval = time.Second
	// JWKSTimeout bounds one fetch of the key set.
	JWKSTimeout = 10 * time.Second
	// maxJWKSBytes bounds the key set document.
	maxJWKSBytes = 1 << 20
	// maxRetry caps the pause between failed refreshes in Run.
	maxRetry = time.Minute
)

// ErrUnknownKey means the token's kid is not in the identity provider's
// key set, even after a re-read.
var ErrUnknownKey = errors.New("signing key not found")

// checkJWKSURL admits https, and http only on a loopback host: keys fetched
// over plain HTTP could be swapped by anyone on the path.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("JWKS URL: %w", err)
	}
	return checkJWKSLocation(u)
}

func checkJWKSLocation(u *url.URL) error {
	switch {
	case u.Host == "":
		return fmt.Errorf("JWKS URL %q: no host", u.Redacted())
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	default:
		return fmt.Errorf("JWKS URL %q: want https (http only on a loopback host)", u.Redacted())
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// keySet holds the identity provider's public keys. keyfunc looks keys up
// by kid in store; a miss re-reads the set (rate limited), and run re-reads
// it periodically. Fetches are serialized by sem.
type keySet struct {
	url      string
	interval time.Duration
	client   *http.Client
	logger   *slog.Logger
	store    *jwkset.MemoryJWKSet
	kf       keyfunc.Keyfunc
	miss     *rate.Limiter // re-reads for unknown kids once keys are loaded
	cold     *rate.Limiter // fetches for tokens while no keys are loaded
	sem      chan struct{}

	generation atomic.Uint64 // successful fetches so far

	mu      sync.Mutex
	lastErr error
}

func newKeySet(rawURL string, interval time.Duration, client *http.Client, logger *slog.Logger) (*keySet, error) {
	if client == nil {
		client = &http.Client{Timeout: JWKSTimeout}
	}
	c := *client // a copy, so the redirect policy does not leak to the caller's client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		return checkJWKSLocation(req.URL)
	}
	k := &keySet{
		url:      rawURL,
		interval: interval,
		client:   &c,
		logger:   logger,
		store:    jwkset.NewMemoryStorage(),
		miss:     rate.NewLimiter(rate.Every(MissRefreshInterval), 1),
		cold:     rate.NewLimiter(rate.Every(coldRefreshInterval), 1),
		sem:      make(chan struct{}, 1),
	}
	kf, err := keyfunc.New(keyfunc.Options{
		Storage: refreshingStorage{Storage: k.store, keys: k},
		// Keys marked for encryption never verify signatures.
		UseWhitelist: []jwkset.USE{jwkset.UseSig, ""},
	})
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	k.kf = kf
	return k, nil
}

func (k *keySet) keyfunc(ctx context.Context) jwt.Keyfunc { return k.kf.KeyfuncCtx(ctx) }

func (k *keySet) gen() uint64 { return k.generation.Load() }

func (k *keySet) ready() error {
	if k.gen() > 0 {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lastErr != nil {
		return fmt.Errorf("auth: no signing keys loaded yet: %w", k.lastErr)
	}
	return errors.New("auth: no signing keys loaded yet")
}

// refresh fetches the key set now, waiting for a fetch in flight.
func (k *keySet) refresh(ctx context.Context) error {
	select {
	case k.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("jwks: refresh: %w", ctx.Err())
	}
	defer func() { <-k.sem }()
	return k.fetch(ctx)
}

// refreshOnMiss re-reads the key set for a token naming an unknown key and
// reports whether it is worth looking again: another fetch finished while
// this one waited, or this one succeeded within the rate limit.
func (k *keySet) refreshOnMiss(ctx context.Context) bool {
	seen := k.gen()
	select {
	case k.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-k.sem }()
	if k.gen() != seen {
		return true
	}
	limiter := k.miss
	if seen == 0 {
		limiter = k.cold
	}
	if !limiter.Allow() {
		return false
	}
	if err := k.fetch(ctx); err != nil {
		k.logger.WarnContext(ctx, "auth: re-read of the JWK set for an unknown key failed", "url", k.url, "error", err)
		return false
	}
	return true
}

// run re-reads the key set every interval until ctx ends, retrying failures
// with a growing pause (at most the interval).
func (k *keySet) run(ctx context.Context) {
	wait := time.Duration(0)
	if k.gen() > 0 {
		wait = k.interval
	}
	retry := time.Second
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if err := k.refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			wait = min(retry, k.interval)
			retry = min(2*retry, maxRetry)
			k.logger.WarnContext(ctx, "auth: JWK set refresh failed; keeping the keys we have",
				"url", k.url, "retryIn", wait, "error", err)
		} else {
			wait, retry = k.interval, time.Second
		}
		timer.Reset(wait)
	}
}

// fetch replaces the stored keys with the endpoint's usable signing keys.
// Call it holding sem.
func (k *keySet) fetch(ctx context.Context) (err error) {
	defer func() {
		if err == nil {
			k.generation.Add(1)
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		k.lastErr = err
	}()
	ctx, cancel := context.WithTimeout(ctx, JWKSTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return fmt.Errorf("jwks: fetch %s: %w", k.url, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	res, err := k.client.Do(req)
	if err != nil {
		return fmt.Errorf("jwks: fetch %s: %w", k.url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("jwks: fetch %s: status %d", k.url, res.StatusCode)
	}
	var set jwkset.JWKSMarshal
	if err := json.NewDecoder(io.LimitReader(res.Body, maxJWKSBytes)).Decode(&set); err != nil {
		return fmt.Errorf("jwks: decode %s: %w", k.url, err)
	}
	keys := make([]jwkset.JWK, 0, len(set.Keys))
	for _, m := range set.Keys {
		// A symmetric key published in a JWK Set would be a shared secret
		// anyone can read: never a verification key.
		if m.KTY == jwkset.KtyOct {
			continue
		}
		// Private:false keeps only public material even if a misconfigured
		// provider publishes private parts.
		j, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			k.logger.DebugContext(ctx, "auth: skipping unusable JWK", "kid", m.KID, "kty", m.KTY, "error", err)
			continue
		}
		keys = append(keys, j)
	}
	if len(keys) == 0 {
		return fmt.Errorf("jwks: %s has no usable signing keys", k.url)
	}
	if err := k.store.KeyReplaceAll(ctx, keys); err != nil {
		return fmt.Errorf("jwks: store keys: %w", err)
	}
	return nil
}

// refreshingStorage re-reads the key set when a key is missing, so a key
// the provider just rotated in is found on its first use.
type refreshingStorage struct {
	jwkset.Storage
	keys *keySet
}

var _ jwkset.Storage = refreshingStorage{}

func (s refreshingStorage) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	j, err := s.Storage.KeyRead(ctx, kid)
	if errors.Is(err, jwkset.ErrKeyNotFound) && s.keys.refreshOnMiss(ctx) {
		j, err = s.Storage.KeyRead(ctx, kid)
	}
	if errors.Is(err, jwkset.ErrKeyNotFound) {
		return jwkset.JWK{}, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
	}
	return j, err
}

// KeyReadAll serves tokens without a kid: every key is tried.
func (s refreshingStorage) KeyReadAll(ctx context.Context) ([]jwkset.JWK, error) {
	all, err := s.Storage.KeyReadAll(ctx)
	if err == nil && len(all) == 0 && s.keys.refreshOnMiss(ctx) {
		all, err = s.Storage.KeyReadAll(ctx)
	}
	if err == nil && len(all) == 0 {
		return nil, fmt.Errorf("%w: no keys loaded", ErrUnknownKey)
	}
	return all, err
}
