package auth

import (
	"strings"
	"sync"
	"time"
)

// Bounds of the verified-token cache.
const (
	// CacheSize is how many verified tokens a Verifier remembers: a few
	// thousand customers active at once per instance, each a few hundred
	// bytes.
	CacheSize = 4096
	// CacheMaxAge is how long a verification is reused at most, whatever
	// the token's exp: a token whose signing key the identity provider
	// withdrew is refused within this time even if the key set is not
	// re-read meanwhile.
	CacheMaxAge = time.Minute
	// evictionSample is how many entries a full cache looks at for one
	// to evict: enough to find an unusable one often, few enough to keep
	// an insert cheap.
	evictionSample = 8
)

// tokenCache remembers tokens that passed verification, by their exact
// text, so that a client sending its token again costs a map lookup rather
// than a signature check and a JSON decode. Only verified tokens enter, so
// nobody without a token from the identity provider can fill it. An entry
// serves until the token's exp or maxAge after its verification, whichever
// is first, and only while the key set it was verified with is current.
// Beyond size entries, an arbitrary one is evicted.
type tokenCache struct {
	size   int
	maxAge time.Duration

	mu      sync.RWMutex
	entries map[string]*cachedToken
}

type cachedToken struct {
	p     Principal
	until time.Time // exclusive
	keys  uint64    // the key-set generation it was verified with
}

func newTokenCache(size int, maxAge time.Duration) *tokenCache {
	return &tokenCache{size: size, maxAge: maxAge, entries: make(map[string]*cachedToken, min(size, 256))}
}

// get returns the principal of token if it was verified, is still within
// its bounds at now, and was verified with key-set generation keys. The
// principal is shared: callers must not change it.
func (c *tokenCache) get(token string, now time.Time, keys uint64) (*Principal, bool) {
	c.mu.RLock()
	e := c.entries[token]
	c.mu.RUnlock()
	if e == nil || !now.Before(e.until) || e.keys != keys {
		return nil, false
	}
	return &e.p, true
}

// put remembers that token, expiring at exp, was verified at now with
// key-set generation keys, and returns the principal it now shares.
func (c *tokenCache) put(token string, p Principal, exp, now time.Time, keys uint64) *Principal {
	e := &cachedToken{p: p, until: exp, keys: keys}
	if limit := now.Add(c.maxAge); limit.Before(e.until) {
		e.until = limit
	}
	if !now.Before(e.until) {
		return &e.p // already at its end: not worth keeping
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[token]; !ok && len(c.entries) >= c.size {
		// A few entries from where the map's randomised iteration starts:
		// an unusable one among them goes, else the first.
		victim, seen := "", 0
		for k, old := range c.entries {
			if seen == 0 {
				victim = k
			}
			if !now.Before(old.until) || old.keys != keys {
				victim = k
				break
			}
			if seen++; seen == evictionSample {
				break
			}
		}
		delete(c.entries, victim)
	}
	// The token is usually a slice of a request header: a copy keeps the
	// request's memory out of the cache.
	c.entries[strings.Clone(token)] = e
	return &e.p
}

// len is the number of entries.
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
