package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxBody is the largest request body any JSON endpoint accepts (1 MiB).
const MaxBody = 1 << 20

// ReadBody reads the whole body, refusing more than limit bytes (413).
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *Problem) {
	if r.ContentLength > limit {
		return nil, New(http.StatusRequestEntityTooLarge, TypePayloadTooLarge, fmt.Sprintf("the body is %d bytes; the limit is %d", r.ContentLength, limit))
	}
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, New(http.StatusRequestEntityTooLarge, TypePayloadTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit))
	}
	if err != nil {
		return nil, New(http.StatusBadRequest, TypeMalformedRequest, "the body could not be read")
	}
	return b, nil
}

// CheckJSONContentType refuses a body that is not declared as JSON (415).
// An empty body with no content type passes when emptyOK.
func CheckJSONContentType(r *http.Request, bodyLen int, emptyOK bool) *Problem {
	ct := r.Header.Get("Content-Type")
	if ct == "" && bodyLen == 0 && emptyOK {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return New(http.StatusUnsupportedMediaType, TypeUnsupportedMedia, "send the body as application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return New(http.StatusUnsupportedMediaType, TypeUnsupportedMedia, "JSON bodies must be UTF-8")
	}
	return nil
}

// DecodeJSON decodes body strictly into v: one JSON value, no unknown
// fields, no trailing data. An empty body decodes to the zero value when
// emptyOK.
func DecodeJSON(body []byte, v any, emptyOK bool) *Problem {
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return nil
		}
		return New(http.StatusBadRequest, TypeMalformedRequest, "the body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return New(http.StatusBadRequest, TypeMalformedRequest, describeJSONError(err))
	}
	if dec.More() {
		return New(http.StatusBadRequest, TypeMalformedRequest, "the body holds more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return New(http.StatusBadRequest, TypeMalformedRequest, "unexpected data after the JSON object")
	}
	return nil
}

// describeJSONError says what is wrong without echoing submitted values.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the body"
		}
		return fmt.Sprintf("%s must be a JSON %s", field, jsonKind(typ.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON is truncated"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ") + "; see /openapi.yaml for the accepted fields"
	}
	return "the body is not valid JSON"
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	}
	return "number"
}
