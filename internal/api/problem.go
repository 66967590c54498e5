// Package api holds the HTTP conventions of CertDesk's public interfaces:
// RFC 9457 problem details with stable type URIs, strict JSON request
// decoding (size limit, content type, unknown fields) and field-level
// validation errors.
package api

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// TypeBase prefixes every problem type. The URIs are identifiers: clients
// compare them, they need not resolve.
const TypeBase = "https://certdesk.example/problems/"

// Problem types. Stable: clients branch on them.
const (
	TypeValidation        = TypeBase + "validation"
	TypeMalformedRequest  = TypeBase + "malformed-request"
	TypeUnsupportedMedia  = TypeBase + "unsupported-media-type"
	TypePayloadTooLarge   = TypeBase + "payload-too-large"
	TypeUnauthorized      = TypeBase + "unauthorized"
	TypeForbidden         = TypeBase + "forbidden"
	TypeNotFound          = TypeBase + "not-found"
	TypeMethodNotAllowed  = TypeBase + "method-not-allowed"
	TypeNotAcceptable     = TypeBase + "not-acceptable"
	TypeConflict          = TypeBase + "conflict"
	TypeRateLimited       = TypeBase + "rate-limited"
	TypeIdempotencyReused = TypeBase + "idempotency-key-reused"
	TypeIdempotencyBusy   = TypeBase + "idempotency-key-in-progress"
	TypeCSRRejected       = TypeBase + "csr-rejected"
	TypeKeyProofInvalid   = TypeBase + "key-proof-invalid"
	TypeCodeIncorrect     = TypeBase + "verification-code-incorrect"
	TypeCodeExpired       = TypeBase + "verification-code-expired"
	TypeVerificationLock  = TypeBase + "verification-locked"
	TypeVerificationDone  = TypeBase + "verification-closed"
	TypeNotImplemented    = TypeBase + "not-implemented"
	TypeUnavailable       = TypeBase + "service-unavailable"
	TypeInternal          = TypeBase + "internal-error"
)

// ContentType of problem responses.
const ContentType = "application/problem+json"

// FieldError is one invalid field of a request body. Field is a JSON
// pointer-like dotted path ("subscriber.email", "domains[1]"); Detail says
// what is wrong without echoing the value.
type FieldError struct {
	Field  string `json:"field"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// Problem is an RFC 9457 problem details object. Extra holds extension
// members (attempts_left, retry_after, …).
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Errors   []FieldError   `json:"errors,omitempty"`
	Extra    map[string]any `json:"-"`
}

// Error makes a Problem usable as an error.
func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// MarshalJSON flattens Extra into the object, as RFC 9457 §3.2 asks.
func (p *Problem) MarshalJSON() ([]byte, error) {
	type plain Problem
	base, err := json.Marshal((*plain)(p))
	if err != nil || len(p.Extra) == 0 {
		return base, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(base, &m); err != nil {
		return nil, err
	}
	for k, v := range p.Extra {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// New returns a problem of type typ with the standard title for status.
func New(status int, typ, detail string) *Problem {
	return &Problem{Type: typ, Title: titles[typ], Status: status, Detail: detail}
}

// With adds an extension member.
func (p *Problem) With(key string, v any) *Problem {
	if p.Extra == nil {
		p.Extra = map[string]any{}
	}
	p.Extra[key] = v
	return p
}

var titles = map[string]string{
	TypeValidation:        "The request has invalid fields",
	TypeMalformedRequest:  "The request body is not acceptable JSON",
	TypeUnsupportedMedia:  "Unsupported content type",
	TypePayloadTooLarge:   "Request body too large",
	TypeUnauthorized:      "Authentication required",
	TypeForbidden:         "Not allowed",
	TypeNotFound:          "Not found",
	TypeMethodNotAllowed:  "Method not allowed",
	TypeNotAcceptable:     "Not acceptable",
	TypeConflict:          "Conflicts with the current state",
	TypeRateLimited:       "Too many requests",
	TypeIdempotencyReused: "Idempotency-Key reused with a different request",
	TypeIdempotencyBusy:   "A request with this Idempotency-Key is still being processed",
	TypeCSRRejected:       "The CSR is refused",
	TypeKeyProofInvalid:   "The proof of key possession does not verify",
	TypeCodeIncorrect:     "The verification code is not correct",
	TypeCodeExpired:       "The verification code has expired",
	TypeVerificationLock:  "The verification is locked",
	TypeVerificationDone:  "The verification is not waiting for a code",
	TypeNotImplemented:    "Not implemented yet",
	TypeUnavailable:       "Service temporarily unavailable",
	TypeInternal:          "Internal error",
}

// Write sends p as application/problem+json. instance, if not empty, names
// the request (a request id) so support can find it in the logs.
func Write(w http.ResponseWriter, p *Problem) {
	if p.Title == "" {
		p.Title = titles[p.Type]
		if p.Title == "" {
			p.Title = http.StatusText(p.Status)
		}
	}
	body, err := json.Marshal(p)
	if err != nil {
		body = []byte(`{"type":"` + TypeInternal + `","title":"Internal error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}

// Validation collects field errors; Problem() turns them into one 422.
type Validation struct {
	Errors []FieldError
}

// Add records an invalid field.
func (v *Validation) Add(field, code, detail string) {
	v.Errors = append(v.Errors, FieldError{Field: field, Code: code, Detail: detail})
}

// Required records field as missing when empty is true, and reports
// whether it was present.
func (v *Validation) Required(field string, empty bool) bool {
	if empty {
		v.Add(field, "required", "this field is required")
	}
	return !empty
}

// OK reports whether no error was recorded.
func (v *Validation) OK() bool { return len(v.Errors) == 0 }

// Problem returns the 422 validation problem, or nil when OK.
func (v *Validation) Problem() *Problem {
	if v.OK() {
		return nil
	}
	p := New(http.StatusUnprocessableEntity, TypeValidation, "fix the fields listed in errors and send the request again")
	p.Errors = v.Errors
	return p
}
