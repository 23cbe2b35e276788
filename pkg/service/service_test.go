package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/cart-cqrs/cart/pkg/envconf"
)

type fakeConfig struct{ addr string }

type fakeApp struct {
	runErr, closeErr error
	closed           bool
}

func (a *fakeApp) Addr() string { return "127.0.0.1:1" }
func (a *fakeApp) Run(ctx context.Context) error {
	if a.runErr != nil {
		return a.runErr
	}
	<-ctx.Done()
	return nil
}
func (a *fakeApp) Close() error { a.closed = true; return a.closeErr }

func configFrom(lookup func(string) (string, bool)) (fakeConfig, error) {
	if v, ok := lookup("BROKEN"); ok {
		return fakeConfig{}, errors.New("broken: " + v)
	}
	return fakeConfig{addr: ":0"}, nil
}

func TestRun(t *testing.T) {
	t.Run("OK stops cleanly on a signal and closes the app", func(t *testing.T) {
		app := &fakeApp{}
		var out bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // as if SIGTERM had arrived
		err := run(ctx, envconf.Map(nil), &out, "fake", configFrom, func(context.Context, fakeConfig, *slog.Logger) (*fakeApp, error) { return app, nil })
		if err != nil || !app.closed || !strings.Contains(out.String(), `"msg":"stopped"`) {
			t.Fatalf("err %v, closed %v, log %s", err, app.closed, out.String())
		}
	})
	t.Run("ErrConfig", func(t *testing.T) {
		var out bytes.Buffer
		err := run(context.Background(), envconf.Map(map[string]string{"BROKEN": "x"}), &out, "fake", configFrom,
			func(context.Context, fakeConfig, *slog.Logger) (*fakeApp, error) { t.Fatal("started"); return nil, nil })
		if err == nil || !strings.Contains(out.String(), "broken: x") {
			t.Fatalf("err %v, log %s", err, out.String())
		}
	})
	t.Run("ErrLogFormat", func(t *testing.T) {
		var out bytes.Buffer
		err := run(context.Background(), envconf.Map(map[string]string{"LOG_FORMAT": "xml"}), &out, "fake", configFrom,
			func(context.Context, fakeConfig, *slog.Logger) (*fakeApp, error) { t.Fatal("started"); return nil, nil })
		if err == nil || !strings.Contains(out.String(), "LOG_FORMAT") {
			t.Fatalf("err %v, log %s", err, out.String())
		}
	})
	t.Run("ErrRun is reported and the app still closed", func(t *testing.T) {
		app := &fakeApp{runErr: errors.New("boom"), closeErr: errors.New("close failed")}
		var out bytes.Buffer
		err := run(context.Background(), envconf.Map(map[string]string{"LOG_FORMAT": "text"}), &out, "fake", configFrom,
			func(context.Context, fakeConfig, *slog.Logger) (*fakeApp, error) { return app, nil })
		if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "close failed") || !app.closed {
			t.Fatalf("err %v, closed %v", err, app.closed)
		}
		if !strings.Contains(out.String(), "level=ERROR") {
			t.Fatalf("log %s", out.String())
		}
	})
}
