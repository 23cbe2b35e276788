package redisstore

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/services/projector/internal/lease"
)

// Lease is a lease.Locker on one Redis key, whose value is the owner.
type Lease struct {
	client goredis.UniversalClient
	key    string
	what   string // for error messages, e.g. "rebuild lock"
}

// NewLease returns the lock on key; what names it in errors.
func NewLease(client goredis.UniversalClient, key, what string) Lease {
	return Lease{client: client, key: key, what: what}
}

var _ lease.Locker = Lease{}

// Lock takes the lock for owner (SET NX PX).
func (r Lease) Lock(ctx context.Context, owner string, ttl time.Duration) (bool, error) {
	ok, err := r.client.SetNX(ctx, r.key, owner, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redis: take %s: %w", r.what, err)
	}
	return ok, nil
}

var renew = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

var release = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// RenewLock extends the lock while owner holds it.
func (r Lease) RenewLock(ctx context.Context, owner string, ttl time.Duration) (bool, error) {
	n, err := renew.Run(ctx, r.client, []string{r.key}, owner, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("redis: renew %s: %w", r.what, err)
	}
	return n == 1, nil
}

// Unlock releases the lock if owner holds it.
func (r Lease) Unlock(ctx context.Context, owner string) error {
	if err := release.Run(ctx, r.client, []string{r.key}, owner).Err(); err != nil {
		return fmt.Errorf("redis: release %s: %w", r.what, err)
	}
	return nil
}
