// Command devrun runs the whole system on one machine for development: it
// makes sure the database exists, then starts the command, projector and
// query services as child processes with their logs prefixed, and stops all
// three cleanly on Ctrl-C. If one of them dies, it stops the others too.
//
// It is what `make run` calls; production runs each service on its own.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cart-cqrs/cart/migrations"
)

func main() {
	bin := flag.String("bin", "bin", "directory holding the command, projector and query binaries")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "devrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin string) error {
	dbURL, ok := os.LookupEnv("DATABASE_URL")
	if !ok {
		dbURL = "postgres://postgres@127.0.0.1:5432/cart?sslmode=disable"
		if err := os.Setenv("DATABASE_URL", dbURL); err != nil {
			return fmt.Errorf("set DATABASE_URL: %w", err)
		}
	}
	// People read these logs, not a log shipper.
	if _, ok := os.LookupEnv("LOG_FORMAT"); !ok {
		if err := os.Setenv("LOG_FORMAT", "text"); err != nil {
			return fmt.Errorf("set LOG_FORMAT: %w", err)
		}
	}
	ensureCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := migrations.EnsureDatabase(ensureCtx, dbURL)
	cancel()
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}

	// The command service owns the schema and the stream, so it starts
	// first; the projector waits for the stream, the query service for
	// nothing.
	services := []string{"command", "projector", "query"}
	procs := make([]*exec.Cmd, 0, len(services))
	exited := make(chan error, len(services))
	var logs sync.WaitGroup
	for _, name := range services {
		cmd := exec.Command(filepath.Join(bin, name))
		cmd.Env = os.Environ()
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches devrun only; it forwards SIGTERM
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			terminate(procs)
			return fmt.Errorf("start %s: %w", name, err)
		}
		procs = append(procs, cmd)
		logs.Add(1)
		go func() {
			defer logs.Done()
			prefix(os.Stdout, name, stdout)
		}()
		go func() {
			err := cmd.Wait()
			exited <- fmt.Errorf("%s exited: %w", name, errOrExit(err))
		}()
		slog.Info("started", "service", name, "pid", cmd.Process.Pid)
	}

	var first error
	select {
	case <-ctx.Done():
		slog.Info("stopping all services")
	case first = <-exited:
		slog.Error("a service stopped; stopping the others", "err", first)
	}
	terminate(procs)
	remaining := len(procs)
	if first != nil {
		remaining--
	}
	deadline := time.After(20 * time.Second)
	for ; remaining > 0; remaining-- {
		select {
		case err := <-exited:
			slog.Info("stopped", "result", err)
		case <-deadline:
			slog.Error("services did not stop in 20s; killing them")
			for _, p := range procs {
				_ = p.Process.Kill() // best effort: it may have exited meanwhile
			}
			remaining = 0
		}
	}
	logs.Wait()
	return first
}

func terminate(procs []*exec.Cmd) {
	for _, p := range procs {
		if err := p.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			slog.Warn("signal", "pid", p.Process.Pid, "err", err)
		}
	}
}

func errOrExit(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

func prefix(w io.Writer, name string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fmt.Fprintf(w, "%-9s | %s\n", name, sc.Text())
	}
}
