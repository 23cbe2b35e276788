package relay

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureStream creates the event stream, or updates it to opts: file storage,
// subjects SubjectPrefix+".>", the duplicate window that makes re-publication
// idempotent, Replicas, and limits retention (the stream is not the source of
// truth; PostgreSQL is). Calling it again with the same options changes
// nothing.
func EnsureStream(ctx context.Context, js jetstream.JetStream, opts Options) (jetstream.Stream, error) {
	o := opts.withDefaults()
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        o.Stream,
		Description: "Cart CQRS cart events (CloudEvents 1.0, JSON structured mode)",
		Subjects:    []string{o.SubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		Duplicates:  o.DuplicateWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("relay: ensure stream %s: %w", o.Stream, err)
	}
	return s, nil
}
