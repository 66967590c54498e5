//go:build integration

package workflows

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/client"

	"certdesk/activities"
	"certdesk/internal/dcv"
	"certdesk/internal/product"
	"certdesk/internal/status"
	"certdesk/internal/store"
)

// dcvServers are the applicant's side of domain validation on loopback: a
// DNS server (every name has A 127.0.0.1; TXT records as published) and a
// web server (files as published).
type dcvServers struct {
	mu       sync.Mutex
	txt      map[string]string // DNS name → token
	files    map[string]string // path → token
	resolver string
	httpPort int
}

func (d *dcvServers) publishHTTP(token string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.files[dcv.HTTPPath(token)] = token
}

func (d *dcvServers) publishDNS(domain, token string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txt[dcv.DNSLabel(domain)] = token
}

func startDCVServers(t testing.TB) *dcvServers {
	t.Helper()
	d := &dcvServers{txt: map[string]string{}, files: map[string]string{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 60}
		switch q.Qtype {
		case dns.TypeA:
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1)})
		case dns.TypeTXT:
			d.mu.Lock()
			tok, ok := d.txt[q.Name]
			d.mu.Unlock()
			if ok {
				hdr.Rrtype = dns.TypeTXT
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{tok}})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		tok, ok := d.files[r.URL.Path]
		d.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(tok))
	}))
	t.Cleanup(web.Close)
	_, port, _ := net.SplitHostPort(web.Listener.Addr().String())
	d.httpPort, _ = strconv.Atoi(port)
	d.resolver = pc.LocalAddr().String()
	return d
}

func ecCSR(t testing.TB) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// TestDVIssuanceWithDomainValidationOnStack: DV applications validated by
// an HTTP file and by a DNS TXT record, through the CA's configured resolver
// and port on loopback, are issued without staff review; the certificate
// names exactly the validated domains.
func TestDVIssuanceWithDomainValidationOnStack(t *testing.T) {
	d := startDCVServers(t)
	old := DomainValidationPeriod
	DomainValidationPeriod = 200 * time.Millisecond
	t.Cleanup(func() { DomainValidationPeriod = old })
	s := newStack(t, map[string]string{"CERTDESK_DCV_RESOLVER": d.resolver, "CERTDESK_DCV_HTTP_PORT": strconv.Itoa(d.httpPort), "CERTDESK_DCV_DEV_NETWORKS": "127.0.0.0/8,::1/128"})
	ctx := context.Background()
	if err := s.store.CreateReseller(ctx, store.Reseller{ID: "rs_dv", Name: "DV", APIKeyHash: strings.Repeat("d", 64), APIKeyPrefix: "cdk_d"}); err != nil {
		t.Fatal(err)
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, method := range []string{dcv.MethodHTTP, dcv.MethodDNS} {
		t.Run(method, func(t *testing.T) {
			appID := "app_dv_" + method + "_" + suffix
			domains := []string{"shop-" + suffix + ".example.jp", "www.shop-" + suffix + ".example.jp"}
			run, err := s.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: ApplicationWorkflowID(appID), TaskQueue: TaskQueue}, Application, ApplicationInput{
				ApplicationID: appID, ResellerID: "rs_dv", Product: product.ServerDV, CSRPEM: ecCSR(t), Domains: domains, ValidityDays: 90,
				Subscriber:  activities.SubscriberData{Name: "DV Subscriber", Email: "dv-" + suffix + "@example.jp", Country: "JP"},
				Attestation: activities.Attestation{TermsVersion: "2026-01", Truthful: true}, DomainValidationMethod: method,
			})
			if err != nil {
				t.Fatal(err)
			}
			st := waitStatus(t, s.tc, ApplicationWorkflowID(appID), func(a ApplicationState) bool {
				return a.Status == status.AppValidating && len(a.DomainTokens) == 2
			})
			for dom, tok := range st.DomainTokens {
				if method == dcv.MethodHTTP {
					d.publishHTTP(tok)
				} else {
					d.publishDNS(dom, tok)
				}
			}
			var res ApplicationResult
			gctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			if err := run.Get(gctx, &res); err != nil || res.Status != status.AppIssued {
				t.Fatalf("result %+v %v", res, err)
			}
			c, err := s.store.GetCertificate(ctx, res.CertificateSerial)
			if err != nil {
				t.Fatal(err)
			}
			cert, _ := x509.ParseCertificate(c.DER)
			if strings.Join(cert.DNSNames, ",") != strings.Join(domains, ",") || len(cert.Subject.Organization) != 0 {
				t.Fatalf("SANs %v subject %v", cert.DNSNames, cert.Subject)
			}
			recordHistory(t, s.tc, ApplicationWorkflowID(appID), "application-dv-"+method)
			dvs, err := s.store.ListDomainValidations(ctx, appID)
			if err != nil || len(dvs) != 2 || dvs[0].Result != "valid" || dvs[0].Method != method {
				t.Fatalf("validations %+v %v", dvs, err)
			}
		})
	}
}
