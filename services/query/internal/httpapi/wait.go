package httpapi

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/problem"
)

// HeaderReadModelVersion tells a client answered read-model-behind how far
// the read model has got.
const HeaderReadModelVersion = "X-Read-Model-Version"

// reader reads what a request serves and the version the read model has for
// it; 0 means nothing (missing, or not the caller's: the two look alike).
type reader[T any] func(ctx context.Context) (T, int, error)

// awaitVersion reads once and, when the request asked for ?minVersion
// and the read model is below it, waits until it is not — woken by the
// projector's updates, not by polling. The wait is bounded by the handler's
// maxWait and the request's context. Past the deadline, a cart the caller
// can see that is still behind is a 503 read-model-behind; nothing the
// caller can see (version 0) is returned as it is, for the handler's 404:
// a missing cart and someone else's must not be told apart, and a 503 would
// have the client retry for a cart it will never see. The wait comes first
// all the same: a cart just opened may not be projected yet.
//
// A request with ?minVersion registers for updates before its first read:
// an update published after the registration wakes it, and one published
// before it is in that read, so no update is missed and a request that must
// wait reads twice, not three times — once only when the registration
// already knows the read model behind (the version announced last is below
// minVersion): then the first read is the one after the wake-up.
func awaitVersion[T any](h *Handler, c echo.Context, minVersion int, watch func() (<-chan struct{}, bool, func()), read reader[T]) (T, int, error) {
	ctx := c.Request().Context()
	if minVersion == 0 {
		return read(ctx)
	}
	start := time.Now()
	wake, knownBehind, stop := watch()
	defer stop()
	var (
		v       T
		version int
		err     error
	)
	if !knownBehind {
		v, version, err = read(ctx)
		if err != nil || version >= minVersion {
			if err == nil {
				h.metrics.MinVersionWait.Observe(0)
			}
			return v, version, err
		}
	}
	defer func() { h.metrics.MinVersionWait.Observe(time.Since(start).Seconds()) }()
	deadline := time.NewTimer(h.maxWait)
	defer deadline.Stop()
	for {
		select {
		case <-wake:
		case <-deadline.C:
			if knownBehind { // not read yet: how far it got
				if v, version, err = read(ctx); err != nil || version >= minVersion {
					return v, version, err
				}
			}
			if version == 0 {
				return v, 0, nil
			}
			h.metrics.MinVersionGiveUps.Inc()
			return v, version, behind(c, version, minVersion)
		case <-ctx.Done():
			return v, version, ctx.Err()
		}
		knownBehind = false
		if v, version, err = read(ctx); err != nil || version >= minVersion {
			return v, version, err
		}
	}
}

// behind answers a read of the caller's cart whose read model did not reach
// minVersion in time. It is a 503, not a stale 200: the client's write is
// durable (the command answered 2xx only after committing it to the event
// log), and the read side is merely late — projection is asynchronous.
// Retrying is safe, and Retry-After says when; X-Read-Model-Version says how
// far it got.
func behind(c echo.Context, version, minVersion int) error {
	h := c.Response().Header()
	h.Set(echo.HeaderRetryAfter, "1")
	h.Set(HeaderReadModelVersion, strconv.Itoa(version))
	return problem.New(problem.Unavailable, CodeReadModelBehind,
		fmt.Sprintf("the read model is at version %d, not yet %d: your change is saved, retry shortly", version, minVersion))
}

// noUpdates never wakes anyone: waits end at their deadline.
type noUpdates struct{}

func (noUpdates) WatchCart(string, int) (<-chan struct{}, bool, func()) { return nil, false, func() {} }
func (noUpdates) WatchCustomer(string, int) (<-chan struct{}, bool, func()) {
	return nil, false, func() {}
}
