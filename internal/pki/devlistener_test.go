package pki

import (
	"crypto/x509"
	"testing"
	"time"
)

// TestLoopbackServerCertificate: the TLS issuing CA signs a listener
// certificate for loopback hosts that verifies for 127.0.0.1 and localhost,
// and refuses any other host, a client-only issuer and a long lifetime.
func TestLoopbackServerCertificate(t *testing.T) {
	ca := getFileCA(t)
	iss, err := ca.IssuerFor("server-dv")
	if err != nil {
		t.Fatal(err)
	}
	key := freshECKey(t)
	der, err := iss.LoopbackServerCertificate([]string{"127.0.0.1", "localhost"}, key.Public(), 30*Day)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca.Root)
	inter.AddCert(iss.Certificate())
	for _, h := range []string{"127.0.0.1", "localhost"} {
		if _, err := c.Verify(x509.VerifyOptions{DNSName: h, Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	for _, hosts := range [][]string{{"www.example.jp"}, {"localhost", "10.0.0.1"}, {"localhost.example"}, nil} {
		if _, err := iss.LoopbackServerCertificate(hosts, key.Public(), Day); err == nil {
			t.Errorf("%v: signed", hosts)
		}
	}
	if _, err := iss.LoopbackServerCertificate([]string{"localhost"}, key.Public(), 31*Day); err == nil {
		t.Error("a 31-day listener certificate was signed")
	}
	if client, err := ca.IssuerFor("client-sign"); err == nil && client.ID() != iss.ID() {
		if _, err := client.LoopbackServerCertificate([]string{"localhost"}, key.Public(), time.Hour); err == nil {
			t.Error("the client issuing CA signed a TLS server certificate")
		}
	}
}
