// Command command is the write side of Cart CQRS: it validates cart commands,
// appends their events and outbox rows to PostgreSQL in one transaction, and
// relays the outbox to NATS JetStream.
package main

import (
	"github.com/cart-cqrs/cart/pkg/service"
	"github.com/cart-cqrs/cart/services/command/app"
)

func main() { service.Main("command", app.ConfigFromEnv, app.New) }
