// Package httpapi is the projector's admin API: the parked events (list,
// retry, skip) and the read-model rebuild (start, progress, one cart). Every
// admin route needs a bearer token with the admin role. The API is described
// by the OpenAPI document of package api, served at /openapi.json.
package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/openapi"
	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/services/projector/api"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// Parking is what the parked-events routes need.
type Parking interface {
	ParkedCarts(ctx context.Context) ([]documents.ParkedCart, error)
	Retry(ctx context.Context, cartID string) (documents.Released, error)
	Skip(ctx context.Context, cartID string) (documents.Released, error)
	RebuildCart(ctx context.Context, cartID string) (int, error)
}

// Rebuilds starts full rebuilds in the background and reports on them.
type Rebuilds interface {
	// Start starts a rebuild; engine.ErrBuilding when one runs.
	Start() error
	Status() RebuildStatus
}

// RebuildStatus is the answer of GET /admin/rebuild.
type RebuildStatus struct {
	Running    bool         `json:"running"`
	Phase      engine.Phase `json:"phase,omitempty"`
	Generation int          `json:"generation,omitempty"`
	Events     int64        `json:"events"`
	Total      int64        `json:"total"`
	Carts      int64        `json:"carts"`
	StartedAt  *time.Time   `json:"startedAt,omitempty"`
	FinishedAt *time.Time   `json:"finishedAt,omitempty"`
	Error      string       `json:"error,omitempty"`
	// Summary is the finished rebuild's summary: a line per projection.
	Summary string `json:"summary,omitempty"`
	// Analytics is this process's build of the product analytics: the
	// second step of a full rebuild, or one it started on its own (first
	// deployment, Redis emptied). Absent before any.
	Analytics *AnalyticsBuildStatus `json:"analytics,omitempty"`
}

// AnalyticsBuildStatus is the progress of a build of the product analytics.
type AnalyticsBuildStatus struct {
	Phase      string     `json:"phase"`
	Generation int        `json:"generation,omitempty"`
	Events     int64      `json:"events"`
	Total      int64      `json:"total"`
	Carts      int64      `json:"carts"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
}

// Problem codes of the admin API.
const (
	CodeAdminOnly      = "admin-only"
	CodeNotParked      = "not-parked"
	CodeUnknownCart    = "unknown-cart"
	CodeRebuildRunning = "rebuild-running"
	CodeBadCartID      = "bad-cart-id"
)

// Register mounts the admin routes on e, and the API's OpenAPI document at
// GET /openapi.json (no token needed).
func Register(e *echo.Echo, v *auth.Verifier, parking Parking, rebuilds Rebuilds) {
	if err := openapi.Mount(e, api.OpenAPI); err != nil {
		// The document is compiled in and the tests load it: an invalid one
		// is a defect of the build, not something the environment can cause.
		panic(err)
	}
	h := &handler{parking: parking, rebuilds: rebuilds}
	g := e.Group("/admin", auth.Middleware(v), adminOnly)
	g.GET("/parked", h.listParked)
	g.POST("/parked/:cartId/retry", h.retry)
	g.POST("/parked/:cartId/skip", h.skip)
	g.GET("/rebuild", h.rebuildStatus)
	g.POST("/rebuild", h.startRebuild)
}

func adminOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if p, ok := auth.FromContext(c); !ok || p.Role != "admin" {
			return problem.New(problem.Forbidden, CodeAdminOnly, "the admin API needs a token with the admin role")
		}
		return next(c)
	}
}

type handler struct {
	parking  Parking
	rebuilds Rebuilds
}

// ParkedEvent is one parked event in GET /admin/parked.
type ParkedEvent struct {
	EventID       string    `json:"eventId"`
	Version       int       `json:"version"`
	Type          string    `json:"type"`
	SchemaVersion int       `json:"schemaVersion"`
	Error         string    `json:"error"`
	Attempts      int       `json:"attempts"`
	FirstParkedAt time.Time `json:"firstParkedAt"`
	LastAttemptAt time.Time `json:"lastAttemptAt"`
}

// ParkedCart is one cart in GET /admin/parked.
type ParkedCart struct {
	CartID string        `json:"cartId"`
	Events []ParkedEvent `json:"events"`
}

// ParkedList is the answer of GET /admin/parked.
type ParkedList struct {
	Carts  []ParkedCart `json:"carts"`
	Events int          `json:"events"`
}

func (h *handler) listParked(c echo.Context) error {
	carts, err := h.parking.ParkedCarts(c.Request().Context())
	if err != nil {
		return failed(err)
	}
	out := ParkedList{Carts: make([]ParkedCart, len(carts))}
	for i, pc := range carts {
		out.Carts[i] = ParkedCart{CartID: pc.CartID, Events: make([]ParkedEvent, len(pc.Events))}
		for j, pe := range pc.Events {
			out.Carts[i].Events[j] = ParkedEvent{
				EventID: pe.Event.EventID, Version: pe.Event.Version, Type: pe.Event.Type, SchemaVersion: pe.Event.SchemaVersion,
				Error: pe.Error, Attempts: pe.Attempts, FirstParkedAt: pe.FirstParkedAt, LastAttemptAt: pe.LastAttemptAt,
			}
		}
		out.Events += len(pc.Events)
	}
	return c.JSON(http.StatusOK, out)
}

// ReleaseResult is the answer of a retry or a skip.
type ReleaseResult struct {
	CartID      string `json:"cartId"`
	Applied     int    `json:"applied"`
	StillParked int    `json:"stillParked"`
	Error       string `json:"error,omitempty"`
	Version     int    `json:"version"`
}

func (h *handler) retry(c echo.Context) error { return h.release(c, h.parking.Retry) }
func (h *handler) skip(c echo.Context) error  { return h.release(c, h.parking.Skip) }

func (h *handler) release(c echo.Context, do func(context.Context, string) (documents.Released, error)) error {
	id, err := cartID(c.Param("cartId"))
	if err != nil {
		return err
	}
	r, err := do(c.Request().Context(), id)
	switch {
	case errors.Is(err, documents.ErrNotParked):
		return problem.New(problem.NotFound, CodeNotParked, "the cart has no parked events")
	case errors.Is(err, documents.ErrConflict):
		return problem.Wrap(problem.Conflict, "", err)
	case err != nil:
		return failed(err)
	}
	return c.JSON(http.StatusOK, ReleaseResult{CartID: id, Applied: r.Applied, StillParked: r.StillParked, Error: r.Error, Version: r.Version})
}

// CartRebuilt is the answer of POST /admin/rebuild?cart=<id>.
type CartRebuilt struct {
	CartID string `json:"cartId"`
	Events int    `json:"events"`
}

// startRebuild starts a full rebuild in the background (202, then GET for
// its progress), or with ?cart=<id> replaces one cart at once (200).
func (h *handler) startRebuild(c echo.Context) error {
	if raw := c.QueryParam("cart"); raw != "" {
		id, err := cartID(raw)
		if err != nil {
			return err
		}
		n, err := h.parking.RebuildCart(c.Request().Context(), id)
		switch {
		case errors.Is(err, documents.ErrUnknownCart):
			return problem.New(problem.NotFound, CodeUnknownCart, "the event log has no events of the cart")
		case errors.Is(err, documents.ErrConflict):
			return problem.Wrap(problem.Conflict, "", err)
		case err != nil:
			return failed(err)
		}
		return c.JSON(http.StatusOK, CartRebuilt{CartID: id, Events: n})
	}
	switch err := h.rebuilds.Start(); {
	case errors.Is(err, engine.ErrBuilding):
		return problem.New(problem.Conflict, CodeRebuildRunning, "a rebuild is running: GET /admin/rebuild for its progress")
	case err != nil:
		return failed(err)
	}
	return c.JSON(http.StatusAccepted, h.rebuilds.Status())
}

func (h *handler) rebuildStatus(c echo.Context) error {
	return c.JSON(http.StatusOK, h.rebuilds.Status())
}

// failed is a failure the admin sees in full: the caller is an operator,
// and the cause (a document that cannot be read, a dependency that is down)
// is what they need to act on.
func failed(err error) error {
	return &problem.Error{Kind: problem.Unavailable, Detail: err.Error(), Err: err}
}

func cartID(raw string) (string, error) {
	id, err := uuid.Parse(raw)
	if err != nil {
		return "", problem.New(problem.Malformed, CodeBadCartID, "the cart id is not a UUID")
	}
	return id.String(), nil
}
