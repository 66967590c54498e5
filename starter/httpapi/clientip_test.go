package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"certdesk/internal/api"
)

func mustPrefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// TestClientIPFrom: the client address is the peer unless the peer is a
// trusted proxy; then it is the right-most X-Forwarded-For entry that is
// not itself a trusted proxy, so whatever a client writes to the left of
// what our proxies appended is ignored.
func TestClientIPFrom(t *testing.T) {
	trusted := mustPrefixes(t, "10.0.0.0/8", "fd00::/8")
	cases := []struct {
		name, peer string
		xff        []string
		trusted    []netip.Prefix
		want       string
	}{
		{"no proxy configured: header ignored", "203.0.113.7:4000", []string{"198.51.100.1"}, nil, "203.0.113.7"},
		{"untrusted peer: header ignored", "203.0.113.7:4000", []string{"198.51.100.1"}, trusted, "203.0.113.7"},
		{"trusted peer, one hop", "10.1.2.3:4000", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"trusted peer, spoofed entries to the left", "10.1.2.3:4000", []string{"1.1.1.1, 2.2.2.2, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"two trusted hops", "10.1.2.3:4000", []string{"6.6.6.6, 198.51.100.1, 10.9.9.9"}, trusted, "198.51.100.1"},
		{"several header lines read as one list", "10.1.2.3:4000", []string{"6.6.6.6", "198.51.100.1, 10.9.9.9"}, trusted, "198.51.100.1"},
		{"IPv6 client and proxy", "[fd00::1]:443", []string{"2001:db8::5"}, trusted, "2001:db8::5"},
		{"entry with a port", "10.1.2.3:4000", []string{"198.51.100.1:5555"}, trusted, "198.51.100.1"},
		{"bracketed IPv6 entry with a port", "10.1.2.3:4000", []string{"[2001:db8::5]:5555"}, trusted, "2001:db8::5"},
		{"IPv4-mapped IPv6 entry", "10.1.2.3:4000", []string{"::ffff:198.51.100.1"}, trusted, "198.51.100.1"},
		{"trusted peer without the header", "10.1.2.3:4000", nil, trusted, "10.1.2.3"},
		{"only trusted entries", "10.1.2.3:4000", []string{"10.8.8.8"}, trusted, "10.8.8.8"},
		{"garbage appended by a trusted proxy: stop at the last trusted hop", "10.1.2.3:4000", []string{"198.51.100.1, nonsense"}, trusted, "10.1.2.3"},
		{"garbage to the left of the client entry is never reached", "10.1.2.3:4000", []string{"<script>, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"empty entries skipped", "10.1.2.3:4000", []string{"198.51.100.1, ,"}, trusted, "198.51.100.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := clientIPFrom(c.peer, c.xff, c.trusted); got != c.want {
				t.Fatalf("clientIPFrom(%q, %q) = %q, want %q", c.peer, c.xff, got, c.want)
			}
		})
	}
}

// TestRateLimitBehindTrustedProxy: two clients behind one trusted proxy get
// a bucket each, while a peer that is not a trusted proxy cannot leave its
// bucket by sending X-Forwarded-For.
func TestRateLimitBehindTrustedProxy(t *testing.T) {
	t0 := time.Now()
	s := mustServer(t, Deps{
		Config: Config{TrustedProxies: mustPrefixes(t, "10.0.0.0/8")},
		// One request per bucket, refilled only after a day.
		Limits: Limits{ResellerRate: 1, ResellerBurst: 1, PublicRate: 1.0 / 86400, PublicBurst: 1, CodeRate: 1.0 / 86400, CodeBurst: 1, IdempotencyTTL: time.Hour},
		Now:    func() time.Time { return t0 },
	})
	h := s.Handler()
	// A reseller route without credentials answers 401, counted against
	// the client address's public bucket, and 429 once it is empty.
	send := func(peer, xff string) int {
		t.Helper()
		r := httptest.NewRequest("GET", "/v1/applications/app_x", nil)
		r.RemoteAddr = peer
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusTooManyRequests && w.Header().Get("Content-Type") != api.ContentType {
			t.Fatalf("429 without problem+json: %v", w.Header())
		}
		return w.Code
	}
	const proxy = "10.0.0.1:40000"
	steps := []struct {
		what      string
		peer, xff string
		want      int
	}{
		{"client A via the proxy", proxy, "198.51.100.1", http.StatusUnauthorized},
		{"client A again: its bucket is empty", proxy, "198.51.100.1", http.StatusTooManyRequests},
		{"client B via the proxy: a bucket of its own", proxy, "198.51.100.2", http.StatusUnauthorized},
		{"client A spoofing B to the left of what the proxy appends", proxy, "198.51.100.2, 198.51.100.1", http.StatusTooManyRequests},
		{"untrusted peer C", "203.0.113.9:5000", "", http.StatusUnauthorized},
		{"untrusted peer C claiming a fresh address", "203.0.113.9:5001", "192.0.2.77", http.StatusTooManyRequests},
		{"untrusted peer C claiming to be the proxy's client", "203.0.113.9:5002", "198.51.100.3", http.StatusTooManyRequests},
	}
	for _, st := range steps {
		if got := send(st.peer, st.xff); got != st.want {
			t.Fatalf("%s: HTTP %d, want %d", st.what, got, st.want)
		}
	}
}
