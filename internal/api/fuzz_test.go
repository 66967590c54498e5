package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// fuzzRequest has the shapes the starter's request bodies use: strings,
// lists, numbers, a pointer to bool, nested objects.
type fuzzRequest struct {
	Product      string   `json:"product"`
	CSR          string   `json:"csr"`
	Domains      []string `json:"domains"`
	ValidityDays int      `json:"validity_days"`
	Subscriber   struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"subscriber"`
	Attestation struct {
		TermsVersion string `json:"terms_version"`
		Truthful     *bool  `json:"truthful"`
	} `json:"attestation"`
	Reason string `json:"reason"`
}

// FuzzDecodeJSON: any body and content type through the starter's request
// decoding (ReadBody, CheckJSONContentType, DecodeJSON). It never panics; a
// refusal is a 400, 413 or 415 problem whose JSON form is valid; an accepted
// body is exactly one JSON object with known fields, so re-encoding it and
// decoding again gives the same value.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"product":"server-dv","csr":"-----BEGIN CERTIFICATE REQUEST-----\n","domains":["www.example.jp"],"validity_days":90,"subscriber":{"name":"山田太郎","email":"taro@example.jp"},"attestation":{"terms_version":"2026-01","truthful":true}}`), "application/json", false)
	f.Add([]byte(`{"reason":"keyCompromise"}`), "application/json; charset=utf-8", false)
	f.Add([]byte(``), "", true)
	f.Add([]byte(`{}{}`), "application/problem+json", false)
	f.Add([]byte(`{"product":1}`), "application/json", false)
	f.Add([]byte(`{"unknown":true}`), "application/json", false)
	f.Add([]byte(`{"domains":[`), "application/json", false)
	f.Add([]byte(`{"product":"x"} trailing`), "application/json", false)
	f.Add([]byte(`{"validity_days":1e400}`), "application/json", false)
	f.Add([]byte(`{"csr":"\ud800"}`), "application/json; charset=latin1", false)
	f.Add(bytes.Repeat([]byte("["), 10000), "application/json", false)
	f.Fuzz(func(t *testing.T, body []byte, contentType string, emptyOK bool) {
		r := httptest.NewRequest(http.MethodPost, "/v1/applications", bytes.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		got, p := ReadBody(w, r, MaxBody)
		if p == nil {
			p = CheckJSONContentType(r, len(got), emptyOK)
		}
		var v fuzzRequest
		if p == nil {
			p = DecodeJSON(got, &v, emptyOK)
		}
		if p != nil {
			switch p.Status {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			default:
				t.Fatalf("refused with status %d", p.Status)
			}
			if p.Type == "" || p.Title == "" {
				t.Fatalf("problem without type or title: %+v", p)
			}
			if b, err := json.Marshal(p); err != nil || !json.Valid(b) {
				t.Fatalf("problem does not marshal: %v", err)
			}
			return
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var w2 fuzzRequest
		if p := DecodeJSON(again, &w2, false); p != nil {
			t.Fatalf("re-encoded value refused: %+v", p)
		}
		if b2, _ := json.Marshal(w2); !bytes.Equal(b2, again) {
			t.Fatalf("decode is not stable:\n%s\n%s", again, b2)
		}
	})
}
