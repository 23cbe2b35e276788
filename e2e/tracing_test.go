package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/telemetry"
)

var (
	recorderOnce sync.Once
	recorder     *tracetest.SpanRecorder
)

// spanRecorder installs, once per test process, a global tracer provider
// that records in memory. It samples only traces a sampled caller started,
// so the other tests running alongside record nothing.
func spanRecorder() *tracetest.SpanRecorder {
	recorderOnce.Do(func() {
		recorder = tracetest.NewSpanRecorder()
		telemetry.Install(sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())),
			sdktrace.WithSpanProcessor(recorder)))
	})
	return recorder
}

// TestTraceThroughAllServices follows one client trace: an add-item
// command through the command service and its append to PostgreSQL, the
// relay's publication (the trace context stored with the event, then in the
// NATS traceparent header), the projector's processing and Redis write, and
// the read of the result from the query service.
func TestTraceThroughAllServices(t *testing.T) {
	rec := spanRecorder()
	s := mustStart(t, options{})
	tok := token(t, customer("traced"), "")

	// The client (a frontend, say) starts the trace and sends it along.
	client := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, root := client.Tracer("e2e").Start(context.Background(), "put a mug in the cart")
	opened := tracedRequest(t, ctx, http.MethodPost, s.commandURL+"/v1/carts", tok, nil)
	cartID := opened["cartId"].(string)
	tracedRequest(t, ctx, http.MethodPost, s.commandURL+"/v1/carts/"+cartID+"/add-item", tok, item("456", 1))
	got := tracedRequest(t, ctx, http.MethodGet, s.queryURL+"/v1/carts/"+cartID+"?minVersion=2", tok, nil)
	root.End()
	if got["version"].(float64) != 2 {
		t.Fatalf("query answered version %v", got["version"])
	}
	traceID := root.SpanContext().TraceID()

	var spans []sdktrace.ReadOnlySpan
	find := func(name string, version int, parent trace.SpanContext) (sdktrace.ReadOnlySpan, error) {
		for _, sp := range spans {
			if sp.Name() != name || sp.SpanContext().TraceID() != traceID {
				continue
			}
			if version > 0 && !hasAttr(sp, "cart.version", int64(version)) {
				continue
			}
			if parent.IsValid() && sp.Parent().SpanID() != parent.SpanID() {
				continue
			}
			return sp, nil
		}
		return nil, fmt.Errorf("no span %q (version %d) under %s in the trace", name, version, parent.SpanID())
	}
	var server, appendSpan, publish, process, save, query sdktrace.ReadOnlySpan
	eventually(t, 15*time.Second, "the trace reaches the projector's Redis write", func() (err error) {
		spans = rec.Ended()
		if server, err = find("POST /v1/carts/:cartId/add-item", 0, root.SpanContext()); err != nil {
			return err
		}
		if appendSpan, err = find("cart.append", 2, server.SpanContext()); err != nil {
			return err
		}
		if publish, err = find("publish "+streamName(t, s), 2, server.SpanContext()); err != nil {
			return err
		}
		if process, err = find("process "+streamName(t, s), 2, publish.SpanContext()); err != nil {
			return err
		}
		if save, err = find("cart.save", 0, process.SpanContext()); err != nil {
			return err
		}
		if query, err = find("GET /v1/carts/:cartId", 0, root.SpanContext()); err != nil {
			return err
		}
		for _, sp := range spans {
			if sp.Parent().SpanID() == query.SpanContext().SpanID() && hasAttr(sp, "db.system", "redis") {
				return nil
			}
		}
		var names []string
		for _, sp := range spans {
			if sp.SpanContext().TraceID() == traceID {
				names = append(names, fmt.Sprintf("%s(parent %s, %v)", sp.Name(), sp.Parent().SpanID(), sp.Attributes()))
			}
		}
		return fmt.Errorf("no Redis span under the query's span %s: %v", query.SpanContext().SpanID(), names)
	})
	if publish.SpanKind() != trace.SpanKindProducer || process.SpanKind() != trace.SpanKindConsumer ||
		server.SpanKind() != trace.SpanKindServer || query.SpanKind() != trace.SpanKindServer {
		t.Errorf("span kinds: server %v, publish %v, process %v, query %v",
			server.SpanKind(), publish.SpanKind(), process.SpanKind(), query.SpanKind())
	}
	if !process.EndTime().After(save.EndTime()) && !process.EndTime().Equal(save.EndTime()) {
		t.Errorf("processing ended before the write")
	}
	if appendSpan.Status().Code != 0 || save.Status().Code != 0 {
		t.Errorf("statuses: append %v, save %v", appendSpan.Status(), save.Status())
	}

	// The event stored the request's trace context; the message carries it as
	// the CloudEvents extension and the publish span's as its traceparent
	// header, both under lowercase names.
	evs, err := eventlog.ReadStream(t.Context(), s.pool, cartID, 1, 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events after v1: %d, %v", len(evs), err)
	}
	want := traceparent(server.SpanContext())
	if evs[0].Metadata.TraceParent != want {
		t.Errorf("stored traceparent %q, want the request's %q", evs[0].Metadata.TraceParent, want)
	}
	msg, err := s.stream.GetLastMsgForSubject(t.Context(), envelope.Subject(s.subjectPrefix(t), cartID, "cart.item-added"))
	if err != nil {
		t.Fatal(err)
	}
	if h := msg.Header["traceparent"]; len(h) != 1 || h[0] != traceparent(publish.SpanContext()) {
		t.Errorf("NATS header traceparent %q, want the publish span's %q (headers %v)", h, traceparent(publish.SpanContext()), msg.Header)
	}
	var ce map[string]any
	if err := json.Unmarshal(msg.Data, &ce); err != nil {
		t.Fatal(err)
	}
	if ce["traceparent"] != want {
		t.Errorf("CloudEvent traceparent %v, want %q", ce["traceparent"], want)
	}
}

// tracedRequest sends a request in ctx's trace and decodes its JSON answer;
// anything but a 2xx fails the test.
func tracedRequest(t *testing.T, ctx context.Context, method, url, tok string, body any) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	telemetry.Propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := clientFor(req.URL.Host).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s %v", method, url, resp.StatusCode, b, err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return out
}

func traceparent(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

func hasAttr(sp sdktrace.ReadOnlySpan, key string, value any) bool {
	for _, kv := range sp.Attributes() {
		if string(kv.Key) == key && kv.Value.AsInterface() == value {
			return true
		}
	}
	return false
}

func streamName(t *testing.T, s *system) string {
	t.Helper()
	info, err := s.stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.Config.Name
}

// subjectPrefix is the stream's subject without its trailing ".>".
func (s *system) subjectPrefix(t *testing.T) string {
	t.Helper()
	info, err := s.stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(info.Config.Subjects[0], ".>")
}
