package pki

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"
)

// maxOCSPRequest bounds request bodies; a single-CertID request is ~100
// bytes, with a nonce ~150.
const maxOCSPRequest = 4 << 10

// OCSPRequestFromHTTP extracts the DER request from an HTTP request (RFC
// 6960 Appendix A, RFC 5019 §5): for GET, the path after prefix (e.g.
// "/ocsp/") is the URL-encoded base64 of the DER request; for POST the body
// is the DER request with Content-Type application/ocsp-request.
func OCSPRequestFromHTTP(r *http.Request, prefix string) ([]byte, error) {
	switch r.Method {
	case http.MethodGet:
		// EscapedPath keeps %2F and %2B distinct from / and +.
		p := r.URL.EscapedPath()
		if !strings.HasPrefix(p, prefix) {
			return nil, fmt.Errorf("OCSP GET path must start with %s", prefix)
		}
		return DecodeOCSPGETPath(p[len(prefix):])
	case http.MethodPost:
		if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/ocsp-request") {
			return nil, fmt.Errorf("OCSP POST Content-Type %q; use application/ocsp-request", ct)
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxOCSPRequest+1))
		if err != nil {
			return nil, err
		}
		if len(body) > maxOCSPRequest {
			return nil, errors.New("OCSP request body too large")
		}
		return body, nil
	}
	return nil, fmt.Errorf("method %s not allowed; use GET or POST", r.Method)
}

// DecodeOCSPGETPath decodes the path segment of an OCSP GET request. Real
// clients differ: some percent-encode '+', '/' and '=', some do not, some
// drop the padding, and proxies sometimes turn '+' into a space; all are
// accepted.
func DecodeOCSPGETPath(seg string) ([]byte, error) {
	s, err := url.PathUnescape(seg)
	if err != nil {
		return nil, fmt.Errorf("OCSP GET path is not valid URL encoding: %w", err)
	}
	s = strings.ReplaceAll(strings.TrimLeft(s, "/"), " ", "+")
	if len(s) > 2*maxOCSPRequest {
		return nil, errors.New("OCSP GET request too large")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if der, err := enc.DecodeString(s); err == nil && len(der) > 0 {
			return der, nil
		}
	}
	return nil, errors.New("OCSP GET path is not base64 of a DER request")
}

// OCSPCacheHeaders returns the RFC 5019 §6 caching headers for a response
// signed at thisUpdate and valid until nextUpdate, served at now:
// Content-Type, Last-Modified (thisUpdate), Expires (nextUpdate),
// Cache-Control max-age (seconds until nextUpdate, public, no-transform,
// must-revalidate) and a strong ETag (SHA-256 of the response). For an
// error response (zero times) it returns a one-minute cache, enough to
// absorb floods without pinning an answer.
func OCSPCacheHeaders(resp []byte, thisUpdate, nextUpdate, now time.Time) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/ocsp-response")
	if thisUpdate.IsZero() || nextUpdate.IsZero() {
		h.Set("Cache-Control", "public, max-age=60, no-transform")
		return h
	}
	maxAge := int64(nextUpdate.Sub(now) / time.Second)
	if maxAge < 0 {
		maxAge = 0
	}
	sum := sha256.Sum256(resp)
	h.Set("Last-Modified", thisUpdate.UTC().Format(http.TimeFormat))
	h.Set("Expires", nextUpdate.UTC().Format(http.TimeFormat))
	h.Set("Cache-Control", "max-age="+strconv.FormatInt(maxAge, 10)+", public, no-transform, must-revalidate")
	h.Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	return h
}

// OCSPResponseTimes parses a response (without verifying it) and returns
// its thisUpdate and nextUpdate, for callers that did not store them.
func OCSPResponseTimes(resp []byte) (thisUpdate, nextUpdate time.Time, err error) {
	r, err := ocsp.ParseResponse(resp, nil)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return r.ThisUpdate, r.NextUpdate, nil
}
