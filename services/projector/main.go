// Command projector keeps the cart read models in Redis up to date from the
// cart event stream in NATS JetStream.
package main

import (
	"github.com/cart-cqrs/cart/pkg/service"
	"github.com/cart-cqrs/cart/services/projector/app"
)

func main() { service.Main("projector", app.ConfigFromEnv, app.New) }
