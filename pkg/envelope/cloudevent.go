package envelope

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
)

// CloudEvents extension attributes carried by every message.
const (
	ExtStreamVersion = "streamversion"
	ExtSchemaVersion = "schemaversion"
	ExtCorrelationID = "correlationid"
	ExtCausationID   = "causationid"
	ExtActor         = "actor"
	ExtTraceParent   = "traceparent"
	ExtTraceState    = "tracestate"
)

// ContentType is the content type of a structured-mode CloudEvent.
const ContentType = "application/cloudevents+json"

// MarshalCloudEvent encodes an envelope as a CloudEvents 1.0 event in JSON
// structured mode: id = event id, subject = cart id, the stream version and
// schema version as extensions.
//
// An envelope as the command service stores them is written straight from a
// struct; anything unusual (data that is not a JSON object, attributes the
// SDK would trim or refuse) goes through the CloudEvents SDK, which says
// what is wrong. Both write the same event (FuzzMarshalOwnShape).
func MarshalCloudEvent(e Envelope, source string) ([]byte, error) {
	if b, ok := marshalOwn(e, source); ok {
		return b, nil
	}
	return marshalSDK(e, source)
}

// marshalOwn writes e in the shape unmarshalOwn reads; ok is false when e
// does not fit it.
func marshalOwn(e Envelope, source string) ([]byte, bool) {
	data := jsontext.Value(e.Data)
	if !ownAttributes(e.EventID, source, e.Type, e.StreamID) || e.Version < 1 || e.Version > math.MaxInt32 ||
		e.SchemaVersion < 1 || e.SchemaVersion > math.MaxInt32 || e.OccurredAt.IsZero() ||
		len(data) == 0 || data[0] != '{' || !data.IsValid() {
		return nil, false
	}
	b, err := jsonv2.Marshal(ownEvent{
		SpecVersion: cloudevents.CloudEventsVersionV1, ID: e.EventID, Source: source, Type: e.Type,
		Subject: e.StreamID, Time: e.OccurredAt.UTC(), DataContentType: cloudevents.ApplicationJSON, Data: data,
		StreamVersion: e.Version, SchemaVersion: e.SchemaVersion,
		CorrelationID: e.Metadata.CorrelationID, CausationID: e.Metadata.CausationID, Actor: e.Metadata.Actor,
		TraceParent: e.Metadata.TraceParent, TraceState: e.Metadata.TraceState,
	})
	return b, err == nil
}

// ownAttributes reports whether the context attributes are as the SDK
// keeps them: present, untrimmed, and the source a URI reference.
func ownAttributes(id, source, typ, subject string) bool {
	for _, a := range []string{id, source, typ, subject} {
		if a == "" || strings.TrimSpace(a) != a || !utf8.ValidString(a) {
			return false
		}
	}
	u, err := url.Parse(source)
	return err == nil && u.String() != ""
}

func marshalSDK(e Envelope, source string) ([]byte, error) {
	ce := cloudevents.New(cloudevents.CloudEventsVersionV1)
	ce.SetID(e.EventID)
	ce.SetSource(source)
	ce.SetType(e.Type)
	ce.SetSubject(e.StreamID)
	ce.SetTime(e.OccurredAt)
	ce.SetExtension(ExtStreamVersion, int32(e.Version))
	ce.SetExtension(ExtSchemaVersion, int32(e.SchemaVersion))
	for name, v := range map[string]string{
		ExtCorrelationID: e.Metadata.CorrelationID, ExtCausationID: e.Metadata.CausationID, ExtActor: e.Metadata.Actor,
		ExtTraceParent: e.Metadata.TraceParent, ExtTraceState: e.Metadata.TraceState,
	} {
		if v != "" {
			ce.SetExtension(name, v)
		}
	}
	// A json.RawMessage (not []byte) is embedded as JSON rather than base64.
	if err := ce.SetData(cloudevents.ApplicationJSON, e.Data); err != nil {
		return nil, fmt.Errorf("envelope: cloudevent %s data: %w", e.EventID, err)
	}
	if err := ce.Validate(); err != nil {
		return nil, fmt.Errorf("envelope: cloudevent %s: %w", e.EventID, err)
	}
	b, err := json.Marshal(ce)
	if err != nil {
		return nil, fmt.Errorf("envelope: marshal cloudevent %s: %w", e.EventID, err)
	}
	return b, nil
}

// ErrNotCartEvent is returned for a message that is not a CloudEvent of a cart
// stream this code can read.
var ErrNotCartEvent = errors.New("envelope: not a cart cloudevent")

// UnmarshalCloudEvent decodes a message written by MarshalCloudEvent.
//
// Messages of exactly the shape MarshalCloudEvent writes are read straight
// into a struct; anything else (extensions of other publishers, data_base64,
// string-typed numbers) goes through the CloudEvents SDK, which reads any
// JSON-format CloudEvent. Both paths accept and refuse the same events of
// that shape (FuzzUnmarshalCloudEvent holds them to it).
func UnmarshalCloudEvent(b []byte) (Envelope, error) {
	if e, ok := unmarshalOwn(b); ok {
		return e, nil
	}
	return unmarshalSDK(b)
}

// ownEvent is the JSON MarshalCloudEvent writes.
type ownEvent struct {
	SpecVersion     string         `json:"specversion"`
	ID              string         `json:"id"`
	Source          string         `json:"source"`
	Type            string         `json:"type"`
	Subject         string         `json:"subject"`
	Time            time.Time      `json:"time"`
	DataContentType string         `json:"datacontenttype"`
	Data            jsontext.Value `json:"data"`
	StreamVersion   int            `json:"streamversion"`
	SchemaVersion   int            `json:"schemaversion"`
	CorrelationID   string         `json:"correlationid,omitzero"`
	CausationID     string         `json:"causationid,omitzero"`
	Actor           string         `json:"actor,omitzero"`
	TraceParent     string         `json:"traceparent,omitzero"`
	TraceState      string         `json:"tracestate,omitzero"`
}

// unmarshalOwn reads a message of MarshalCloudEvent's shape; ok is false for
// anything else, valid or not, which the SDK then judges.
func unmarshalOwn(b []byte) (Envelope, bool) {
	// Exact member names, no duplicates, no unknown members: what the SDK
	// might read differently is left to the SDK.
	var ce ownEvent
	if jsonv2.Unmarshal(b, &ce, jsonv2.RejectUnknownMembers(true)) != nil {
		return Envelope{}, false
	}
	if ce.SpecVersion != cloudevents.CloudEventsVersionV1 || !ownAttributes(ce.ID, ce.Source, ce.Type, ce.Subject) ||
		ce.Time.IsZero() || ce.DataContentType != cloudevents.ApplicationJSON || len(ce.Data) == 0 || ce.Data[0] != '{' ||
		ce.StreamVersion < 1 || ce.StreamVersion > math.MaxInt32 || ce.SchemaVersion < 1 || ce.SchemaVersion > math.MaxInt32 {
		return Envelope{}, false
	}
	return Envelope{
		EventID: ce.ID, StreamID: ce.Subject, StreamType: StreamTypeCart, Version: ce.StreamVersion,
		Type: ce.Type, SchemaVersion: ce.SchemaVersion, Data: json.RawMessage(ce.Data), OccurredAt: ce.Time.UTC(),
		Metadata: Metadata{
			Actor: ce.Actor, CorrelationID: ce.CorrelationID, CausationID: ce.CausationID,
			TraceParent: ce.TraceParent, TraceState: ce.TraceState,
		},
	}, true
}

func unmarshalSDK(b []byte) (Envelope, error) {
	var ce cloudevents.Event
	if err := json.Unmarshal(b, &ce); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrNotCartEvent, err)
	}
	if err := ce.Validate(); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrNotCartEvent, err)
	}
	ext := ce.Extensions()
	version, err := types.ToInteger(ext[ExtStreamVersion])
	if err != nil || version < 1 {
		return Envelope{}, fmt.Errorf("%w: event %s: bad %s", ErrNotCartEvent, ce.ID(), ExtStreamVersion)
	}
	schema, err := types.ToInteger(ext[ExtSchemaVersion])
	if err != nil || schema < 1 {
		return Envelope{}, fmt.Errorf("%w: event %s: bad %s", ErrNotCartEvent, ce.ID(), ExtSchemaVersion)
	}
	if ce.Subject() == "" {
		return Envelope{}, fmt.Errorf("%w: event %s: no subject", ErrNotCartEvent, ce.ID())
	}
	str := func(name string) string {
		s, _ := types.ToString(ext[name]) // absent optional attributes read as ""
		return s
	}
	return Envelope{
		EventID: ce.ID(), StreamID: ce.Subject(), StreamType: StreamTypeCart, Version: int(version),
		Type: ce.Type(), SchemaVersion: int(schema), Data: json.RawMessage(ce.Data()), OccurredAt: ce.Time().UTC(),
		Metadata: Metadata{
			Actor: str(ExtActor), CorrelationID: str(ExtCorrelationID), CausationID: str(ExtCausationID),
			TraceParent: str(ExtTraceParent), TraceState: str(ExtTraceState),
		},
	}, nil
}

// UnmarshalCartEvent is UnmarshalCloudEvent for the consumers of the cart
// stream: the subject must also be a cart id — a UUID, as the event log's
// stream_id — and comes back in the log's (canonical) form, which keys,
// parking and gap repairs rely on. Anything else is ErrNotCartEvent.
func UnmarshalCartEvent(b []byte) (Envelope, error) {
	env, err := UnmarshalCloudEvent(b)
	if err != nil {
		return Envelope{}, err
	}
	id, err := uuid.Parse(env.StreamID)
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: subject %q is not a cart id", ErrNotCartEvent, env.StreamID)
	}
	env.StreamID = id.String()
	return env, nil
}
