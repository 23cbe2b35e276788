// Command projector keeps the cart read models in Redis up to date from the
// cart event stream in NATS JetStream.
//
//	projector                  run the service
//	projector rebuild [-cart <id>] [-progress=false]
//	                           rebuild the read models from the event log
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cart-cqrs/cart/pkg/service"
	"github.com/cart-cqrs/cart/services/projector/app"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "rebuild" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err := app.Rebuild(ctx, os.LookupEnv, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "projector rebuild:", err)
			os.Exit(1)
		}
		return
	}
	service.Main("projector", app.ConfigFromEnv, app.New)
}
