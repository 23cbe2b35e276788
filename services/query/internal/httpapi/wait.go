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
// maxWait and the request's context; past the deadline the answer is 503
// read-model-behind.
func awaitVersion[T any](h *Handler, c echo.Context, minVersion int, watch func() (<-chan struct{}, func()), read reader[T]) (T, int, error) {
	ctx := c.Request().Context()
	v, version, err := read(ctx)
	if minVersion == 0 || err != nil || version >= minVersion {
		if minVersion > 0 && err == nil {
			h.metrics.MinVersionWait.Observe(0)
		}
		return v, version, err
	}
	start := time.Now()
	defer func() { h.metrics.MinVersionWait.Observe(time.Since(start).Seconds()) }()
	wake, stop := watch()
	defer stop()
	deadline := time.NewTimer(h.maxWait)
	defer deadline.Stop()
	for {
		// The first read after registering closes the race with an update
		// published between the read above and the registration.
		if v, version, err = read(ctx); err != nil || version >= minVersion {
			return v, version, err
		}
		select {
		case <-wake:
		case <-deadline.C:
			h.metrics.MinVersionGiveUps.Inc()
			return v, version, behind(c, version, minVersion)
		case <-ctx.Done():
			return v, version, ctx.Err()
		}
	}
}

// behind answers a read whose read model did not reach minVersion in time.
// It is a 503, not a 404 or a stale 200: the client's write is durable (the
// command answered 2xx only after committing it to the event log), and the
// read side is merely late — projection is asynchronous. Retrying is safe,
// and Retry-After says when; X-Read-Model-Version says how far it got (0
// when it has nothing for the request yet).
func behind(c echo.Context, version, minVersion int) error {
	h := c.Response().Header()
	h.Set(echo.HeaderRetryAfter, "1")
	h.Set(HeaderReadModelVersion, strconv.Itoa(version))
	return problem.New(problem.Unavailable, CodeReadModelBehind,
		fmt.Sprintf("the read model is at version %d, not yet %d: your change is saved, retry shortly", version, minVersion))
}

// noUpdates never wakes anyone: waits end at their deadline.
type noUpdates struct{}

func (noUpdates) WatchCart(string, int) (<-chan struct{}, func())     { return nil, func() {} }
func (noUpdates) WatchCustomer(string, int) (<-chan struct{}, func()) { return nil, func() {} }
