// Command token prints a development bearer token for the local services,
// signed with the AUTH_* settings the Makefile exports:
//
//	make token SUB=alice [ROLE=admin]
//
// The token is the only thing written to stdout, so it can be captured with
// TOKEN=$(make -s token SUB=alice).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/envconf"
)

func main() {
	if err := run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr, time.Now()); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "token:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, env envconf.Env, stdout, stderr io.Writer, now time.Time) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "subject: the customer id (required)")
	role := fs.String("role", "", `role claim, e.g. "admin" or "system" (optional)`)
	ttl := fs.Duration("ttl", 24*time.Hour, "validity")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *sub == "" {
		return errors.New("-sub is required (make token SUB=alice)")
	}

	r := envconf.New(env)
	cfg := auth.Config{
		HS256Secret: r.Bytes("AUTH_HS256_SECRET"),
		Issuer:      r.String("AUTH_ISSUER", ""),
		Audience:    r.String("AUTH_AUDIENCE", ""),
	}
	if err := r.Err(); err != nil {
		return err
	}
	tok, err := auth.Issue(cfg, *sub, *role, *ttl, now)
	if err != nil {
		return fmt.Errorf("%w (set AUTH_HS256_SECRET, AUTH_ISSUER, AUTH_AUDIENCE)", err)
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
