package analytics

import (
	"context"
	"sync"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

// fill reads the whole log in (cart, version) order and brings every cart
// of generation gen up to date with it, a page at a time, the next page
// read while this one is applied.
func (b *Builder) fill(ctx context.Context, gen int) (BuildResult, error) {
	total, err := countEvents(ctx, b.log)
	if err != nil {
		return BuildResult{}, err
	}
	b.update(func(p *Progress) { p.Phase, p.Generation, p.Total = PhaseFilling, gen, total })
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pages := make(chan []envelope.Envelope, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(pages)
		after := firstKey
		for {
			page, err := readPage(ctx, b.log, after, b.cfg.PageSize)
			if err != nil {
				cancel(err)
				return
			}
			if len(page) > 0 {
				select {
				case pages <- page:
				case <-ctx.Done():
					return
				}
			}
			if len(page) < b.cfg.PageSize {
				return
			}
			last := page[len(page)-1]
			after = logKey{cartID: last.StreamID, version: last.Version}
		}
	})
	var res BuildResult
	lastCart := ""
	for page := range pages {
		if ctx.Err() != nil {
			continue // drain
		}
		if err := b.applyPage(ctx, gen, page, &res, &lastCart); err != nil {
			cancel(err)
		}
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return BuildResult{}, err
	}
	return res, nil
}

// applyPage brings the page's carts up to date in gen.
func (b *Builder) applyPage(ctx context.Context, gen int, page []envelope.Envelope, res *BuildResult, lastCart *string) error {
	var carts []cartEvents
	newCarts := int64(0)
	for i := 0; i < len(page); {
		j := i + 1
		for j < len(page) && page[j].StreamID == page[i].StreamID {
			j++
		}
		carts = append(carts, cartEvents{cartID: page[i].StreamID, events: page[i:j]})
		if page[i].StreamID != *lastCart {
			newCarts++
		}
		*lastCart = page[i].StreamID
		i = j
	}
	outs, err := apply(ctx, b.store, b.log, gen, carts)
	if err != nil {
		return err
	}
	applied := 0
	for i, o := range outs {
		if o.err != nil {
			return o.err
		}
		applied += eachApplied(carts[i].events, o, nil)
		for _, u := range o.res.Undecodable {
			res.Undecodable++
			b.metrics.Undecodable.WithLabelValues(pathBuild).Inc()
			b.logger.WarnContext(ctx, "analytics: passing over an event that cannot be decoded", "cart", u.Event.StreamID,
				"version", u.Event.Version, "type", u.Event.Type, "schema_version", u.Event.SchemaVersion, "err", u.Err)
		}
	}
	b.metrics.Applied.WithLabelValues(pathBuild).Add(float64(applied))
	res.Events += int64(len(page))
	res.Carts += newCarts
	b.update(func(p *Progress) { p.Events, p.Carts = res.Events, res.Carts })
	return nil
}
