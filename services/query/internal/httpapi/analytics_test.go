package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/pkg/openapi/openapitest"
	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	queryapi "github.com/cart-cqrs/cart/services/query/api"
	"github.com/cart-cqrs/cart/services/query/internal/httpapi"
	"github.com/cart-cqrs/cart/services/query/internal/redisstore"
)

// analyticsAPI is the query API with the product analytics over a real
// Redis, served over HTTP so that every answer is checked against the
// OpenAPI document.
type analyticsAPI struct {
	t      *testing.T
	redis  redistest.Env
	base   string
	client *http.Client
}

func newAnalyticsAPI(t *testing.T) *analyticsAPI {
	t.Helper()
	r := redistest.MustRedis(t)
	v, err := auth.NewVerifier(authCfg)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	e := httpserver.NewEcho(logger, prometheus.NewRegistry(), "query-test")
	httpapi.Register(e, v, mustStore(t, r.Client, r.Prefix), httpapi.Options{Analytics: redisstore.NewAnalytics(r.Client, r.Prefix)})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := openapitest.Client(t, map[string]*openapi3.T{u.Host: openapitest.MustLoad(t, queryapi.OpenAPI)})
	return &analyticsAPI{t: t, redis: r, base: srv.URL, client: client}
}

// put stores a product's hash in generation gen as the projector would.
func (a *analyticsAPI) put(gen int, id, name string, counts map[string]int64, checkoutMillis ...int64) {
	a.t.Helper()
	ctx := context.Background()
	k := readmodel.AnalyticsKeys{Prefix: a.redis.Prefix, Generation: gen}
	fields := []any{readmodel.FieldName, name, readmodel.FieldNameAt, "x"}
	for f, n := range counts {
		fields = append(fields, f, n)
	}
	for _, ms := range checkoutMillis {
		if err := a.redis.Client.HIncrBy(ctx, k.Product(id), readmodel.FieldDwellToCheckout+strconv.Itoa(readmodel.DwellBucket(time.Duration(ms)*time.Millisecond)), 1).Err(); err != nil {
			a.t.Fatal(err)
		}
	}
	if err := a.redis.Client.HSet(ctx, k.Product(id), fields...).Err(); err != nil {
		a.t.Fatal(err)
	}
	if err := a.redis.Client.SAdd(ctx, k.Products(), id).Err(); err != nil {
		a.t.Fatal(err)
	}
}

// switchTo makes gen the generation readers use, built at builtAt.
func (a *analyticsAPI) switchTo(gen int, builtAt time.Time) {
	a.t.Helper()
	ctx := context.Background()
	k := readmodel.AnalyticsKeys{Prefix: a.redis.Prefix, Generation: gen}
	if err := a.redis.Client.HSet(ctx, k.Meta(), readmodel.AnalyticsFieldBuiltAt, builtAt.Format(time.RFC3339Nano)).Err(); err != nil {
		a.t.Fatal(err)
	}
	if err := a.redis.Client.HSet(ctx, readmodel.AnalyticsGenerations(a.redis.Prefix), readmodel.AnalyticsCurrent, gen).Err(); err != nil {
		a.t.Fatal(err)
	}
}

func (a *analyticsAPI) get(path, subject, role string) (int, http.Header, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.base+path, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	if subject != "" {
		req.Header.Set("Authorization", "Bearer "+token(a.t, subject, role))
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func (a *analyticsAPI) wantProblem(path, subject, role string, status int, code string) http.Header {
	a.t.Helper()
	got, h, body := a.get(path, subject, role)
	var p problem.Body
	if err := json.Unmarshal(body, &p); err != nil || got != status || p.Code != code {
		a.t.Errorf("GET %s as %q/%q = %d %s, want %d %s", path, subject, role, got, body, status, code)
	}
	return h
}

func TestAnalytics(t *testing.T) {
	a := newAnalyticsAPI(t)
	const list = "/v1/analytics/products"

	t.Run("AdminsOnly", func(t *testing.T) {
		a.wantProblem(list, "", "", http.StatusUnauthorized, "unauthorized")
		a.wantProblem(list, "alice", "", http.StatusForbidden, httpapi.CodeAdminOnly)
		a.wantProblem(list+"/456", "billing", "system", http.StatusForbidden, httpapi.CodeAdminOnly)
	})
	t.Run("BeforeTheFirstBuild", func(t *testing.T) {
		for _, path := range []string{list, list + "/456"} {
			if h := a.wantProblem(path, "ops", "admin", http.StatusServiceUnavailable, httpapi.CodeAnalyticsBuilding); h.Get("Retry-After") == "" {
				t.Errorf("GET %s before the first build: no Retry-After", path)
			}
		}
	})

	builtAt := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a.put(1, "456", "Ceramic mug", map[string]int64{readmodel.FieldAdded: 9, readmodel.FieldAddedToCarts: 7, readmodel.FieldCheckedOut: 2,
		readmodel.FieldRemovedByCustomer: 3, readmodel.FieldQuantityRaised: 4}, 60_000, 120_000, 180_000)
	a.put(1, "123", "Espresso beans", map[string]int64{readmodel.FieldAdded: 12, readmodel.FieldAddedToCarts: 10, readmodel.FieldCheckedOut: 9,
		readmodel.FieldRemovedBySystem: 1})
	a.put(1, "789", "Milk frother", map[string]int64{readmodel.FieldAdded: 5, readmodel.FieldAddedToCarts: 5})
	a.switchTo(1, builtAt)

	t.Run("List", func(t *testing.T) {
		for _, tc := range []struct {
			query string
			want  []string
			sort  string
		}{
			{"", []string{"456", "789", "123"}, "addedNeverCheckedOut"},
			{"?sort=added", []string{"123", "456", "789"}, "added"},
			{"?sort=removedBySystem&limit=2", []string{"123", "456"}, "removedBySystem"},
			{"?sort=quantityLowered&limit=1000", []string{"123", "456", "789"}, "quantityLowered"}, // all 0: by id
		} {
			status, h, body := a.get(list+tc.query, "ops", "admin")
			var got httpapi.AnalyticsProducts
			if err := json.Unmarshal(body, &got); err != nil || status != http.StatusOK {
				t.Fatalf("GET %s = %d %s", tc.query, status, body)
			}
			var ids []string
			for _, p := range got.Products {
				ids = append(ids, p.ProductID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) || got.Total != 3 || got.Sort != tc.sort || got.Generation != 1 || !got.BuiltAt.Equal(builtAt) {
				t.Errorf("GET %s = %+v, want products %v", tc.query, got, tc.want)
			}
			if h.Get("Cache-Control") != "private, no-cache" {
				t.Errorf("Cache-Control = %q", h.Get("Cache-Control"))
			}
		}
	})
	t.Run("BadParameters", func(t *testing.T) {
		a.wantProblem(list+"?sort=price", "ops", "admin", http.StatusUnprocessableEntity, httpapi.CodeInvalidSort)
		a.wantProblem(list+"?limit=many", "ops", "admin", http.StatusBadRequest, httpapi.CodeInvalidLimit)
		a.wantProblem(list+"?limit=0", "ops", "admin", http.StatusUnprocessableEntity, httpapi.CodeInvalidLimit)
		a.wantProblem(list+"?limit=1001", "ops", "admin", http.StatusUnprocessableEntity, httpapi.CodeInvalidLimit)
	})
	t.Run("Product", func(t *testing.T) {
		status, _, body := a.get(list+"/456", "ops", "admin")
		var got httpapi.AnalyticsProduct
		if err := json.Unmarshal(body, &got); err != nil || status != http.StatusOK {
			t.Fatalf("GET 456 = %d %s", status, body)
		}
		p := got.Product
		if p.Name != "Ceramic mug" || p.Added != 9 || p.AddedToCarts != 7 || p.CheckedOut != 2 || p.AddedNeverCheckedOut != 5 ||
			p.RemovedByCustomer != 3 || p.QuantityRaised != 4 || p.DwellToCheckout.Count != 3 || p.DwellToRemoval.Count != 0 {
			t.Errorf("456 = %+v", p)
		}
		if m := p.DwellToCheckout.MedianSeconds; m == nil || *m < 120*(1-readmodel.DwellRelativeError) || *m > 120*(1+readmodel.DwellRelativeError) {
			t.Errorf("median dwell to checkout = %v, want 120s within the bound", m)
		}
		if p.DwellToRemoval.MedianSeconds != nil {
			t.Errorf("a median of no removals: %v", *p.DwellToRemoval.MedianSeconds)
		}
		a.wantProblem(list+"/999", "ops", "admin", http.StatusNotFound, httpapi.CodeProductNotFound)
		a.wantProblem(list+"/%7F", "ops", "admin", http.StatusNotFound, httpapi.CodeProductNotFound)
	})
	t.Run("GenerationSwitch", func(t *testing.T) {
		a.put(2, "456", "Ceramic mug", map[string]int64{readmodel.FieldAdded: 10, readmodel.FieldAddedToCarts: 8})
		a.switchTo(2, builtAt.Add(time.Hour))
		eventually(t, "readers switch to generation 2", func() bool {
			_, _, body := a.get(list, "ops", "admin")
			var got httpapi.AnalyticsProducts
			return json.Unmarshal(body, &got) == nil && got.Generation == 2 && got.Total == 1 && got.Products[0].Added == 10
		})
	})
}
