package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/httpapi"
)

// rebuilds runs the full rebuilds the admin API starts, one at a time, in
// the background of the app: every projection's, in order. Run owns them
// and waits for the one running when the app stops (it is abandoned: the
// current generations stay).
type rebuilds struct {
	builders []*engine.Builder
	logger   *slog.Logger

	mu  sync.Mutex
	ctx context.Context // Run's; nil before Run and after it ended
	wg  sync.WaitGroup
	// running lasts until every projection is rebuilt.
	running  bool
	started  time.Time
	finished time.Time
	err      error
	results  []engine.Result
}

var _ httpapi.Rebuilds = (*rebuilds)(nil)

func newRebuilds(builders []*engine.Builder, logger *slog.Logger) *rebuilds {
	return &rebuilds{builders: builders, logger: logger}
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
// process's is refused by the build's lock, reported by Status).
func (r *rebuilds) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.ctx == nil:
		return errNotRunning
	case r.running:
		return engine.ErrBuilding
	}
	r.running, r.err, r.results, r.started, r.finished = true, nil, nil, time.Now(), time.Time{}
	ctx := r.ctx
	r.wg.Go(func() {
		err := rebuildAll(ctx, r.builders, r.logger, func(res engine.Result) {
			r.mu.Lock()
			r.results = append(r.results, res)
			r.mu.Unlock()
		})
		r.mu.Lock()
		defer r.mu.Unlock()
		r.running, r.finished, r.err = false, time.Now().UTC(), err
	})
	return nil
}

// rebuildAll rebuilds every projection in order — the first at once, the
// others after a build that runs elsewhere is done — and stops at the
// first that fails.
func rebuildAll(ctx context.Context, builders []*engine.Builder, logger *slog.Logger, done func(engine.Result)) error {
	for i, b := range builders {
		build := b.Rebuild
		if i == 0 {
			build = b.Build
		}
		res, err := build(ctx)
		if err != nil {
			logger.ErrorContext(ctx, "rebuild failed", "projection", b.Name(), "err", err)
			if i > 0 {
				return fmt.Errorf("rebuilt %s, but not %s: %w", builders[i-1].Name(), b.Name(), err)
			}
			return err
		}
		logger.InfoContext(ctx, res.String())
		done(res)
	}
	return nil
}

// Status reports the running or last rebuild of this process: the first
// projection's build at the top, the second's as the analytics.
func (r *rebuilds) Status() httpapi.RebuildStatus {
	p := r.builders[0].Progress()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running && p.Started.Before(r.started) {
		// Started, and not in the builder yet.
		p = engine.Progress{Phase: engine.PhasePreparing, Started: r.started}
	}
	s := httpapi.RebuildStatus{
		Running: r.running, Generation: p.Generation, Events: p.Events, Total: p.Total, Carts: p.Carts,
	}
	if p.Phase != engine.PhaseIdle {
		s.Phase = p.Phase
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
	if len(r.results) > 0 {
		lines := make([]string, len(r.results))
		for i, res := range r.results {
			lines[i] = res.String()
		}
		s.Summary = strings.Join(lines, "\n")
	}
	if len(r.builders) > 1 {
		if ap := r.builders[1].Progress(); ap.Phase != engine.PhaseIdle {
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
