package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cart-cqrs/cart/services/projector/internal/analytics"
	"github.com/cart-cqrs/cart/services/projector/internal/httpapi"
	"github.com/cart-cqrs/cart/services/projector/internal/rebuild"
)

func rebuildConfig(cfg Config) rebuild.Config {
	return rebuild.Config{PageSize: cfg.RebuildPageSize, DrainWait: cfg.RebuildDrainWait}
}

func analyticsBuildConfig(cfg Config) analytics.BuildConfig {
	return analytics.BuildConfig{PageSize: cfg.AnalyticsBuildPage, DrainWait: cfg.RebuildDrainWait, CheckEvery: cfg.AnalyticsCheckEvery}
}

// rebuilds runs the full rebuilds the admin API starts, one at a time, in
// the background of the app: the read models, then the product analytics.
// Run owns them and waits for the one running when the app stops (it is
// abandoned: the current generations stay).
type rebuilds struct {
	rb     *rebuild.Rebuilder
	an     *analytics.Builder
	logger *slog.Logger

	mu  sync.Mutex
	ctx context.Context // Run's; nil before Run and after it ended
	wg  sync.WaitGroup
	// running lasts until the analytics are rebuilt too: meanwhile Status
	// shows the read models' rebuild done and the analytics' progress.
	running  bool
	finished time.Time
	err      error
	result   *rebuild.Result
}

var _ httpapi.Rebuilds = (*rebuilds)(nil)

func newRebuilds(rb *rebuild.Rebuilder, an *analytics.Builder, logger *slog.Logger) *rebuilds {
	return &rebuilds{rb: rb, an: an, logger: logger}
}

var errNotRunning = errors.New("app: the projector is not running")

// Run lets rebuilds start until ctx ends, then waits for the one running.
func (r *rebuilds) Run(ctx context.Context) error {
	r.mu.Lock()
	r.ctx = ctx
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	r.ctx = nil
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

// Start starts a rebuild unless one runs in this process (another
// process's is refused by the rebuild's lock, reported by Status).
func (r *rebuilds) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.ctx == nil:
		return errNotRunning
	case r.running:
		return rebuild.ErrRunning
	}
	r.running, r.err, r.result, r.finished = true, nil, nil, time.Time{}
	ctx := r.ctx
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		res, err := r.rb.Run(ctx)
		if err != nil {
			r.logger.ErrorContext(ctx, "rebuild failed", "err", err)
		} else {
			r.logger.InfoContext(ctx, res.String())
			err = r.rebuildAnalytics(ctx)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.running, r.finished, r.err = false, time.Now().UTC(), err
		if err == nil || errors.Is(err, errAnalytics) {
			r.result = &res
		}
	}()
	return nil
}

var errAnalytics = errors.New("the read models were rebuilt, but not the product analytics")

// rebuildAnalytics rebuilds the product analytics after the read models,
// once a build that runs (another process's, or this one's first) is done.
func (r *rebuilds) rebuildAnalytics(ctx context.Context) error {
	if r.an == nil {
		return nil
	}
	res, err := r.an.Rebuild(ctx)
	if err != nil {
		r.logger.ErrorContext(ctx, "rebuild of the product analytics failed", "err", err)
		return fmt.Errorf("%w: %w", errAnalytics, err)
	}
	r.logger.InfoContext(ctx, res.String())
	return nil
}

// Status reports the running or last rebuild of this process.
func (r *rebuilds) Status() httpapi.RebuildStatus {
	p := r.rb.Progress()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := httpapi.RebuildStatus{
		Running: r.running, Phase: p.Phase, Generation: p.Generation, Events: p.Events, Total: p.Total, Carts: p.Carts,
	}
	if !p.Started.IsZero() {
		at := p.Started.UTC()
		s.StartedAt = &at
	}
	if !r.finished.IsZero() {
		at := r.finished
		s.FinishedAt = &at
	}
	if r.err != nil {
		s.Error = r.err.Error()
	}
	if r.result != nil {
		s.Summary = r.result.String()
	}
	if r.an != nil {
		if ap := r.an.Progress(); ap.Phase != analytics.PhaseIdle {
			s.Analytics = &httpapi.AnalyticsBuildStatus{
				Phase: string(ap.Phase), Generation: ap.Generation, Events: ap.Events, Total: ap.Total, Carts: ap.Carts,
			}
			if !ap.Started.IsZero() {
				at := ap.Started.UTC()
				s.Analytics.StartedAt = &at
			}
		}
	}
	return s
}
