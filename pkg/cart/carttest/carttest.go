// Package carttest holds, for tests, a stored example of every cart event
// type at every schema version ever written: the data exactly as it was
// stored. Tests across the services decode, fold, publish, fuzz and validate
// them against the AsyncAPI document, so an old version that stops working
// fails somewhere. A new schema version adds a file events/<type>.v<N>.json.
package carttest

import (
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"testing"
)

//go:embed events/*.json
var files embed.FS

// Stored is one stored example.
type Stored struct {
	Type          string
	SchemaVersion int
	Data          []byte
}

// Name is "<type>.v<schema version>", the example's file name without .json.
func (s Stored) Name() string { return s.Type + ".v" + strconv.Itoa(s.SchemaVersion) }

// StoredEvents returns every example, ordered by name.
func StoredEvents() ([]Stored, error) {
	entries, err := fs.ReadDir(files, "events")
	if err != nil {
		return nil, fmt.Errorf("carttest: %w", err)
	}
	out := make([]Stored, 0, len(entries))
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".json")
		i := strings.LastIndex(name, ".v")
		v, err := strconv.Atoi(name[i+2:])
		if i < 0 || err != nil || v < 1 {
			return nil, fmt.Errorf("carttest: %s is not <type>.v<N>.json", e.Name())
		}
		data, err := fs.ReadFile(files, "events/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("carttest: %w", err)
		}
		out = append(out, Stored{Type: name[:i], SchemaVersion: v, Data: data})
	}
	return out, nil
}

// MustStoredEvents is StoredEvents for a test.
func MustStoredEvents(tb testing.TB) []Stored {
	tb.Helper()
	evs, err := StoredEvents()
	if err != nil {
		tb.Fatal(err)
	}
	return evs
}

// MustStoredEvent returns the example of one type and schema version, or
// fails the test.
func MustStoredEvent(tb testing.TB, typ string, schemaVersion int) []byte {
	tb.Helper()
	for _, s := range MustStoredEvents(tb) {
		if s.Type == typ && s.SchemaVersion == schemaVersion {
			return s.Data
		}
	}
	tb.Fatalf("carttest: no stored example of %s v%d", typ, schemaVersion)
	return nil
}
