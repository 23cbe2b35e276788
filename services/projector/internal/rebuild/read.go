package rebuild

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
)

// readers is how many pages of the log are read at once.
const readers = 2

// read sends the log's pages, in position order, to the end of the log.
// Pages are read ahead, several at once: a cheap index scan finds where
// each page ends, and each page is then read on its own (eventlog.ReadAll).
//
// A page covers the positions after the previous page's end up to its own
// end, whatever committed there meanwhile; the last page goes on to the end
// of the log, where a short read stops. Every event committed before the
// rebuild began is in one page (that is all the handshake needs; events
// committed later reach the new generation through the live projectors).
func (f *filler) read(ctx context.Context, pages chan<- []envelope.Envelope) error {
	type result struct {
		page []envelope.Envelope
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	futures := make(chan chan result, readers-1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(futures)
		after := int64(0)
		for {
			end, last, err := f.pageEnd(ctx, after)
			ch := make(chan result, 1)
			select {
			case futures <- ch:
			case <-ctx.Done():
				return
			}
			if err != nil {
				ch <- result{err: err}
				return
			}
			wg.Add(1)
			go func(after, end int64) {
				defer wg.Done()
				page, err := f.readPage(ctx, after, end)
				ch <- result{page: page, err: err}
			}(after, end)
			if last {
				return
			}
			after = end
		}
	}()
	defer wg.Wait()
	for ch := range futures {
		r := <-ch
		if r.err != nil {
			return r.err
		}
		if len(r.page) == 0 {
			continue
		}
		select {
		case pages <- r.page:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// pageEnd finds the position of the PageSize-th event after after: where
// the page starting there ends, or last when the log ends before.
func (f *filler) pageEnd(ctx context.Context, after int64) (end int64, last bool, err error) {
	err = f.r.events.QueryRow(ctx,
		`SELECT position FROM events WHERE position > $1 ORDER BY position OFFSET $2 LIMIT 1`,
		after, f.r.cfg.PageSize-1).Scan(&end)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, true, nil
	case err != nil:
		return 0, false, fmt.Errorf("rebuild: find the page after position %d: %w", after, err)
	}
	return end, false, nil
}

// readPage reads the events with a position in (after, end], or after after
// to the end of the log when end is 0.
func (f *filler) readPage(ctx context.Context, after, end int64) ([]envelope.Envelope, error) {
	start := time.Now()
	defer func() {
		f.mu.Lock()
		f.reading += time.Since(start)
		f.mu.Unlock()
	}()
	var page []envelope.Envelope
	for {
		evs, err := eventlog.ReadAll(ctx, f.r.events, after, f.r.cfg.PageSize)
		if err != nil {
			return nil, fmt.Errorf("rebuild: %w", err)
		}
		n := len(evs)
		if end > 0 {
			n, _ = slices.BinarySearchFunc(evs, end+1, func(e envelope.Envelope, p int64) int { return cmp.Compare(e.Position, p) })
		}
		if page == nil {
			page = evs[:n]
		} else {
			page = append(page, evs[:n]...)
		}
		if n < len(evs) || len(evs) < f.r.cfg.PageSize || (end > 0 && evs[len(evs)-1].Position == end) {
			return page, nil
		}
		after = evs[len(evs)-1].Position
	}
}
