package auth

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var cacheTestCfg = Config{
	HS256Secret: []byte("0123456789abcdef0123456789abcdef"),
	Issuer:      "https://issuer.test",
	Audience:    "cart-api",
}

// clock is a settable time for a Verifier and its parser.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

func clockedVerifier(t *testing.T, c *clock) *Verifier {
	t.Helper()
	v, err := NewVerifier(cacheTestCfg)
	if err != nil {
		t.Fatal(err)
	}
	v.now = c.now
	return v
}

func issue(t *testing.T, subject string, ttl time.Duration, at time.Time) string {
	t.Helper()
	tok, err := Issue(cacheTestCfg, subject, "", ttl, at)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerifierCache(t *testing.T) {
	t0 := time.Now().Truncate(time.Second)

	t.Run("OKServedFromCache", func(t *testing.T) {
		v := clockedVerifier(t, newClock(t0))
		tok := issue(t, "alice", time.Hour, t0)
		first, err := v.verify(t.Context(), tok)
		if err != nil {
			t.Fatal(err)
		}
		again, err := v.verify(t.Context(), tok)
		if err != nil {
			t.Fatal(err)
		}
		if first != again || again.Subject != "alice" {
			t.Errorf("second verification = %p %+v, want the cached %p", again, again, first)
		}
	})

	t.Run("ErrExpiredWhileCached", func(t *testing.T) {
		c := newClock(t0)
		v := clockedVerifier(t, c)
		tok := issue(t, "alice", 10*time.Second, t0)
		if _, err := v.verify(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
		// Past exp the cache no longer answers, even within its max age;
		// the token is checked again (and the leeway applies as always).
		c.add(10 * time.Second)
		if _, ok := v.cache.get(tok, c.now(), 0); ok {
			t.Error("served from the cache at its exp")
		}
		c.add(DefaultLeeway + time.Second)
		if _, err := v.verify(t.Context(), tok); !errors.Is(err, jwt.ErrTokenExpired) {
			t.Errorf("expired token: err = %v, want ErrTokenExpired", err)
		}
	})

	t.Run("MaxAge", func(t *testing.T) {
		c := newClock(t0)
		v := clockedVerifier(t, c)
		tok := issue(t, "alice", time.Hour, t0)
		if _, err := v.verify(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
		c.add(CacheMaxAge - time.Nanosecond)
		if _, ok := v.cache.get(tok, c.now(), 0); !ok {
			t.Error("not served from the cache within its max age")
		}
		c.add(time.Nanosecond)
		if _, ok := v.cache.get(tok, c.now(), 0); ok {
			t.Error("served from the cache at its max age")
		}
	})

	t.Run("ErrOneByteDifferent", func(t *testing.T) {
		v := clockedVerifier(t, newClock(t0))
		tok := issue(t, "alice", time.Hour, t0)
		if _, err := v.verify(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
		// The first character of the signature carries its first six
		// bits, so changing it always changes the signature.
		sig := len(tok) - 43 // an HS256 signature is 43 characters
		for _, forged := range []string{
			tok[:sig] + string(other(tok[sig])) + tok[sig+1:],
			tok[:10] + string(other(tok[10])) + tok[11:],
			tok + "A",
		} {
			if p, err := v.verify(t.Context(), forged); err == nil {
				t.Errorf("forged token %s accepted as %+v", forged, p)
			}
		}
		if _, err := v.verify(t.Context(), tok); err != nil {
			t.Errorf("the real token after forgeries: %v", err)
		}
	})

	t.Run("KeySetChange", func(t *testing.T) {
		c := newClock(t0)
		v := clockedVerifier(t, c)
		tok := issue(t, "alice", time.Hour, t0)
		if _, err := v.verify(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
		if _, ok := v.cache.get(tok, c.now(), 1); ok {
			t.Error("served from the cache under another key-set generation")
		}
	})
}

func other(b byte) byte {
	if b == 'A' {
		return 'B'
	}
	return 'A'
}

func TestTokenCache_Bounded(t *testing.T) {
	t0 := time.Now()
	c := newTokenCache(8, time.Minute)
	for i := range 100 {
		c.put(fmt.Sprintf("token-%d", i), Principal{Subject: "s"}, t0.Add(time.Hour), t0, 0)
		if n := c.len(); n > 8 {
			t.Fatalf("after %d puts: %d entries, want at most 8", i+1, n)
		}
	}
	// The latest is always kept; expired entries go before live ones.
	if _, ok := c.get("token-99", t0, 0); !ok {
		t.Error("the latest entry was evicted")
	}
	d := newTokenCache(2, time.Minute)
	d.put("expiring", Principal{}, t0.Add(time.Second), t0, 0)
	d.put("live", Principal{}, t0.Add(time.Hour), t0, 0)
	d.put("new", Principal{}, t0.Add(time.Hour), t0.Add(2*time.Second), 0)
	if _, ok := d.get("live", t0.Add(2*time.Second), 0); !ok {
		t.Error("a live entry was evicted while an expired one was there")
	}
}

func TestVerifierCache_Concurrent(t *testing.T) {
	c := newClock(time.Now())
	v := clockedVerifier(t, c)
	v.cache = newTokenCache(16, CacheMaxAge) // small, so that entries are evicted all the time
	tokens := make([]string, 64)
	for i := range tokens {
		tokens[i] = issue(t, fmt.Sprintf("customer-%d", i), time.Hour, c.now())
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				n := (g*7 + i) % len(tokens)
				p, err := v.verify(t.Context(), tokens[n])
				if err != nil {
					t.Errorf("verify: %v", err)
					return
				}
				if want := fmt.Sprintf("customer-%d", n); p.Subject != want {
					t.Errorf("token of %s verified as %s", want, p.Subject)
					return
				}
				if i%100 == 0 {
					c.add(time.Second)
				}
			}
		})
	}
	wg.Wait()
	if n := v.cache.len(); n > 16 {
		t.Errorf("%d entries, want at most 16", n)
	}
}
