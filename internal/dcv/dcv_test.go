package dcv

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

var loopbackNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// loopbackDial sends every name to the test server, as a resolver pointing
// the validated names at loopback would.
func loopbackDial(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
}

func TestHTTPValidation(t *testing.T) {
	const token = "tok123"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case HTTPPath(token):
			w.Write([]byte(token + "\n"))
		case HTTPPath("wrong"):
			w.Write([]byte("something else"))
		case HTTPPath("redirect"):
			http.Redirect(w, r, "http://elsewhere.example/", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	v := &Validator{HTTPPort: p, DevNetworks: loopbackNets, Dial: loopbackDial(srv.Listener.Addr().String())}
	ctx := context.Background()
	if err := v.Validate(ctx, MethodHTTP, "www.example.jp", token); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	for _, tok := range []string{"missing", "wrong", "redirect"} {
		if err := v.Validate(ctx, MethodHTTP, "www.example.jp", tok); !errors.Is(err, ErrNotYet) {
			t.Errorf("%s: %v, want ErrNotYet", tok, err)
		}
	}
	if err := v.Validate(ctx, "carrier-pigeon", "www.example.jp", token); err == nil || errors.Is(err, ErrNotYet) {
		t.Errorf("unknown method: %v", err)
	}
}

// A wildcard is validated only by a DNS method (BR §3.2.2.4.18): the file
// method refuses it even when the file is there.
func TestWildcardByHTTPRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("tok")) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	v := &Validator{HTTPPort: p, DevNetworks: loopbackNets, Dial: loopbackDial(srv.Listener.Addr().String())}
	err := v.Validate(context.Background(), MethodHTTP, "*.example.test", "tok")
	var ref *Refusal
	if !errors.As(err, &ref) || ref.Rule != "BR §3.2.2.4.18" {
		t.Fatalf("*.example.test by HTTP: %v, want a refusal under BR §3.2.2.4.18", err)
	}
}

// Only the Authorized Ports, unless a development network is configured.
func TestAuthorizedPorts(t *testing.T) {
	for _, p := range []int{0, 80, 443} {
		if err := (&Validator{HTTPPort: p}).Check(); err != nil {
			t.Errorf("port %d: %v", p, err)
		}
	}
	if err := (&Validator{HTTPPort: 8080}).Check(); err == nil || !strings.Contains(err.Error(), "Authorized Port") {
		t.Errorf("port 8080 accepted in production: %v", err)
	}
	if err := (&Validator{HTTPPort: 8080, DevNetworks: loopbackNets}).Check(); err != nil {
		t.Errorf("development port refused: %v", err)
	}
	v := &Validator{}
	for _, tc := range []struct {
		url string
		ok  bool
	}{{"http://a.example/x", true}, {"https://a.example/x", true}, {"https://a.example:8443/x", false},
		{"ftp://a.example/x", false}, {"http://a.example:22/x", false}} {
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		err := v.checkRedirect(req, nil)
		if (err == nil) != tc.ok {
			t.Errorf("redirect to %s: %v", tc.url, err)
		}
	}
}

func TestSpecialPurpose(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "100.64.1.1", "192.168.1.1",
		"172.16.0.1", "fd00::1", "fe80::1", "::ffff:10.0.0.1", "0.0.0.0", "224.0.0.1", "198.18.0.1"} {
		if SpecialPurpose(netip.MustParseAddr(a)) == "" {
			t.Errorf("%s counted as global", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "133.242.0.1", "2001:4860:4860::8888", "2400:cb00::1"} {
		if n := SpecialPurpose(netip.MustParseAddr(a)); n != "" {
			t.Errorf("%s counted as %s", a, n)
		}
	}
	if _, err := ParseNetworks("127.0.0.0/8, ::1/128"); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseNetworks("localhost"); err == nil {
		t.Fatal("a name accepted as a network")
	}
}

// fakeDNS answers from a table; SERVFAIL with a DNSSEC Bogus EDE for names
// under bogus.example.
func fakeDNS(t *testing.T, records map[string][]dns.RR) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		if strings.HasSuffix(q.Name, "bogus.example.") {
			m.Rcode = dns.RcodeServerFailure
			m.SetEdns0(1232, true)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeDNSBogus, ExtraText: "validation failure"})
		}
		for _, rr := range records[q.Name] {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func rr(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDNSValidation(t *testing.T) {
	addr := fakeDNS(t, map[string][]dns.RR{
		DNSLabel("example.jp"): {rr(t, `_pki-validation.example.jp. 60 IN TXT "unrelated"`), rr(t, `_pki-validation.example.jp. 60 IN TXT "dns" "token"`)},
	})
	v := &Validator{Resolver: addr}
	ctx := context.Background()
	if err := v.Validate(ctx, MethodDNS, "example.jp", "dnstoken"); err != nil {
		t.Fatalf("valid TXT refused: %v", err)
	}
	if err := v.Validate(ctx, MethodDNS, "*.example.jp", "dnstoken"); err != nil {
		t.Fatalf("wildcard by DNS refused: %v", err)
	}
	if err := v.Validate(ctx, MethodDNS, "example.jp", "other"); !errors.Is(err, ErrNotYet) {
		t.Fatalf("wrong token: %v", err)
	}
	if err := v.Validate(ctx, MethodDNS, "nothing.example.jp", "dnstoken"); !errors.Is(err, ErrNotYet) {
		t.Fatalf("no record: %v", err)
	}
	var ref *Refusal
	if err := v.Validate(ctx, MethodDNS, "www.bogus.example", "dnstoken"); !errors.As(err, &ref) || !strings.Contains(err.Error(), "DNSSEC") {
		t.Fatalf("bogus zone: %v, want a DNSSEC refusal", err)
	}
	if err := (&Validator{}).Validate(ctx, MethodDNS, "example.jp", "x"); err == nil || errors.Is(err, ErrNotYet) {
		t.Fatalf("no resolver: %v", err)
	}
}

// The file method resolves through the CA's resolver (AAAA and A) and never
// connects to a special-purpose address unless development allows it.
func TestHTTPAddressFilter(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == HTTPPath("webtoken") {
			w.Write([]byte("webtoken"))
			return
		}
		http.NotFound(w, r)
	}))
	defer web.Close()
	_, port, _ := net.SplitHostPort(web.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	addr := fakeDNS(t, map[string][]dns.RR{
		"shop.example.jp.":   {rr(t, "shop.example.jp. 60 IN A 127.0.0.1")},
		"ten.example.jp.":    {rr(t, "ten.example.jp. 60 IN A 10.0.0.1")},
		"meta.example.jp.":   {rr(t, "meta.example.jp. 60 IN A 169.254.169.254")},
		"six.example.jp.":    {rr(t, "six.example.jp. 60 IN AAAA ::1")},
		"mapped.example.jp.": {rr(t, "mapped.example.jp. 60 IN AAAA ::ffff:127.0.0.1")},
	})
	ctx := context.Background()
	dev := &Validator{Resolver: addr, HTTPPort: p, DevNetworks: loopbackNets}
	if err := dev.Validate(ctx, MethodHTTP, "shop.example.jp", "webtoken"); err != nil {
		t.Fatalf("HTTP through the resolver, development networks on: %v", err)
	}
	// Production: port 80 and no development networks. Each name is refused
	// before any connection is made.
	prod := &Validator{Resolver: addr}
	for _, name := range []string{"shop.example.jp", "ten.example.jp", "meta.example.jp", "six.example.jp", "mapped.example.jp"} {
		err := prod.Validate(ctx, MethodHTTP, name, "webtoken")
		var ref *Refusal
		if !errors.As(err, &ref) || !strings.Contains(err.Error(), "special-purpose") {
			t.Errorf("%s: %v, want a special-purpose refusal", name, err)
		}
	}
}
