// Package httpapi serves the cart read model over HTTP: the JSON documents
// the projector stored, with ETags from their versions; a cart's history and
// the cart as it was at any time (the history folded with the domain's own
// fold); and read-your-writes, where a read waits (bounded) for the version a
// command returned. Every route is behind bearer authentication, and a caller
// sees only its own carts.
package httpapi

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// Problem codes of the query API.
const (
	CodeCartNotFound         = "cart-not-found"
	CodeCartNotFoundAt       = "cart-not-found-at"
	CodeNoOpenCart           = "no-open-cart"
	CodeReadModelUnavailable = "read-model-unavailable"
	CodeReadModelBehind      = "read-model-behind"
	CodeInvalidMinVersion    = "invalid-min-version"
	CodeInvalidAt            = "invalid-at"
)

// Carts is the read model as the handlers need it. Documents come back as
// stored, so the response is byte for byte what the projector wrote; the
// version and owner beside them let a handler decide without decoding.
type Carts interface {
	Cart(ctx context.Context, cartID string) (cart readmodel.Stored, found bool, err error)
	OpenCart(ctx context.Context, customerID string) (cart readmodel.Stored, found bool, err error)
	// History returns the cart's document and its history entries, read at
	// the same version.
	History(ctx context.Context, cartID string) (cart readmodel.Stored, entries []readmodel.HistoryEntry, found bool, err error)
}

// Updates wakes requests waiting for the read model to reach a version.
// wake receives when the read model may have it (the request re-reads);
// stop must be called when the request stops waiting.
// behind reports that the read model is known to be below minVersion, so
// the request need not read before it is woken.
type Updates interface {
	WatchCart(cartID string, minVersion int) (wake <-chan struct{}, behind bool, stop func())
	WatchCustomer(customerID string, minVersion int) (wake <-chan struct{}, behind bool, stop func())
}

// DefaultMinVersionWait is how long a ?minVersion read waits at most unless
// Options say otherwise.
const DefaultMinVersionWait = 2 * time.Second

// Options are the handlers' optional dependencies.
type Options struct {
	// Updates wakes ?minVersion reads; without it they wait until the
	// deadline unless the first reads find the version.
	Updates Updates
	// MinVersionWait bounds a ?minVersion wait (DefaultMinVersionWait when
	// zero); the request's context bounds it too.
	MinVersionWait time.Duration
	// Metrics are recorded, if set.
	Metrics *Metrics
	// Middleware runs after authentication on every /v1 route (the
	// per-customer rate limit, which needs the caller).
	Middleware []echo.MiddlewareFunc
	// Analytics, if set, serves the product analytics to admins
	// (/v1/analytics/…).
	Analytics Analytics
}

// Handler holds the query handlers' dependencies.
type Handler struct {
	carts   Carts
	updates Updates
	maxWait time.Duration
	metrics *Metrics
}

// Register mounts the /v1 query routes on e, behind auth.Middleware(v).
func Register(e *echo.Echo, v *auth.Verifier, carts Carts, opts Options) {
	h := &Handler{carts: carts, updates: opts.Updates, maxWait: opts.MinVersionWait, metrics: opts.Metrics}
	if h.updates == nil {
		h.updates = noUpdates{}
	}
	if h.maxWait <= 0 {
		h.maxWait = DefaultMinVersionWait
	}
	if h.metrics == nil {
		h.metrics = newMetrics()
	}
	g := e.Group("/v1", append([]echo.MiddlewareFunc{auth.Middleware(v)}, opts.Middleware...)...)
	g.GET("/carts/:cartId", h.GetCart)
	g.GET("/carts/:cartId/history", h.GetHistory)
	g.GET("/customers/me/cart", h.GetMyCart)
	if opts.Analytics != nil {
		registerAnalytics(g, opts.Analytics)
	}
}

// document is a stored document with the fields the handlers decide on.
type document struct {
	raw     []byte
	version int
	owner   string // the customer id
	status  string // only when peeked
	peeked  bool   // owner, status and version were read from raw
}

// newDocument takes the version and owner from the fields stored beside the
// document; a document written before they were stored there is peeked
// at instead.
func newDocument(st readmodel.Stored) (document, error) {
	d := document{raw: st.Doc, version: st.Version, owner: st.Owner}
	if d.owner == "" || d.version == 0 {
		return d.peek()
	}
	return d, nil
}

// peek reads the status from the document itself, and the owner and
// version where they are not stored beside it.
func (d document) peek() (document, error) {
	if d.peeked {
		return d, nil
	}
	h, err := peekHead(d.raw)
	if err != nil {
		return document{}, err
	}
	// The fields beside the document, where stored, stand.
	d.owner = cmp.Or(d.owner, h.CustomerID)
	d.version = cmp.Or(d.version, h.Version)
	d.status, d.peeked = h.Status, true
	return d, nil
}

// unavailable turns a read-model error into a 503 — unless the client went
// away or the request timed out, which the shared handler reports itself.
func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return problem.Wrap(problem.Unavailable, CodeReadModelUnavailable, err)
}

func principal(c echo.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(c)
	if !ok {
		return auth.Principal{}, errors.New("httpapi: no principal: route is not behind auth.Middleware")
	}
	return p, nil
}

// serve writes the document with its ETag, or 304 when If-None-Match
// matches it.
func serve(c echo.Context, d document) error {
	if notModified(c, d.version) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.JSONBlob(http.StatusOK, d.raw)
}

// notModified sets the validators of a representation at version and
// reports whether If-None-Match already holds it.
func notModified(c echo.Context, version int) bool {
	etag := `"` + strconv.Itoa(version) + `"`
	h := c.Response().Header()
	h.Set(echo.HeaderCacheControl, "private, no-cache")
	h.Set("ETag", etag)
	inm := c.Request().Header.Get("If-None-Match")
	return inm != "" && noneMatchHits(inm, etag)
}

// readable reports whether the caller may see a cart of customerID.
func readable(p auth.Principal, customerID string) bool {
	return customerID == p.Subject || p.IsSystem()
}

// noneMatchHits applies RFC 9110 §13.1.2: "*" matches any current
// representation; otherwise the list is compared weakly (W/ is ignored).
func noneMatchHits(header, etag string) bool {
	if strings.TrimSpace(header) == "*" {
		return true
	}
	for tag := range strings.SplitSeq(header, ",") {
		if strings.TrimPrefix(strings.TrimSpace(tag), "W/") == etag {
			return true
		}
	}
	return false
}
