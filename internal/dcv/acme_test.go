package dcv

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestACMEHTTP01(t *testing.T) {
	ka := ACMEKeyAuthorization("tokACME", "thumb")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case ACMEHTTPPath("tokACME"):
			w.Write([]byte(ka))
		case ACMEHTTPPath("tokBare"):
			w.Write([]byte("tokBare")) // the bare token is not a key authorization
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	v := &Validator{HTTPPort: p, DevNetworks: loopbackNets, Dial: loopbackDial(srv.Listener.Addr().String())}
	ctx := context.Background()
	if err := v.ValidateACME(ctx, MethodACMEHTTP01, "www.example.jp", ka); err != nil {
		t.Fatalf("valid key authorization refused: %v", err)
	}
	for _, k := range []string{ACMEKeyAuthorization("tokACME", "otherthumb"), ACMEKeyAuthorization("tokBare", "thumb"), ACMEKeyAuthorization("missing", "thumb")} {
		if err := v.ValidateACME(ctx, MethodACMEHTTP01, "www.example.jp", k); !errors.Is(err, ErrNotYet) {
			t.Errorf("%s: %v, want ErrNotYet", k, err)
		}
	}
	var ref *Refusal
	if err := v.ValidateACME(ctx, MethodACMEHTTP01, "*.example.jp", ka); !errors.As(err, &ref) {
		t.Errorf("wildcard by http-01: %v, want a Refusal", err)
	}
	if err := v.ValidateACME(ctx, MethodACMEHTTP01, "www.example.jp", "notakeyauth"); err == nil {
		t.Error("malformed key authorization accepted")
	}
}

func TestACMEDNSValue(t *testing.T) {
	// RFC 8555 §8.4: base64url(SHA-256(key authorization)), 43 characters.
	if got := ACMEDNSValue("a.b"); len(got) != 43 || got == ACMEDNSValue("a.c") {
		t.Fatalf("ACMEDNSValue = %q", got)
	}
	if ACMEDNSLabel("Example.jp.") != "_acme-challenge.Example.jp." {
		t.Fatal(ACMEDNSLabel("Example.jp."))
	}
}

// TestCAAMethodLabels: the RFC 8657 validationmethods labels: ACME orders
// use the challenge type, the BR methods CA-specific labels.
func TestCAAMethodLabels(t *testing.T) {
	for m, want := range map[string]string{MethodACMEHTTP01: "http-01", MethodACMEDNS01: "dns-01", MethodHTTP: "ca-http-file", MethodDNS: "ca-dns-txt", "": "ca-http-file"} {
		if got := CAAMethod(m); got != want {
			t.Errorf("CAAMethod(%q) = %q, want %q", m, got, want)
		}
	}
}
