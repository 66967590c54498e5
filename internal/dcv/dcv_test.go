package dcv

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/miekg/dns"
)

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
	v := &Validator{HTTPPort: p, Dial: loopbackDial(srv.Listener.Addr().String())}
	ctx := context.Background()
	if err := v.Validate(ctx, MethodHTTP, "www.example.jp", token); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	if err := v.Validate(ctx, MethodHTTP, "*.example.jp", token); err != nil {
		t.Fatalf("wildcard base refused: %v", err)
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

func TestDNSValidation(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if q := r.Question[0]; q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
		} else if q.Name == DNSLabel("example.jp") && q.Qtype == dns.TypeTXT {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
				Txt: []string{"unrelated"}}, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
				Txt: []string{"dns", "token"}})
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	defer srv.Shutdown()
	v := &Validator{Resolver: pc.LocalAddr().String()}
	ctx := context.Background()
	if err := v.Validate(ctx, MethodDNS, "example.jp", "dnstoken"); err != nil {
		t.Fatalf("valid TXT refused: %v", err)
	}
	if err := v.Validate(ctx, MethodDNS, "example.jp", "other"); !errors.Is(err, ErrNotYet) {
		t.Fatalf("wrong token: %v", err)
	}
	if err := v.Validate(ctx, MethodDNS, "nothing.example.jp", "dnstoken"); !errors.Is(err, ErrNotYet) {
		t.Fatalf("no record: %v", err)
	}
	if err := (&Validator{}).Validate(ctx, MethodDNS, "example.jp", "x"); err == nil || errors.Is(err, ErrNotYet) {
		t.Fatalf("no resolver: %v", err)
	}

	// HTTP validation resolves the name through the same resolver: every
	// name points at loopback, where the test's web server holds the file.
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == HTTPPath("webtoken") && r.Host != "" {
			w.Write([]byte("webtoken"))
			return
		}
		http.NotFound(w, r)
	}))
	defer web.Close()
	_, port, _ := net.SplitHostPort(web.Listener.Addr().String())
	v.HTTPPort, _ = strconv.Atoi(port)
	if err := v.Validate(ctx, MethodHTTP, "shop.example.jp", "webtoken"); err != nil {
		t.Fatalf("HTTP through the resolver: %v", err)
	}
}
