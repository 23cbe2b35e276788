// Command command is the write side of Cart CQRS: it validates cart commands,
// appends their events and outbox rows to PostgreSQL in one transaction, and
// relays the outbox to NATS JetStream.
//
//	command            run the service (applying migrations unless MIGRATE=false)
//	command migrate    apply the migrations to DATABASE_URL and exit
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/cart-cqrs/cart/pkg/service"
	"github.com/cart-cqrs/cart/services/command/app"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err := app.Migrate(ctx, os.LookupEnv, slog.New(slog.NewJSONHandler(os.Stderr, nil)))
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	service.Main("command", app.ConfigFromEnv, app.New)
}
