package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
)

// redisUsers are the Redis users the deployments define.
const redisUsers = "../deploy/redis/users.acl"

// mustRedisUsers creates, on the test's Redis, one user per line of the
// shipped rules, limited to the test's key prefix instead of "cart:", and
// returns a URL connecting as each, by the rules' user name. The users are
// deleted when the test ends.
func mustRedisUsers(t *testing.T, r redistest.Env) map[string]string {
	t.Helper()
	f, err := os.Open(redisUsers)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	urls := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "user" {
			continue
		}
		name, user, password := fields[1], fields[1]+"-"+uuid.NewString()[:8], uuid.NewString()
		args := []any{"ACL", "SETUSER", user, "reset", "on", ">" + password}
		for _, rule := range fields[2:] {
			args = append(args, strings.ReplaceAll(rule, "cart:", r.Prefix))
		}
		if err := r.Client.Do(t.Context(), args...).Err(); err != nil {
			t.Fatalf("%s: user %s: %v", redisUsers, name, err)
		}
		t.Cleanup(func() {
			if err := r.Client.Do(context.Background(), "ACL", "DELUSER", user).Err(); err != nil {
				t.Errorf("delete Redis user %s: %v", user, err)
			}
		})
		u, err := url.Parse(r.URL)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(user, password)
		urls[name] = u.String()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if urls["projector"] == "" || urls["query"] == "" {
		t.Fatalf("%s defines no projector or query user", redisUsers)
	}
	return urls
}

// TestRedisACLUsers runs the pipeline with the projector and the query
// service connected as their Redis users of the shipped rules: enough for the
// real code, and the query user cannot write, nor either touch keys outside
// the read-model prefix.
func TestRedisACLUsers(t *testing.T) {
	r := redistest.MustRedis(t)
	users := mustRedisUsers(t, r)
	s := mustStart(t, options{
		redis:         &r,
		projectorVars: map[string]string{"REDIS_URL": users["projector"]},
		queryVars:     map[string]string{"REDIS_URL": users["query"]},
	})
	tok := token(t, customer("acl"), "")
	c := s.command(t, tok, "/v1/carts", nil)
	c = s.command(t, tok, "/v1/carts/"+c.CartID+"/add-item", item("456", 2))
	s.awaitCart(t, tok, c.CartID, c.Version) // ?minVersion and the update subscription included
	if r := do(t, "GET", s.queryURL+"/v1/carts/"+c.CartID+"/history", tok, nil); r.Status != 200 {
		t.Fatalf("history as the query user: %d %s", r.Status, r.Body)
	}
	// The product analytics too: built, locked, written by scripts and read
	// in a transaction, all as these users.
	admin := token(t, "ops", "admin")
	eventually(t, 15*time.Second, "the analytics count the add as these users", func() error {
		r := do(t, "GET", s.queryURL+"/v1/analytics/products/456", admin, nil)
		if r.Status != 200 {
			return fmt.Errorf("status %d: %s", r.Status, r.Body)
		}
		var got struct{ Product readmodel.ProductReport }
		if err := json.Unmarshal(r.Body, &got); err != nil {
			return err
		}
		if got.Product.Added != 1 {
			return fmt.Errorf("added %d", got.Product.Added)
		}
		return nil
	})

	for name, denied := range map[string][][]any{
		"query":     {{"SET", r.Prefix + "x", "1"}, {"DEL", r.Prefix + "g1:cart:{" + c.CartID + "}"}, {"PUBLISH", r.Prefix + "g1:cart-updates", "x"}},
		"projector": {{"GET", "elsewhere:x"}, {"FLUSHDB"}, {"KEYS", "*"}, {"CONFIG", "GET", "*"}},
	} {
		opts, err := redis.ParseURL(users[name])
		if err != nil {
			t.Fatal(err)
		}
		client := redis.NewClient(opts)
		for _, cmd := range denied {
			if err := client.Do(t.Context(), cmd...).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
				t.Errorf("%s ran %v: %v; want NOPERM", name, cmd, err)
			}
		}
		if err := client.Close(); err != nil {
			t.Error(err)
		}
	}
}
