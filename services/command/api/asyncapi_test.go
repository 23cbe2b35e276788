package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	"github.com/oasdiff/yaml"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/cart/carttest"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/services/command/api"
)

const (
	source        = "urn:cart-cqrs:command"
	subjectPrefix = "cart.events"
)

// asyncDoc is the AsyncAPI document as generic JSON, with its local $refs.
type asyncDoc struct {
	root map[string]any
}

func loadAsyncAPI(t *testing.T) asyncDoc {
	t.Helper()
	b, err := yaml.YAMLToJSON(api.AsyncAPI)
	if err != nil {
		t.Fatalf("asyncapi.yaml: %v", err)
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatalf("asyncapi.yaml: %v", err)
	}
	if root["asyncapi"] != "3.0.0" {
		t.Fatalf("asyncapi = %v, want 3.0.0", root["asyncapi"])
	}
	return asyncDoc{root: root}
}

// pointer returns the node a local reference ("#/a/b") points to.
func (d asyncDoc) pointer(ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("$ref %q: only local references are supported", ref)
	}
	var node any = d.root
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := node.(map[string]any)
		if !ok || m[tok] == nil {
			return nil, fmt.Errorf("$ref %q: %q not found", ref, tok)
		}
		node = m[tok]
	}
	return node, nil
}

// resolve returns node with every $ref replaced by (a resolved copy of) its
// target; the document's schemas are not recursive.
func (d asyncDoc) resolve(t *testing.T, node any, depth int) any {
	t.Helper()
	if depth > 32 {
		t.Fatal("$ref nesting too deep (a cycle?)")
	}
	switch n := node.(type) {
	case map[string]any:
		if ref, ok := n["$ref"].(string); ok {
			target, err := d.pointer(ref)
			if err != nil {
				t.Fatal(err)
			}
			return d.resolve(t, target, depth+1)
		}
		out := make(map[string]any, len(n))
		for k, v := range n {
			out[k] = d.resolve(t, v, depth+1)
		}
		return out
	case []any:
		out := make([]any, len(n))
		for i, v := range n {
			out[i] = d.resolve(t, v, depth+1)
		}
		return out
	}
	return node
}

func (d asyncDoc) section(t *testing.T, name string) map[string]any {
	t.Helper()
	m, ok := d.root[name].(map[string]any)
	if !ok {
		t.Fatalf("asyncapi.yaml has no %s", name)
	}
	return m
}

// schema turns a resolved JSON Schema node into a validated openapi3.Schema.
func schema(t *testing.T, node any) *openapi3.Schema {
	t.Helper()
	b, err := json.Marshal(node)
	if err != nil {
		t.Fatal(err)
	}
	var s openapi3.Schema
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("schema: %v", err)
	}
	if err := s.Validate(context.Background()); err != nil {
		t.Fatalf("schema is invalid: %v", err)
	}
	return &s
}

// message is one message of the document: its event type and schemas.
type message struct {
	key      string
	payload  *openapi3.Schema
	headers  *openapi3.Schema
	examples []any
}

// messages returns the document's messages by event type (their name).
func (d asyncDoc) messages(t *testing.T) map[string]message {
	t.Helper()
	comps := d.section(t, "components")
	msgs, _ := comps["messages"].(map[string]any)
	out := map[string]message{}
	for key, raw := range msgs {
		m := d.resolve(t, raw, 0).(map[string]any)
		name, _ := m["name"].(string)
		if _, dup := out[name]; dup || name == "" {
			t.Fatalf("message %s: name %q is empty or not unique", key, name)
		}
		if m["payload"] == nil || m["headers"] == nil {
			t.Fatalf("message %s: no payload or headers", key)
		}
		examples, _ := m["examples"].([]any)
		out[name] = message{key: key, payload: schema(t, m["payload"]), headers: schema(t, m["headers"]), examples: examples}
	}
	return out
}

func validate(s *openapi3.Schema, ce []byte) error {
	var v any
	if err := json.Unmarshal(ce, &v); err != nil {
		return err
	}
	return s.VisitJSON(v, openapi3.EnableFormatValidation(), openapi3.MultiErrors())
}

func cloudEvent(t *testing.T, typ string, schemaVersion int, data []byte, md envelope.Metadata) []byte {
	t.Helper()
	b, err := envelope.MarshalCloudEvent(envelope.Envelope{
		EventID: mustUUID(t), StreamID: mustUUID(t), StreamType: envelope.StreamTypeCart, Version: 3,
		Type: typ, SchemaVersion: schemaVersion, Data: data, Metadata: md,
		OccurredAt: time.Date(2026, 11, 2, 9, 30, 0, 123456789, time.UTC),
	}, source)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustUUID(t *testing.T) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

var requestMetadata = envelope.Metadata{Actor: "alice", CorrelationID: "req-1", CausationID: "req-1"}

// TestAsyncAPIDescribesEveryEvent: every event type has a message, a channel
// on its NATS subject and a receive operation, and no message is stale.
func TestAsyncAPIDescribesEveryEvent(t *testing.T) {
	d := loadAsyncAPI(t)
	msgs := d.messages(t)
	for name := range msgs {
		if _, ok := cart.SchemaVersion[name]; !ok {
			t.Errorf("message %s is not a cart event type", name)
		}
	}
	if s, _ := d.section(t, "servers")["local"].(map[string]any); s["protocol"] != "nats" || s["host"] != "localhost:4222" {
		t.Errorf("servers.local = %v, want NATS at localhost:4222", s)
	}
	channels, operations := d.section(t, "channels"), d.section(t, "operations")
	for typ := range cart.SchemaVersion {
		t.Run(typ, func(t *testing.T) {
			if _, ok := msgs[typ]; !ok {
				t.Fatalf("no message named %s", typ)
			}
			address := envelope.Subject(subjectPrefix, "{cartId}", typ)
			var key string
			for k, raw := range channels {
				if c := raw.(map[string]any); c["address"] == address {
					key = k
					ch := d.resolve(t, c, 0).(map[string]any)
					if params, _ := ch["parameters"].(map[string]any); params["cartId"] == nil {
						t.Errorf("channel %s: no cartId parameter", k)
					}
					chMsgs, _ := ch["messages"].(map[string]any)
					if len(chMsgs) != 1 {
						t.Errorf("channel %s: %d messages, want 1", k, len(chMsgs))
					}
					for _, m := range chMsgs {
						if m.(map[string]any)["name"] != typ {
							t.Errorf("channel %s carries %v, want %s", k, m.(map[string]any)["name"], typ)
						}
					}
				}
			}
			if key == "" {
				t.Fatalf("no channel with address %s", address)
			}
			received := false
			for _, raw := range operations {
				op := raw.(map[string]any)
				ch, _ := op["channel"].(map[string]any)
				if ch["$ref"] == "#/channels/"+key && op["action"] == "receive" {
					received = true
				}
			}
			if !received {
				t.Errorf("no receive operation on channel %s", key)
			}
		})
	}
}

// TestAsyncAPIStoredEvents: the stored example of every type and schema
// version, published as a CloudEvent, matches its message; every version up
// to today's has one, and the next version is not described yet.
func TestAsyncAPIStoredEvents(t *testing.T) {
	msgs := loadAsyncAPI(t).messages(t)
	stored := map[string][]byte{}
	for _, ev := range carttest.MustStoredEvents(t) {
		stored[ev.Name()] = ev.Data
	}
	for typ, cur := range cart.SchemaVersion {
		m, ok := msgs[typ]
		if !ok {
			t.Errorf("no message for %s", typ)
			continue
		}
		var latest []byte
		for v := 1; v <= cur; v++ {
			name := fmt.Sprintf("%s.v%d", typ, v)
			data, ok := stored[name]
			if !ok {
				t.Errorf("%s: no stored example", name)
				continue
			}
			latest = data
			if err := validate(m.payload, cloudEvent(t, typ, v, data, requestMetadata)); err != nil {
				t.Errorf("%s does not match message %s: %v", name, m.key, err)
			}
		}
		if latest != nil {
			if err := validate(m.payload, cloudEvent(t, typ, cur+1, latest, requestMetadata)); err == nil {
				t.Errorf("%s v%d (not written yet) matches message %s", typ, cur+1, m.key)
			}
		}
	}
}

// TestAsyncAPIFreshEvents: events as the command service writes them today
// match their messages, with and without trace context.
func TestAsyncAPIFreshEvents(t *testing.T) {
	msgs := loadAsyncAPI(t).messages(t)
	events := []cart.Event{
		cart.Opened{CustomerID: "alice"},
		cart.ItemAdded{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 2},
		cart.ItemRemoved{ProductID: "123", Quantity: 2, Reason: cart.ReasonCustomer},
		cart.QuantityChanged{ProductID: "456", OldQuantity: 2, NewQuantity: 3},
		cart.CheckedOut{Lines: []cart.Line{{ProductID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Quantity: 3, LineTotal: 3750}},
			ItemCount: 3, Total: 3750, Currency: "EUR"},
	}
	traced := requestMetadata
	traced.TraceParent, traced.TraceState = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "vendor=abc"
	seen := map[string]bool{}
	for _, ev := range events {
		for _, md := range []envelope.Metadata{requestMetadata, traced} {
			e, err := envelope.New(mustUUID(t), mustUUID(t), 1, ev, md, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			b, err := envelope.MarshalCloudEvent(e, source)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(msgs[e.Type].payload, b); err != nil {
				t.Errorf("fresh %s v%d does not match its message: %v\n%s", e.Type, e.SchemaVersion, err, b)
			}
			seen[e.Type] = true
		}
	}
	for typ := range cart.SchemaVersion {
		if !seen[typ] {
			t.Errorf("no fresh %s event tested", typ)
		}
	}
}

// TestAsyncAPIRejects: the schemas are not vacuous.
func TestAsyncAPIRejects(t *testing.T) {
	msgs := loadAsyncAPI(t).messages(t)
	itemAddedV1 := carttest.MustStoredEvent(t, cart.TypeItemAdded, 1)
	good := cloudEvent(t, cart.TypeItemAdded, 2, []byte(`{"productId":"123","name":"E","unitPrice":{"amount":1899,"currency":"EUR"},"quantity":2}`), requestMetadata)
	edit := func(f func(map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	if err := validate(msgs[cart.TypeItemAdded].payload, good); err != nil {
		t.Fatalf("the base case does not match: %v", err)
	}
	for name, c := range map[string]struct {
		typ string
		ce  []byte
	}{
		"v2 with a flat price":    {cart.TypeItemAdded, cloudEvent(t, cart.TypeItemAdded, 2, itemAddedV1, requestMetadata)},
		"v1 with a money price":   {cart.TypeItemAdded, edit(func(m map[string]any) { m["schemaversion"] = 1 })},
		"no streamversion":        {cart.TypeItemAdded, edit(func(m map[string]any) { delete(m, "streamversion") })},
		"streamversion 0":         {cart.TypeItemAdded, edit(func(m map[string]any) { m["streamversion"] = 0 })},
		"no actor":                {cart.TypeItemAdded, edit(func(m map[string]any) { delete(m, "actor") })},
		"subject not a cart id":   {cart.TypeItemAdded, edit(func(m map[string]any) { m["subject"] = "alice" })},
		"time not a time":         {cart.TypeItemAdded, edit(func(m map[string]any) { m["time"] = "yesterday" })},
		"an undocumented field":   {cart.TypeItemAdded, edit(func(m map[string]any) { m["data"].(map[string]any)["discount"] = 1 })},
		"zero quantity":           {cart.TypeItemAdded, edit(func(m map[string]any) { m["data"].(map[string]any)["quantity"] = 0 })},
		"another message's event": {cart.TypeOpened, good},
		"another event's type":    {cart.TypeItemAdded, edit(func(m map[string]any) { m["type"] = cart.TypeOpened })},
		"an unknown reason": {cart.TypeItemRemoved,
			cloudEvent(t, cart.TypeItemRemoved, 1, []byte(`{"productId":"1","quantity":1,"reason":"lost"}`), requestMetadata)},
	} {
		t.Run(name, func(t *testing.T) {
			if err := validate(msgs[c.typ].payload, c.ce); err == nil {
				t.Fatalf("message %s accepted %s", msgs[c.typ].key, c.ce)
			}
		})
	}
}

// TestAsyncAPIDocumentExamples: the examples in the document match their
// message's headers and payload, and say the payload's type.
func TestAsyncAPIDocumentExamples(t *testing.T) {
	for typ, m := range loadAsyncAPI(t).messages(t) {
		if len(m.examples) == 0 {
			t.Errorf("message %s has no example", m.key)
		}
		for i, raw := range m.examples {
			ex, _ := raw.(map[string]any)
			payload, _ := ex["payload"].(map[string]any)
			if err := m.payload.VisitJSON(payload, openapi3.EnableFormatValidation(), openapi3.MultiErrors()); err != nil {
				t.Errorf("message %s example %d payload: %v", m.key, i, err)
			}
			if err := m.headers.VisitJSON(ex["headers"], openapi3.EnableFormatValidation()); err != nil {
				t.Errorf("message %s example %d headers: %v", m.key, i, err)
			}
			if h, _ := ex["headers"].(map[string]any); payload["type"] != typ || h["Nats-Msg-Id"] != payload["id"] {
				t.Errorf("message %s example %d: type %v, Nats-Msg-Id %v, id %v", m.key, i, payload["type"], h["Nats-Msg-Id"], payload["id"])
			}
		}
	}
}
