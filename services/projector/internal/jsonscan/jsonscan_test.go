package jsonscan_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/services/projector/internal/jsonscan"
)

// doc is what the tests read: one field of every kind a Scanner reads.
type doc struct {
	S string           `json:"s"`
	N int64            `json:"n"`
	I int              `json:"i"`
	T time.Time        `json:"t"`
	A []int            `json:"a"`
	O *struct{ K int } `json:"o"`
}

func scan(b []byte) (doc, bool) {
	s := jsonscan.New(b)
	var d doc
	ok := s.Object(func(key string) bool {
		switch key {
		case "s":
			return s.String(&d.S)
		case "n":
			return s.Int64(&d.N)
		case "i":
			return s.Int(&d.I)
		case "t":
			return s.Time(&d.T)
		case "a":
			d.A = []int{}
			return s.Array(func() bool {
				var n int
				if !s.Int(&n) {
					return false
				}
				d.A = append(d.A, n)
				return true
			})
		case "o":
			d.O = &struct{ K int }{}
			return s.Object(func(key string) bool { return key == "K" && s.Int(&d.O.K) })
		}
		return false
	})
	return d, ok && s.End()
}

// check reports whether the Scanner read b, failing t if json.Unmarshal
// reads it differently.
func check(t *testing.T, b []byte) bool {
	t.Helper()
	got, ok := scan(b)
	if !ok {
		return false
	}
	var want doc
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: scanned %+v, json.Unmarshal fails: %v", b, got, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", b, got, want)
	}
	return true
}

func TestScanner(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, b := range []string{
			`{}`, ` { } `, "\t{\r\n}\n",
			`{"s": "Crème brûlée", "n": -123456789012345678, "i": 0, "t": "2026-03-01T09:30:00.5+01:00", "a": [1, -2, 3], "o": {"K": 7}}`,
			`{"s":"","n":-0,"a":[],"o":{}}`,
			`{"n": 999999999999999999}`,
		} {
			if !check(t, []byte(b)) {
				t.Errorf("%s: not read", b)
			}
		}
	})
	t.Run("Malformed", func(t *testing.T) {
		for _, b := range []string{
			``, ` `, `null`, `[]`, `"s"`, `{`, `{"s"`, `{"s":`, `{"s": "x"`, `{"s": "x",}`, `{"s" "x"}`, `{"s": "x"} {}`,
			`{s: "x"}`, `{"s": 'x'}`, `{"s": "x" "n": 1}`,
			// Strings: truncated, escapes (valid or not), control characters, invalid UTF-8.
			`{"s": "abc`, `{"s": "abc\`, `{"s": "a\"b"}`, `{"s": "a\nb"}`, `{"s": "\u00e9"}`, `{"s": "a\qb"}`, `{"s": "a\u12"}`,
			"{\"s\": \"a\tb\"}", "{\"s\": \"\xff\"}", "{\"s\": \"\xc3\"}", "{\"s\": \"\xed\xa0\x80\"}", `{"s\"": "x"}`,
			// Numbers: huge, fractions, exponents, leading zeros, signs, non-numbers.
			`{"n": 1234567890123456789}`, `{"n": 99999999999999999999999}`, `{"n": -1234567890123456789}`,
			`{"n": 1.0}`, `{"n": 1e2}`, `{"n": 1E2}`, `{"n": 01}`, `{"n": -01}`, `{"n": -}`, `{"n": +1}`, `{"n": --1}`,
			`{"n": "1"}`, `{"n": null}`, `{"n": true}`, `{"n": 1`,
			// Times: not RFC 3339, not a string.
			`{"t": "2026-13-01T00:00:00Z"}`, `{"t": "2026-03-01"}`, `{"t": 0}`, `{"t": null}`,
			// Arrays: unclosed, trailing comma, missing comma, wrong element.
			`{"a": [1`, `{"a": [1,]}`, `{"a": [1 2]}`, `{"a": [,]}`, `{"a": ["1"]}`, `{"a": [[1]]}`, `{"a": null}`,
			// Nested objects where not allowed, unknown and duplicate keys.
			`{"s": {}}`, `{"n": {"K": 1}}`, `{"o": {"K": {}}}`, `{"o": {"J": 1}}`, `{"x": 1}`, `{"S": "x"}`,
			`{"s": "a", "s": "b"}`, `{"o": {"K": 1, "K": 2}}`,
		} {
			if check(t, []byte(b)) {
				t.Errorf("%s: read, want false", b)
			}
		}
	})
	t.Run("TooManyKeys", func(t *testing.T) {
		keys := make([]string, jsonscan.MaxKeys+1)
		for i := range keys {
			keys[i] = `"k` + string(rune('a'+i)) + `": 1`
		}
		for n, want := range map[int]bool{jsonscan.MaxKeys: true, jsonscan.MaxKeys + 1: false} {
			s := jsonscan.New([]byte("{" + strings.Join(keys[:n], ", ") + "}"))
			var v int
			if got := s.Object(func(string) bool { return s.Int(&v) }) && s.End(); got != want {
				t.Errorf("%d keys: read %v, want %v", n, got, want)
			}
		}
	})
	t.Run("StringCopies", func(t *testing.T) {
		b := []byte(`"abc"`)
		s := jsonscan.New(b)
		var v string
		if !s.String(&v) || !s.End() {
			t.Fatal("not read")
		}
		b[1] = 'x'
		if v != "abc" {
			t.Errorf("String shares the input: %q", v)
		}
	})
}

func FuzzScanner(f *testing.F) {
	f.Add([]byte(`{"s": "Crème", "n": -12, "i": 3, "t": "2026-03-01T09:30:00Z", "a": [1, 2], "o": {"K": 7}}`))
	f.Add([]byte(`{"s":"a\u00e9","n":1e2,"a":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
	})
}
