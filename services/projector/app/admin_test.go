package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/polltest"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/app"
)

// analyticsSummary is the line of the product analytics' rebuild.
var analyticsSummary = regexp.MustCompile(`(?m)^analytics: rebuilt (\d+) events of (\d+) carts in \S+ \(\d+ events/s\) into generation (\d+)$`)

// summary is the contract of the rebuild's last line.
var summary = regexp.MustCompile(`(?m)^documents: rebuilt (\d+) events of (\d+) carts in \S+ \((\d+) events/s\) into generation (\d+)$`)

func TestApp_AdminAPI(t *testing.T) {
	a := runValidatedApp(t, pgtest.MustDatabase(t), nil)
	base := "http://" + a.Addr()
	admin := token(t, "ops", "admin")

	t.Run("Auth", func(t *testing.T) {
		for name, tc := range map[string]struct {
			token string
			want  int
		}{
			"NoToken":  {"", http.StatusUnauthorized},
			"Customer": {token(t, "alice", ""), http.StatusForbidden},
			"System":   {token(t, "svc", "system"), http.StatusForbidden},
			"Admin":    {admin, http.StatusOK},
		} {
			if got, _ := call(t, http.MethodGet, base+"/admin/parked", tc.token); got != tc.want {
				t.Errorf("%s: GET /admin/parked = %d, want %d", name, got, tc.want)
			}
		}
		if got, _ := call(t, http.MethodPost, base+"/admin/rebuild", token(t, "alice", "")); got != http.StatusForbidden {
			t.Errorf("customer POST /admin/rebuild = %d, want 403", got)
		}
	})
	t.Run("Parked", func(t *testing.T) {
		status, body := call(t, http.MethodGet, base+"/admin/parked", admin)
		if status != http.StatusOK || !strings.Contains(body, `"carts":[]`) {
			t.Fatalf("GET /admin/parked = %d %s", status, body)
		}
		if got, body := call(t, http.MethodPost, base+"/admin/parked/"+uuid.NewString()+"/retry", admin); got != http.StatusNotFound || !strings.Contains(body, "not-parked") {
			t.Errorf("retry of a cart without parked events = %d %s", got, body)
		}
		if got, _ := call(t, http.MethodPost, base+"/admin/parked/not-a-cart/skip", admin); got != http.StatusBadRequest {
			t.Errorf("skip of a malformed id = %d, want 400", got)
		}
	})
	t.Run("Rebuild", func(t *testing.T) {
		if got, _ := call(t, http.MethodPost, base+"/admin/rebuild?cart="+uuid.NewString(), admin); got != http.StatusNotFound {
			t.Errorf("rebuild of an unknown cart = %d, want 404", got)
		}
		if got, body := call(t, http.MethodPost, base+"/admin/rebuild", admin); got != http.StatusAccepted {
			t.Fatalf("POST /admin/rebuild = %d %s", got, body)
		}
		var st struct {
			Running bool   `json:"running"`
			Summary string `json:"summary"`
			Error   string `json:"error"`
		}
		polltest.True(t, 20*time.Second, "rebuild done", func() bool {
			_, body := call(t, http.MethodGet, base+"/admin/rebuild", admin)
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				t.Fatalf("GET /admin/rebuild: %v: %s", err, body)
			}
			return !st.Running && (st.Summary != "" || st.Error != "")
		})
		if m := summary.FindStringSubmatch(st.Summary); m == nil || m[4] != "2" || st.Error != "" {
			t.Fatalf("rebuild status = %+v", st)
		}
	})
	t.Run("Metrics", func(t *testing.T) {
		_, body := call(t, http.MethodGet, "http://"+a.MetricsAddr()+"/metrics", "")
		for _, m := range []string{"cart_projector_parked_events ", `cart_projection_build_events_applied_total{projection="documents"}`,
			`cart_projection_build_events{projection="documents"}`, `cart_projection_events_applied_total{projection="analytics"}`,
			`cart_projection_build_phase{phase="done",projection="analytics"} 1`, `cart_projection_build_events{projection="analytics"}`} {
			if !strings.Contains(body, m) {
				t.Errorf("/metrics has no %s", m)
			}
		}
	})
}

func TestRebuildCommand(t *testing.T) {
	pool, dbURL := pgtest.MustPool(t)
	renv := redistest.MustRedis(t)
	cartID := uuid.NewString()
	for v, ev := range []struct{ typ, data string }{
		{"cart.opened", `{"customerId":"cli"}`},
		{"cart.item-added", `{"productId":"123","name":"Espresso beans 1 kg","unitPrice":{"amount":1899,"currency":"EUR"},"quantity":2}`},
	} {
		if _, err := pool.Exec(context.Background(),
			`INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, metadata, occurred_at)
			 VALUES (gen_random_uuid(), $1, 'cart', $2, $3, $4, $5, '{"actor":"cli"}', now())`,
			cartID, v+1, ev.typ, v+1, ev.data); err != nil {
			t.Fatal(err)
		}
	}
	env := envconf.Map(map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": renv.URL, "REDIS_PREFIX": renv.Prefix,
		"PROJECTOR_REBUILD_DRAIN": "1ms"})
	var analyticsLines []string
	run := func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		err := app.Rebuild(context.Background(), env, args, &stdout, &stderr)
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		analyticsLines = lines[:len(lines)-1]
		return lines[len(lines)-1], err
	}
	for i, args := range [][]string{{"-progress=false"}, {"-cart", cartID}, {}} {
		last, err := run(args...)
		if err != nil {
			t.Fatalf("rebuild %v: %v", args, err)
		}
		// The product analytics are rebuilt after the read models, unless
		// one cart is.
		wantAnalytics := []string{"1", "", "2"}[i]
		if m := analyticsSummary.FindStringSubmatch(strings.Join(analyticsLines, "\n")); wantAnalytics == "" && m != nil ||
			wantAnalytics != "" && (m == nil || m[1] != "2" || m[2] != "1" || m[3] != wantAnalytics) {
			t.Errorf("rebuild %v: analytics printed %q, want generation %q", args, analyticsLines, wantAnalytics)
		}
		m := summary.FindStringSubmatch(last)
		if m == nil || m[1] != "2" || m[2] != "1" {
			t.Errorf("rebuild %v printed %q", args, last)
		}
		if want := []string{"2", "2", "3"}[i]; m != nil && m[4] != want {
			t.Errorf("rebuild %v: generation %s, want %s", args, m[4], want)
		}
	}
	doc, err := renv.Client.HGet(context.Background(), renv.Prefix+"g3:cart:{"+cartID+"}", "doc").Result()
	if err != nil || !strings.Contains(doc, `"itemCount":2`) {
		t.Errorf("rebuilt document = %s, %v", doc, err)
	}
	products, err := renv.Client.SMembers(context.Background(), renv.Prefix+"analytics:{g2}:products").Result()
	if err != nil || len(products) != 1 || products[0] != "123" {
		t.Errorf("rebuilt analytics products = %v, %v", products, err)
	}
	if _, err := run("-analytics=false", "-progress=false"); err != nil || len(analyticsLines) != 0 {
		t.Errorf("-analytics=false: %v, printed %q", err, analyticsLines)
	}
	if _, err := run("-cart", "nope"); err == nil {
		t.Error("-cart nope accepted")
	}
	if _, err := run("extra"); err == nil {
		t.Error("an extra argument accepted")
	}
}

func token(t *testing.T, sub, role string) string {
	t.Helper()
	tok, err := auth.Issue(authCfg, sub, role, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func call(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := clientFor(req.URL.Host).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}
