package relay

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

// A commit in the leader's own process hands its events over: they are
// published with no notification and no poll, and their rows removed.
func TestRelay_PublishesHandedOffEvents(t *testing.T) {
	f := newFixture(t)
	f.opts.PollInterval = time.Minute // neither a poll nor a NOTIFY can wake it in time
	r := New(f.pool, f.nats.JS, f.opts, testLogger(t))
	start(t, r)
	eventually(t, 10*time.Second, "leading", r.Leading)

	var want []envelope.Envelope
	c := uuid.NewString()
	for v := range 5 {
		evs := appendQuietly(t, f.pool, c, v, 1)
		r.Committed(evs)
		want = append(want, evs...)
		eventually(t, 10*time.Second, "handed-off event published", func() bool {
			return streamMsgs(t, f.nats.JS, f.opts.Stream) == uint64(v+1)
		})
	}
	// Two carts committed in one group.
	group := append(appendQuietly(t, f.pool, uuid.NewString(), 0, 2), appendQuietly(t, f.pool, c, 5, 1)...)
	r.Committed(group)
	want = append(want, group...)
	eventually(t, 10*time.Second, "outbox emptied", func() bool { return outboxLen(t, f.pool) == 0 })
	checkOncePerCartOrder(t, readStream(t, f.nats.JS, f.opts.Stream), want)
	if got := r.Published(); got != uint64(len(want)) {
		t.Errorf("Published() = %d, want %d", got, len(want))
	}
}

// A handed-off event of a cart whose earlier events the relay has not seen
// in the stream waits for the outbox round: it never overtakes them.
func TestRelay_HandOffNeverOvertakesTheOutbox(t *testing.T) {
	f := newFixture(t)
	f.opts.PollInterval = 300 * time.Millisecond
	r := New(f.pool, f.nats.JS, f.opts, testLogger(t))
	start(t, r)
	eventually(t, 10*time.Second, "leading", r.Leading)

	c := uuid.NewString()
	// Another instance committed versions 1-3 and its notification has not
	// arrived; this instance then commits version 4.
	want := appendQuietly(t, f.pool, c, 0, 3)
	v4 := appendQuietly(t, f.pool, c, 3, 1)
	r.Committed(v4)
	want = append(want, v4...)
	// A cart the relay knows nothing of, but whose first event this is.
	fresh := appendQuietly(t, f.pool, uuid.NewString(), 0, 1)
	r.Committed(fresh)
	want = append(want, fresh...)

	eventually(t, 10*time.Second, "outbox drained", func() bool { return outboxLen(t, f.pool) == 0 })
	msgs := readStream(t, f.nats.JS, f.opts.Stream)
	checkOncePerCartOrder(t, msgs, want)
	var order []int
	for _, m := range msgs {
		if m.env.StreamID == c {
			order = append(order, m.env.Version)
		}
	}
	if len(order) != 4 || order[0] != 1 || order[3] != 4 {
		t.Errorf("cart's versions in the stream %v, want 1 2 3 4", order)
	}
}

// A relay that does not lead ignores what is handed over, and says so, so
// that commits notify the leader instead.
func TestRelay_StandbyTakesNoHandOff(t *testing.T) {
	f := newFixture(t)
	leader := New(f.pool, f.nats.JS, f.opts, testLogger(t).With("relay", "leader"))
	start(t, leader)
	eventually(t, 10*time.Second, "leading", leader.Leading)
	standby := New(f.pool, f.nats.JS, f.opts, testLogger(t).With("relay", "standby"))
	start(t, standby)
	time.Sleep(3 * f.opts.StandbyInterval) // it tries the lock and stands by
	if standby.Leading() {
		t.Fatal("two relays lead")
	}
	// The standby's instance commits: it notifies, and hands over for nothing.
	evs := appendEvents(t, f.pool, uuid.NewString(), 0, 2)
	standby.Committed(evs)
	eventually(t, 10*time.Second, "the leader published them", func() bool { return leader.Published() == 2 })
	if got := standby.Published(); got != 0 {
		t.Errorf("standby published %d events", got)
	}
	checkOncePerCartOrder(t, readStream(t, f.nats.JS, f.opts.Stream), evs)
}

// A leader that crashes after the PubAcks of handed-off events and before
// their rows are removed leaves them to the next leader, whose publications
// the stream drops as duplicates; later hand-offs go on in order.
func TestRelay_CrashAfterHandOffPublish(t *testing.T) {
	f := newFixture(t)
	var crashes atomic.Int32
	f.opts.AfterPublish = func(context.Context, []envelope.Envelope) error {
		if crashes.Add(1) == 1 {
			return errors.New("injected crash")
		}
		return nil
	}
	r := New(f.pool, f.nats.JS, f.opts, testLogger(t))
	start(t, r)
	eventually(t, 10*time.Second, "leading", r.Leading)

	c := uuid.NewString()
	want := appendQuietly(t, f.pool, c, 0, 2)
	r.Committed(want) // published, then the crash
	eventually(t, 10*time.Second, "leading again", func() bool { return crashes.Load() >= 1 && r.Leading() })
	eventually(t, 10*time.Second, "rows removed by the next leadership", func() bool { return outboxLen(t, f.pool) == 0 })
	more := appendQuietly(t, f.pool, c, 2, 2)
	r.Committed(more)
	want = append(want, more...)
	eventually(t, 10*time.Second, "outbox drained", func() bool { return outboxLen(t, f.pool) == 0 })
	checkOncePerCartOrder(t, readStream(t, f.nats.JS, f.opts.Stream), want)
}

// A handed-off event the stream refuses blocks its cart until publishing
// works: the outbox round then publishes it, and the cart's later events
// follow it.
func TestRelay_HandOffPublishFailureKeepsCartOrder(t *testing.T) {
	f := newFixture(t)
	r := New(f.pool, f.nats.JS, f.opts, testLogger(t))
	start(t, r)
	eventually(t, 10*time.Second, "leading", r.Leading)

	limitMessageSize(t, f, maxMsgSize)
	c := uuid.NewString()
	want := appendQuietly(t, f.pool, c, 0, 1)
	r.Committed(want)
	eventually(t, 10*time.Second, "version 1 published", func() bool { return streamMsgs(t, f.nats.JS, f.opts.Stream) == 1 })
	bigMD := envelope.Metadata{Actor: "customer", TraceState: "vendor=" + strings.Repeat("x", 2000)}
	big := insertEvents(t, f.pool, bigMD, c, 1, 1, false)
	r.Committed(big)
	after := appendQuietly(t, f.pool, c, 2, 1)
	r.Committed(after)
	want = append(append(want, big...), after...)
	time.Sleep(500 * time.Millisecond) // rounds go by, refused
	if n := streamMsgs(t, f.nats.JS, f.opts.Stream); n != 1 {
		t.Errorf("stream holds %d messages while version 2 is refused, want 1", n)
	}
	limitMessageSize(t, f, -1)
	eventually(t, 20*time.Second, "outbox drained once publishing works", func() bool { return outboxLen(t, f.pool) == 0 })
	checkOncePerCartOrder(t, readStream(t, f.nats.JS, f.opts.Stream), want)
}

func TestHeadsSort(t *testing.T) {
	ev := func(cart string, v int) envelope.Envelope { return envelope.Envelope{StreamID: cart, Version: v} }
	hs := heads{"a": 2, "b": 5}
	ready, deferred := hs.sort([]envelope.Envelope{
		ev("a", 4), ev("a", 3), // in order once sorted
		ev("b", 5),             // already in the stream
		ev("c", 1), ev("c", 2), // a new cart
		ev("d", 3), // unknown head
		ev("b", 7), // 6 is missing
	})
	var got []string
	for _, e := range ready {
		got = append(got, e.StreamID+string(rune('0'+e.Version)))
	}
	if strings.Join(got, " ") != "a3 a4 c1 c2" || !deferred {
		t.Errorf("ready %v deferred %v, want [a3 a4 c1 c2] true", got, deferred)
	}
	hs.published(ready)
	if hs["a"] != 4 || hs["c"] != 2 || hs["b"] != 5 {
		t.Errorf("heads %v", hs)
	}
}
