package httpapi

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// Problem codes of the analytics routes.
const (
	CodeAdminOnly         = "admin-only"
	CodeAnalyticsBuilding = "analytics-building"
	CodeProductNotFound   = "product-not-found"
	CodeInvalidSort       = "invalid-sort"
	CodeInvalidLimit      = "invalid-limit"
)

// Analytics is the product analytics as the handlers need them, from the
// generation readers use; its Number is 0 until the first one is built.
type Analytics interface {
	Products(ctx context.Context) (readmodel.AnalyticsGeneration, []readmodel.ProductAnalytics, error)
	Product(ctx context.Context, productID string) (readmodel.AnalyticsGeneration, readmodel.ProductAnalytics, bool, error)
}

// AnalyticsProducts is the body of GET /v1/analytics/products.
type AnalyticsProducts struct {
	// Generation and BuiltAt say which build of the analytics answers:
	// every event of the log up to BuiltAt, and those since as the
	// projector keeps up.
	Generation int       `json:"generation"`
	BuiltAt    time.Time `json:"builtAt"`
	Sort       string    `json:"sort"`
	// Total is how many products there are; Products the first limit of
	// them in Sort order.
	Total    int                       `json:"total"`
	Products []readmodel.ProductReport `json:"products"`
}

// AnalyticsProduct is the body of GET /v1/analytics/products/:productId.
type AnalyticsProduct struct {
	Generation int                     `json:"generation"`
	BuiltAt    time.Time               `json:"builtAt"`
	Product    readmodel.ProductReport `json:"product"`
}

// Limits of GET /v1/analytics/products?limit.
const (
	DefaultAnalyticsLimit = 50
	MaxAnalyticsLimit     = 1000
)

// analyticsSorts are the orders of GET /v1/analytics/products, by name: the
// counter ranked on, largest first. The first is the default: "which
// products are added but never bought?".
var analyticsSorts = []struct {
	name string
	key  func(readmodel.ProductReport) int64
}{
	{"addedNeverCheckedOut", func(p readmodel.ProductReport) int64 { return p.AddedNeverCheckedOut }},
	{"added", func(p readmodel.ProductReport) int64 { return p.Added }},
	{"addedToCarts", func(p readmodel.ProductReport) int64 { return p.AddedToCarts }},
	{"removedByCustomer", func(p readmodel.ProductReport) int64 { return p.RemovedByCustomer }},
	{"removedBySystem", func(p readmodel.ProductReport) int64 { return p.RemovedBySystem }},
	{"checkedOut", func(p readmodel.ProductReport) int64 { return p.CheckedOut }},
	{"quantityRaised", func(p readmodel.ProductReport) int64 { return p.QuantityRaised }},
	{"quantityLowered", func(p readmodel.ProductReport) int64 { return p.QuantityLowered }},
}

type analyticsHandler struct{ analytics Analytics }

func registerAnalytics(g *echo.Group, a Analytics) {
	h := analyticsHandler{analytics: a}
	g.GET("/analytics/products", h.products, adminOnly)
	g.GET("/analytics/products/:productId", h.product, adminOnly)
}

// adminOnly lets only callers with the admin role through: the analytics
// are the shop's, not a customer's, nor another service's.
func adminOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := principal(c)
		if err != nil {
			return err
		}
		if p.Role != "admin" {
			return problem.New(problem.Forbidden, CodeAdminOnly, "the product analytics need a token with the admin role")
		}
		return next(c)
	}
}

// products serves GET /v1/analytics/products: every product's analytics,
// ranked by ?sort (default addedNeverCheckedOut), largest first and then by
// product id, the first ?limit (default 50, at most 1000).
func (h analyticsHandler) products(c echo.Context) error {
	sortName, key, err := sortParam(c)
	if err != nil {
		return err
	}
	limit, err := limitParam(c)
	if err != nil {
		return err
	}
	g, ps, err := h.analytics.Products(c.Request().Context())
	if err != nil {
		return unavailable(err)
	}
	if g.Number == 0 {
		return building(c)
	}
	reports := make([]readmodel.ProductReport, len(ps))
	for i, p := range ps {
		reports[i] = p.Report()
	}
	slices.SortFunc(reports, func(a, b readmodel.ProductReport) int {
		return cmp.Or(cmp.Compare(key(b), key(a)), strings.Compare(a.ProductID, b.ProductID))
	})
	body := AnalyticsProducts{Generation: g.Number, BuiltAt: g.BuiltAt, Sort: sortName, Total: len(reports), Products: reports[:min(limit, len(reports))]}
	c.Response().Header().Set(echo.HeaderCacheControl, "private, no-cache")
	return c.JSON(http.StatusOK, body)
}

// product serves GET /v1/analytics/products/:productId.
func (h analyticsHandler) product(c echo.Context) error {
	id := c.Param("productId")
	if !cart.ValidProductID(id) {
		return errProductNotFound()
	}
	g, p, found, err := h.analytics.Product(c.Request().Context(), id)
	switch {
	case err != nil:
		return unavailable(err)
	case g.Number == 0:
		return building(c)
	case !found:
		return errProductNotFound()
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "private, no-cache")
	return c.JSON(http.StatusOK, AnalyticsProduct{Generation: g.Number, BuiltAt: g.BuiltAt, Product: p.Report()})
}

func errProductNotFound() error {
	return problem.New(problem.NotFound, CodeProductNotFound, "no cart has had this product")
}

// building answers before the first analytics generation is built: the
// projector is reading the event log, and Retry-After says when to ask
// again.
func building(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderRetryAfter, "5")
	return problem.New(problem.Unavailable, CodeAnalyticsBuilding,
		"the product analytics are being built from the event log: retry shortly")
}

func sortParam(c echo.Context) (string, func(readmodel.ProductReport) int64, error) {
	vals, ok := c.QueryParams()["sort"]
	if !ok {
		return analyticsSorts[0].name, analyticsSorts[0].key, nil
	}
	for _, s := range analyticsSorts {
		if s.name == vals[0] {
			return s.name, s.key, nil
		}
	}
	names := make([]string, len(analyticsSorts))
	for i, s := range analyticsSorts {
		names[i] = s.name
	}
	return "", nil, problem.New(problem.Invalid, CodeInvalidSort, "sort must be one of "+strings.Join(names, ", "))
}

func limitParam(c echo.Context) (int, error) {
	vals, ok := c.QueryParams()["limit"]
	if !ok {
		return DefaultAnalyticsLimit, nil
	}
	n, err := strconv.Atoi(vals[0])
	if err != nil {
		return 0, problem.New(problem.Malformed, CodeInvalidLimit, "limit must be an integer")
	}
	if n < 1 || n > MaxAnalyticsLimit {
		return 0, problem.New(problem.Invalid, CodeInvalidLimit, "limit must be between 1 and "+strconv.Itoa(MaxAnalyticsLimit))
	}
	return n, nil
}
