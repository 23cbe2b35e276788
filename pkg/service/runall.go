package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Part is one long-running loop of an app: it runs until ctx ends and then
// returns nil, or returns an error when it cannot go on.
type Part struct {
	Name string
	Run  func(ctx context.Context) error
}

// RunAll runs the parts together until ctx ends or one of them stops: the
// first part to stop stops the others. It waits for every part and returns
// their errors joined, each with its name. A part that returns nil while it
// was not told to stop is an error too: an app's loops are meant to run
// until they are told to stop.
func RunAll(ctx context.Context, parts ...Part) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(parts))
	)
	for i, p := range parts {
		wg.Go(func() {
			defer cancel() // one part stopping stops the others
			err := p.Run(ctx)
			if err == nil && ctx.Err() == nil {
				err = errors.New("stopped unexpectedly")
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", p.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
