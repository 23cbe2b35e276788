package chaos

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/polltest"
)

// StreamEvent is one message of the stream: the event and the sequence the
// stream gave it.
type StreamEvent struct {
	Seq uint64
	envelope.Envelope
}

// StreamWatch reads the stream from its first message, as another service
// subscribing to it would, and keeps what it read: a case learns which
// events sat at which sequences before the stream lost some, the oracle
// what a subscriber sees.
type StreamWatch struct {
	cc   jetstream.ConsumeContext
	stop sync.Once

	mu      sync.Mutex
	msgs    []StreamEvent
	last    uint64
	bad     error // the first message that is not one of our events
	lastErr error // the consumer's last complaint (it recovers by itself)
}

// WatchStream starts a StreamWatch; Stop, or the end of the test, ends it.
func (s *System) WatchStream(tb testing.TB) *StreamWatch {
	tb.Helper()
	w, err := s.watchStream(context.Background())
	if err != nil {
		tb.Fatalf("chaos: watch the stream: %v", err)
	}
	tb.Cleanup(w.Stop)
	return w
}

func (s *System) watchStream(ctx context.Context) (*StreamWatch, error) {
	st, err := s.JS.Stream(ctx, s.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", s.Stream, err)
	}
	// An ordered consumer delivers each message once, in stream order, and
	// starts over from where it was when the server goes away and back.
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("stream %s: ordered consumer: %w", s.Stream, err)
	}
	w := &StreamWatch{}
	w.cc, err = cons.Consume(w.receive, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.lastErr = err
	}))
	if err != nil {
		return nil, fmt.Errorf("stream %s: consume: %w", s.Stream, err)
	}
	return w, nil
}

func (w *StreamWatch) receive(m jetstream.Msg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	meta, err := m.Metadata()
	if err != nil {
		w.bad = cmp.Or(w.bad, fmt.Errorf("stream message without metadata: %w", err))
		return
	}
	seq := meta.Sequence.Stream
	w.last = max(w.last, seq)
	e, err := envelope.UnmarshalCloudEvent(m.Data())
	if err != nil {
		w.bad = cmp.Or(w.bad, fmt.Errorf("stream message %d: %w", seq, err))
		return
	}
	if id := m.Headers().Get(jetstream.MsgIDHeader); id != e.EventID {
		w.bad = cmp.Or(w.bad, fmt.Errorf("stream message %d: Nats-Msg-Id %q for event %s", seq, id, e.EventID))
	}
	w.msgs = append(w.msgs, StreamEvent{Seq: seq, Envelope: e})
}

// Stop ends the watch and waits until its consumer is gone.
func (w *StreamWatch) Stop() {
	w.stop.Do(func() {
		w.cc.Stop()
		<-w.cc.Closed()
	})
}

// Last is the highest sequence read so far.
func (w *StreamWatch) Last() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// Above returns the messages read at sequences above seq, in stream order.
func (w *StreamWatch) Above(seq uint64) []StreamEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []StreamEvent
	for _, m := range w.msgs {
		if m.Seq > seq {
			out = append(out, m)
		}
	}
	return out
}

// awaitWatch waits until w has read up to seq.
func awaitWatch(tb testing.TB, w *StreamWatch, seq uint64) {
	tb.Helper()
	polltest.Until(tb, 30*time.Second, fmt.Sprintf("the stream watch to read up to sequence %d", seq), func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.last >= seq {
			return nil
		}
		return fmt.Errorf("read up to %d (last complaint: %v)", w.last, w.lastErr)
	})
}

// streamMessages reads the whole stream from the start, as a new
// subscriber would, in stream order.
func (s *System) streamMessages(ctx context.Context) ([]StreamEvent, error) {
	info, err := s.streamInfo(ctx)
	if err != nil {
		return nil, err
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	w, err := s.watchStream(ctx)
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	deadline := time.Now().Add(2 * time.Minute) // bounds a failing run only
	for w.Last() < info.State.LastSeq {
		if time.Now().After(deadline) {
			w.mu.Lock()
			defer w.mu.Unlock()
			return nil, fmt.Errorf("stream %s: read up to sequence %d of %d in 2m (last complaint: %v)", s.Stream, w.last, info.State.LastSeq, w.lastErr)
		}
		time.Sleep(polltest.Interval)
	}
	w.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.bad != nil {
		return nil, w.bad
	}
	return w.msgs, nil
}

// streamInfo is the stream's configuration and state now.
func (s *System) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	st, err := s.JS.Stream(ctx, s.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", s.Stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", s.Stream, err)
	}
	return info, nil
}
