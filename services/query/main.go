// Command query serves the cart read model from Redis: GET /v1/carts/{id}
// and GET /v1/customers/me/cart, plus /healthz, /readyz and /metrics.
package main

import (
	"github.com/cart-cqrs/cart/pkg/service"
	"github.com/cart-cqrs/cart/services/query/app"
)

func main() { service.Main("query", app.ConfigFromEnv, app.New) }
