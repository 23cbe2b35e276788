package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cart-cqrs/cart/pkg/telemetry"
)

const sampleParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		on, bad bool
	}{
		{env: nil},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "zipkin"}, bad: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, bad: true},
	} {
		on, err := telemetry.Enabled(env(tc.env))
		if on != tc.on || (err != nil) != tc.bad {
			t.Errorf("%v: on %v, err %v", tc.env, on, err)
		}
	}
}

// TestSetupExportsOverOTLP: configured by the standard variables, the
// spans reach an OTLP/HTTP endpoint by the time shutdown returns.
func TestSetupExportsOverOTLP(t *testing.T) {
	var posts atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // read only to count a well-formed export
		if r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" && len(body) > 0 {
			posts.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	vars := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL, "OTEL_SERVICE_NAME": "cart-test"}
	for k, v := range vars {
		t.Setenv(k, v) // the exporter reads the process environment itself
	}
	before := otel.GetTracerProvider()
	defer otel.SetTracerProvider(before)

	shutdown, err := telemetry.Setup(t.Context(), env(vars), "command")
	if err != nil {
		t.Fatal(err)
	}
	_, span := telemetry.Tracer().Start(t.Context(), "cart.append")
	span.End()
	if err := shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("no spans reached the collector")
	}
}

func TestSetupOffInstallsNothing(t *testing.T) {
	before := otel.GetTracerProvider()
	shutdown, err := telemetry.Setup(t.Context(), env(nil), "query")
	if err != nil {
		t.Fatal(err)
	}
	if otel.GetTracerProvider() != before {
		t.Error("a tracer provider was installed without configuration")
	}
	if err := shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestTraceContextRoundTrip: what is stored with an event continues the
// trace it came from, and malformed values are ignored.
func TestTraceContextRoundTrip(t *testing.T) {
	ctx := telemetry.WithTraceContext(context.Background(), sampleParent, "vendor=abc")
	tp, ts := telemetry.TraceContext(ctx)
	if tp != sampleParent || ts != "vendor=abc" {
		t.Errorf("round trip: %q %q", tp, ts)
	}
	for _, bad := range []string{"", "00-zz-yy-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		if tp, _ := telemetry.TraceContext(telemetry.WithTraceContext(context.Background(), bad, "")); tp != "" {
			t.Errorf("%q was taken: %q", bad, tp)
		}
	}
}

// TestNATSHeaderLowercase: other teams' subscribers read "traceparent"; NATS
// header names are case-sensitive.
func TestNATSHeaderLowercase(t *testing.T) {
	h := nats.Header{}
	telemetry.Propagator.Inject(telemetry.WithTraceContext(context.Background(), sampleParent, ""), telemetry.NATSHeader(h))
	if got := h["traceparent"]; len(got) != 1 || got[0] != sampleParent {
		t.Errorf("headers %v", h)
	}
	if _, ok := h["Traceparent"]; ok {
		t.Errorf("canonicalized header in %v", h)
	}
	ctx := telemetry.Propagator.Extract(context.Background(), telemetry.NATSHeader(h))
	if sc := trace.SpanContextFromContext(ctx); sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !sc.IsRemote() {
		t.Errorf("extracted %v", sc)
	}
}

// TestLogHandler: a line logged with a context carries its trace, span and
// correlation ids; without them, none.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil))).With("service", "projector")
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	ctx, span := tp.Tracer("test").Start(telemetry.WithCorrelationID(context.Background(), "order-42"), "work")
	defer span.End()

	logger.InfoContext(ctx, "applied")
	logger.Info("no context")
	dec := json.NewDecoder(&buf)
	var with, without map[string]any
	if err := dec.Decode(&with); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&without); err != nil {
		t.Fatal(err)
	}
	sc := span.SpanContext()
	if with[telemetry.LogTraceID] != sc.TraceID().String() || with[telemetry.LogSpanID] != sc.SpanID().String() ||
		with[telemetry.LogCorrelationID] != "order-42" || with["service"] != "projector" {
		t.Errorf("with context: %v", with)
	}
	if _, ok := without[telemetry.LogTraceID]; ok {
		t.Errorf("without context: %v", without)
	}
}

// TestChildSpansOnly: client instrumentation makes no trace of its own.
func TestChildSpansOnly(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	before := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	defer otel.SetTracerProvider(before)

	tr := telemetry.ChildSpansOnly().Tracer("redis")
	_, orphan := tr.Start(context.Background(), "hget")
	orphan.End()
	ctx, parent := otel.Tracer("test").Start(context.Background(), "request")
	_, child := tr.Start(ctx, "hget")
	child.End()
	parent.End()
	ended := rec.Ended()
	if len(ended) != 2 || ended[0].Name() != "hget" || ended[0].Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("ended spans: %v", ended)
	}
}
