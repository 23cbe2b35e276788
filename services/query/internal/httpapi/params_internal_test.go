package httpapi

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// FuzzQueryParam: queryParam answers exactly what echo's c.QueryParams
// (url.ParseQuery) would, whichever way it takes.
func FuzzQueryParam(f *testing.F) {
	for _, q := range []string{
		"", "minVersion=3", "minVersion=3&minVersion=4", "a=1&minVersion=&at=x", "minVersion",
		"&&minVersion=5&", "minVersion=1;at=2", "min%56ersion=2", "minVersion=%zz&minVersion=4",
		"at=2026-03-01T09:30:00%2B01:00", "at=2026-03-01T09:30:00+01:00", "=x&minVersion==7",
		strings.Repeat("a=1&", 70) + "minVersion=9",
	} {
		f.Add(q, "minVersion")
		f.Add(q, "at")
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, rawQuery, name string) {
		if name == "" {
			return
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.RawQuery = rawQuery
		c := e.NewContext(req, httptest.NewRecorder())
		got, gotOK := queryParam(c, name)
		vals, _ := url.ParseQuery(rawQuery)
		want, wantOK := "", len(vals[name]) > 0
		if wantOK {
			want = vals[name][0]
		}
		if got != want || gotOK != wantOK {
			t.Errorf("queryParam(%q, %q) = %q, %v; url.ParseQuery says %q, %v", rawQuery, name, got, gotOK, want, wantOK)
		}
	})
}
