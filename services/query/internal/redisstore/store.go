// Package redisstore reads the denormalized cart documents and histories the
// projector keeps in Redis, and follows the projector's update channel to
// wake requests waiting to read their own writes. It knows the key layout
// (readmodel.Keys) and which generation readers currently use; it never
// writes.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// Store reads cart documents from one key prefix. It is safe for concurrent
// use.
type Store struct {
	rdb    *redis.Client
	prefix string
	logger *slog.Logger
	// gen caches the generation readers use; 0 means not read yet. A
	// rebuild switches generations rarely, so a reader may lag by one
	// refresh interval.
	gen atomic.Int64

	// batched sends the reads of requests that overlap in time to Redis
	// together, as pipelines (go-redis's autopipelining: one write and one
	// read system call for a whole batch, where each read alone costs a
	// pair — most of a read's CPU). reading counts the reads in flight;
	// up to directReads of them go straight to Redis (see startRead).
	batched *redis.AutoPipeliner
	reading atomic.Int32
}

// directReads is how many reads in flight go straight to Redis before
// further ones are batched. A batch costs hand-offs to and from the
// batcher's flusher goroutine, which small batches do not repay: on two
// cores, batching from the second read in flight on cost more CPU per read
// at 4 concurrent clients than no batching, and from the fifth on cost no
// more, while still halving it from 16 clients up.
const directReads = 4

// New returns a Store over rdb for keys under prefix. The generation is read
// on first use and kept fresh by Run. Closing rdb releases what the Store
// holds.
func New(rdb *redis.Client, prefix string, logger *slog.Logger) (*Store, error) {
	batched, err := rdb.AutoPipeline()
	if err != nil {
		return nil, fmt.Errorf("redis: autopipelining: %w", err)
	}
	return &Store{rdb: rdb, prefix: prefix, logger: logger, batched: batched}, nil
}

// startRead returns the client a request's read of a document or an index
// goes through: Redis directly while few reads are in flight, else the
// batcher. Call endRead when the read is done.
func (s *Store) startRead() redis.Cmdable {
	if s.reading.Add(1) <= directReads {
		return s.rdb
	}
	return s.batched
}

func (s *Store) endRead() { s.reading.Add(-1) }

// Cart returns a cart's stored document with the version and owner kept
// beside it, read in one round trip, or found=false when there is none.
func (s *Store) Cart(ctx context.Context, cartID string) (readmodel.Stored, bool, error) {
	keys, err := s.keys(ctx)
	if err != nil {
		return readmodel.Stored{}, false, err
	}
	return s.stored(ctx, keys, cartID)
}

// OpenCart returns the stored document of a customer's open cart, as the
// index customer → open cart names it, or found=false when the index or the
// document is missing. Both reads use one generation. The document may not
// be open (or even the customer's) when the index lags behind it: the caller
// decides what that means.
func (s *Store) OpenCart(ctx context.Context, customerID string) (readmodel.Stored, bool, error) {
	keys, err := s.keys(ctx)
	if err != nil {
		return readmodel.Stored{}, false, err
	}
	rdb := s.startRead()
	cartID, err := rdb.Get(ctx, keys.OpenCart(customerID)).Result()
	s.endRead()
	switch {
	case errors.Is(err, redis.Nil):
		return readmodel.Stored{}, false, nil
	case err != nil:
		return readmodel.Stored{}, false, fmt.Errorf("redis: get open cart of customer %s: %w", customerID, err)
	}
	return s.stored(ctx, keys, cartID)
}

// History returns a cart's stored document and its history entries, read
// together in one MULTI so that they agree on the version, or found=false
// when the cart has no document.
func (s *Store) History(ctx context.Context, cartID string) (readmodel.Stored, []readmodel.HistoryEntry, bool, error) {
	keys, err := s.keys(ctx)
	if err != nil {
		return readmodel.Stored{}, nil, false, err
	}
	var (
		docCmd  *redis.SliceCmd
		listCmd *redis.StringSliceCmd
	)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		docCmd = p.HMGet(ctx, keys.Cart(cartID), storedFields...)
		listCmd = p.LRange(ctx, keys.History(cartID), 0, -1)
		return nil
	})
	if err != nil {
		return readmodel.Stored{}, nil, false, fmt.Errorf("redis: get cart %s history: %w", cartID, err)
	}
	st, found, err := parseStored(cartID, docCmd.Val())
	if err != nil || !found {
		return readmodel.Stored{}, nil, false, err
	}
	raw := listCmd.Val()
	entries := make([]readmodel.HistoryEntry, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal([]byte(r), &entries[i]); err != nil {
			return readmodel.Stored{}, nil, false, fmt.Errorf("redis: cart %s history entry %d: %w", cartID, i, err)
		}
	}
	return st, entries, true, nil
}

// storedFields are the hash fields a reader needs, in parseStored's order.
var storedFields = []string{readmodel.FieldVersion, readmodel.FieldOwner, readmodel.FieldDoc}

func (s *Store) stored(ctx context.Context, keys readmodel.Keys, cartID string) (readmodel.Stored, bool, error) {
	rdb := s.startRead()
	vals, err := rdb.HMGet(ctx, keys.Cart(cartID), storedFields...).Result()
	s.endRead()
	if err != nil {
		return readmodel.Stored{}, false, fmt.Errorf("redis: get cart %s: %w", cartID, err)
	}
	return parseStored(cartID, vals)
}

// parseStored reads an HMGET of storedFields; a hash without a document is
// no cart.
func parseStored(cartID string, vals []any) (readmodel.Stored, bool, error) {
	if len(vals) != len(storedFields) {
		return readmodel.Stored{}, false, fmt.Errorf("redis: get cart %s: %d fields for %d", cartID, len(vals), len(storedFields))
	}
	doc, ok := vals[2].(string)
	if !ok {
		return readmodel.Stored{}, false, nil
	}
	st := readmodel.Stored{Doc: []byte(doc)}
	st.Owner, _ = vals[1].(string)
	if v, ok := vals[0].(string); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return readmodel.Stored{}, false, fmt.Errorf("redis: cart %s: version %q is not a positive integer", cartID, v)
		}
		st.Version = n
	}
	return st, true, nil
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// Generation returns the cached generation, reading it when it has not been
// read yet (so the first request after start never serves a stale one).
func (s *Store) Generation(ctx context.Context) (int, error) {
	if g := s.gen.Load(); g > 0 {
		return int(g), nil
	}
	return s.Refresh(ctx)
}

func (s *Store) keys(ctx context.Context) (readmodel.Keys, error) {
	g, err := s.Generation(ctx)
	if err != nil {
		return readmodel.Keys{}, err
	}
	return readmodel.Keys{Prefix: s.prefix, Generation: g}, nil
}

// Refresh reads the current generation (absent means 1) and caches it.
func (s *Store) Refresh(ctx context.Context) (int, error) {
	v, err := s.rdb.Get(ctx, readmodel.CurrentGeneration(s.prefix)).Result()
	g := 1
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return 0, fmt.Errorf("redis: get current generation: %w", err)
	default:
		if g, err = strconv.Atoi(v); err != nil || g < 1 {
			return 0, fmt.Errorf("redis: current generation %q is not a positive integer", v)
		}
	}
	if old := s.gen.Swap(int64(g)); old != int64(g) && old != 0 {
		s.logger.InfoContext(ctx, "read model generation switched", slog.Int64("from", old), slog.Int("to", g))
	}
	return g, nil
}

// Run refreshes the generation at once and then every interval until ctx
// ends. A failed refresh keeps the last known generation (requests report
// Redis outages on their own) and is logged; Run returns nil when ctx ends.
func (s *Store) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
		rctx, cancel := context.WithTimeout(ctx, max(every, time.Second))
		_, err := s.Refresh(rctx)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil && !failing:
			failing = true
			s.logger.WarnContext(ctx, "refresh read model generation", slog.Any("error", err))
		case err == nil && failing:
			failing = false
			s.logger.InfoContext(ctx, "read model generation readable again")
		}
	}
}
