package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProblemJSON(t *testing.T) {
	var v Validation
	v.Add("subscriber.email", "required", "this field is required")
	p := v.Problem().With("code", "x")
	p.Instance = "urn:certdesk:request:1"
	rec := httptest.NewRecorder()
	Write(rec, p)
	if rec.Code != 422 || rec.Header().Get("Content-Type") != ContentType {
		t.Fatalf("%d %s", rec.Code, rec.Header())
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["type"] != TypeValidation || m["status"] != float64(422) || m["code"] != "x" || m["title"] == "" ||
		m["errors"].([]any)[0].(map[string]any)["field"] != "subscriber.email" {
		t.Fatalf("%v", m)
	}
}

func TestDecodeJSONIsStrict(t *testing.T) {
	type body struct {
		A string `json:"a"`
		N int    `json:"n"`
	}
	for _, tc := range []struct {
		in   string
		want string // substring of the detail; "" = accepted
	}{
		{`{"a":"x","n":1}`, ""},
		{`{"a":"x","b":1}`, "unknown field"},
		{`{"a":"x"}{"a":"y"}`, "more than one"},
		{`{"a":"x"} x`, "more than one"},
		{`{"a":`, "truncated"},
		{`{"n":"1"}`, "n must be a JSON number"},
		{`[1]`, "must be a JSON object"},
		{``, "empty"},
	} {
		var b body
		p := DecodeJSON([]byte(tc.in), &b, false)
		switch {
		case tc.want == "" && p != nil:
			t.Errorf("%q refused: %v", tc.in, p.Detail)
		case tc.want != "" && (p == nil || !strings.Contains(p.Detail, tc.want) || p.Status != 400):
			t.Errorf("%q: %+v, want %q", tc.in, p, tc.want)
		}
	}
}

func TestBodyLimitsAndContentType(t *testing.T) {
	r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 100)))
	if _, p := ReadBody(httptest.NewRecorder(), r, 10); p == nil || p.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("over the limit: %+v", p)
	}
	r = httptest.NewRequest("POST", "/", nil)
	r.ContentLength = -1
	r.Body = http.NoBody
	for ct, ok := range map[string]bool{
		"application/json": true, "application/json; charset=utf-8": true, "application/merge-patch+json": true,
		"text/plain": false, "application/json; charset=latin1": false, "": false,
	} {
		r.Header.Set("Content-Type", ct)
		if p := CheckJSONContentType(r, 2, false); (p == nil) != ok {
			t.Errorf("%q: %+v", ct, p)
		}
	}
	r.Header.Del("Content-Type")
	if p := CheckJSONContentType(r, 0, true); p != nil {
		t.Errorf("empty optional body refused: %+v", p)
	}
}
