package pki

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	zlint "github.com/zmap/zlint/v3"
	zl "github.com/zmap/zlint/v3/lint"
	"golang.org/x/crypto/ocsp"
)

func crlLintErrors(t *testing.T, der []byte) []string {
	t.Helper()
	r, err := zx509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for name, res := range zlint.LintRevocationList(r).Results {
		if res.Status == zl.Error || res.Status == zl.Fatal {
			bad = append(bad, name+": "+res.Details)
		}
	}
	return bad
}

// ocspLintErrors lints a DER OCSP response with every zlint lint and
// returns the errors and fatals.
func ocspLintErrors(t *testing.T, der []byte) []string {
	t.Helper()
	r, err := ocsp.ParseResponse(der, nil)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for name, res := range zlint.LintOcspResponse(r).Results {
		if res.Status == zl.Error || res.Status == zl.Fatal {
			bad = append(bad, name+": "+res.Details)
		}
	}
	return bad
}

// issueDV issues n DV certificates from the TLS issuer.
func issueDV(t *testing.T, iss *Issuer, n int) []*Issued {
	t.Helper()
	csr := makeCSR(t, ecKey(t, elliptic.P256()))
	var out []*Issued
	for i := 0; i < n; i++ {
		got, err := iss.Issue(context.Background(), &IssueRequest{
			Request: Request{Profile: ProfileServerDV, CSR: csr, Domains: []string{"host" + strconv.Itoa(i) + ".example.com"}},
			Serial:  serial(t), NotBefore: now(),
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got)
	}
	return out
}

func pemCRL(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}) }

func TestCRLShards(t *testing.T) {
	ca := getFileCA(t)
	iss, _ := ca.Issuer("tls-1")
	dir := t.TempDir()
	certs := issueDV(t, iss, 12)
	thisUpdate := now()

	// Revoke every other certificate with each allowed reason in turn.
	reasons := []int{ReasonUnspecified, ReasonKeyCompromise, ReasonAffiliationChanged, ReasonSuperseded, ReasonCessationOfOperation, ReasonPrivilegeWithdrawn}
	byShard := map[int][]CRLEntry{}
	revoked := map[string]int{}
	for n, c := range certs {
		if n%2 == 1 {
			continue
		}
		reason := reasons[(n/2)%len(reasons)]
		e := CRLEntry{Serial: c.Cert.SerialNumber, RevokedAt: thisUpdate.Add(-time.Minute), Reason: reason}
		byShard[c.Shard] = append(byShard[c.Shard], e)
		revoked[c.Cert.SerialNumber.String()] = reason
	}

	root := filepath.Join(ca.Dir(), "root.pem")
	inter := filepath.Join(ca.Dir(), "tls-1.pem")
	chain := filepath.Join(ca.Dir(), "tls-1-chain.pem")
	crlFiles := map[int]string{}
	for shard := 0; shard < iss.CRLShards(); shard++ {
		der, err := iss.CRL(context.Background(), &CRLRequest{
			Shard: shard, Number: big.NewInt(thisUpdate.UnixNano()), ThisUpdate: thisUpdate,
			Entries: byShard[shard],
		})
		if err != nil {
			t.Fatalf("shard %d: %v", shard, err)
		}
		if bad := crlLintErrors(t, der); len(bad) > 0 {
			t.Errorf("shard %d: zlint: %v", shard, bad)
		}
		parsed, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if len(parsed.RevokedCertificateEntries) != len(byShard[shard]) {
			t.Errorf("shard %d: %d entries, want %d", shard, len(parsed.RevokedCertificateEntries), len(byShard[shard]))
		}
		for _, e := range parsed.RevokedCertificateEntries {
			if e.ReasonCode != revoked[e.SerialNumber.String()] {
				t.Errorf("serial %x reason %d, want %d", e.SerialNumber, e.ReasonCode, revoked[e.SerialNumber.String()])
			}
			for _, ext := range e.Extensions {
				if ext.Id.Equal([]int{2, 5, 29, 21}) && e.ReasonCode == 0 {
					t.Error("unspecified reason encoded; it must be omitted")
				}
			}
		}
		if parsed.NextUpdate.Sub(parsed.ThisUpdate) != DefaultCRLValidity {
			t.Errorf("nextUpdate − thisUpdate = %v", parsed.NextUpdate.Sub(parsed.ThisUpdate))
		}
		f := writeFile(t, dir, "shard"+strconv.Itoa(shard)+".crl", der)
		crlFiles[shard] = writeFile(t, dir, "shard"+strconv.Itoa(shard)+".crl.pem", pemCRL(der))

		// openssl checks the signature against the issuing CA.
		out := openssl(t, dir, "crl", "-in", f, "-inform", "DER", "-CAfile", chain, "-noout")
		if !strings.Contains(out, "verify OK") {
			t.Errorf("shard %d: openssl crl: %s", shard, out)
		}
		text := openssl(t, dir, "crl", "-in", f, "-inform", "DER", "-noout", "-text")
		wantURL := testURLs.CRL("tls-1", shard)
		for _, want := range []string{"Issuing Distribution Point: critical", "URI:" + wantURL, "Only User Certificates", "X509v3 CRL Number"} {
			if !strings.Contains(text, want) {
				t.Errorf("shard %d: CRL text lacks %q:\n%s", shard, want, text)
			}
		}
		if shard == certs[0].Shard && !strings.Contains(openssl(t, dir, "crl", "-in", f, "-inform", "DER", "-noout", "-text"), "Revoked Certificates") {
			t.Error("no revoked certificates listed")
		}
	}

	// Relying-party view: openssl matches the certificate's CRL DP with the
	// shard's IDP and finds revoked certificates revoked, the others good.
	for n, c := range certs {
		leaf := writeFile(t, dir, "leaf"+strconv.Itoa(n)+".pem", pemCert(c.DER))
		out, err := opensslErr(dir, "verify", "-crl_check", "-CAfile", root, "-untrusted", inter, "-CRLfile", crlFiles[c.Shard], leaf)
		_, isRevoked := revoked[c.Cert.SerialNumber.String()]
		switch {
		case isRevoked && (err == nil || !strings.Contains(out, "certificate revoked")):
			t.Errorf("leaf %d (shard %d) should be revoked: %s", n, c.Shard, out)
		case !isRevoked && err != nil:
			t.Errorf("leaf %d (shard %d) should verify: %s", n, c.Shard, out)
		}
	}
	// The same revoked certificate against another shard's CRL is not
	// covered (IDP mismatch), so openssl cannot find its CRL.
	other := (certs[0].Shard + 1) % iss.CRLShards()
	leaf0 := filepath.Join(dir, "leaf0.pem")
	if out, err := opensslErr(dir, "verify", "-crl_check", "-CAfile", root, "-untrusted", inter, "-CRLfile", crlFiles[other], leaf0); err == nil {
		t.Errorf("wrong shard accepted: %s", out)
	}

	// Reason codes and date rules.
	first := certs[0]
	bad := []struct {
		name string
		req  CRLRequest
	}{
		{"certificateHold", CRLRequest{Entries: []CRLEntry{{Serial: first.Cert.SerialNumber, RevokedAt: thisUpdate, Reason: ReasonCertificateHold}}}},
		{"cACompromise", CRLRequest{Entries: []CRLEntry{{Serial: first.Cert.SerialNumber, RevokedAt: thisUpdate, Reason: ReasonCACompromise}}}},
		{"removeFromCRL", CRLRequest{Entries: []CRLEntry{{Serial: first.Cert.SerialNumber, RevokedAt: thisUpdate, Reason: ReasonRemoveFromCRL}}}},
		{"aACompromise", CRLRequest{Entries: []CRLEntry{{Serial: first.Cert.SerialNumber, RevokedAt: thisUpdate, Reason: ReasonAACompromise}}}},
		{"duplicate", CRLRequest{Entries: []CRLEntry{{Serial: first.Cert.SerialNumber, RevokedAt: thisUpdate}, {Serial: first.Cert.SerialNumber, RevokedAt: thisUpdate}}}},
		{"future revocation", CRLRequest{Entries: []CRLEntry{{Serial: first.Cert.SerialNumber, RevokedAt: thisUpdate.Add(time.Hour)}}}},
		{"nextUpdate 11 days", CRLRequest{NextUpdate: thisUpdate.Add(11 * Day)}},
		{"no number", CRLRequest{Number: new(big.Int)}},
	}
	for _, b := range bad {
		r := b.req
		r.Shard = first.Shard
		r.ThisUpdate = thisUpdate
		if r.Number == nil {
			r.Number = big.NewInt(1)
		}
		if _, err := iss.CRL(context.Background(), &r); err == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
	// An entry of another shard is refused: it would be invisible to
	// relying parties, who fetch the shard named in the certificate.
	wrong := CRLRequest{Shard: other, Number: big.NewInt(2), ThisUpdate: thisUpdate,
		Entries: []CRLEntry{{Serial: first.Cert.SerialNumber, RevokedAt: thisUpdate}}}
	if _, err := iss.CRL(context.Background(), &wrong); err == nil || !strings.Contains(err.Error(), "belongs to shard") {
		t.Errorf("entry in wrong shard: %v", err)
	}
	// 10 days is the limit and allowed.
	ok := CRLRequest{Shard: 0, Number: big.NewInt(3), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(10 * Day)}
	if _, err := iss.CRL(context.Background(), &ok); err != nil {
		t.Errorf("10-day CRL: %v", err)
	}
}

func TestRootCRL(t *testing.T) {
	base := getFileCA(t)
	dir := base.Dir()
	ca, err := LoadCA(context.Background(), dir, &FileKeyStore{Dir: filepath.Join(dir, "keys"), Passphrase: testPassphrase}, LoadOptions{RootKey: true})
	if err != nil {
		t.Fatal(err)
	}
	thisUpdate := now()
	der, err := ca.RootIssuer.CRL(context.Background(), &CRLRequest{Number: big.NewInt(1), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(365 * Day)})
	if err != nil {
		t.Fatal(err)
	}
	// The full registry flags only the 10-day limit, which is for
	// subscriber CRLs; a root CRL may run 12 months (BR 4.9.7).
	for _, b := range crlLintErrors(t, der) {
		if !strings.HasPrefix(b, "e_crl_next_update_invalid") {
			t.Errorf("zlint: %s", b)
		}
	}
	tmp := t.TempDir()
	f := writeFile(t, tmp, "root.crl", der)
	out := openssl(t, tmp, "crl", "-in", f, "-inform", "DER", "-CAfile", filepath.Join(dir, "root.pem"), "-noout", "-text")
	if !strings.Contains(out, "verify OK") || strings.Contains(out, "Issuing Distribution Point") {
		t.Errorf("root CRL: %s", out)
	}
	// A full CRL has no IDP (BR 7.2.2). The issuing CA's CRL DP points at
	// this CRL: openssl -crl_check_all
	// needs both the root CRL and the shard CRL to pass.
	iss, _ := ca.Issuer("tls-1")
	c := issueDV(t, iss, 1)[0]
	shardDER, err := iss.CRL(context.Background(), &CRLRequest{Shard: c.Shard, Number: big.NewInt(5), ThisUpdate: thisUpdate})
	if err != nil {
		t.Fatal(err)
	}
	crls := writeFile(t, tmp, "crls.pem", append(pemCRL(der), pemCRL(shardDER)...))
	leaf := writeFile(t, tmp, "leaf.pem", pemCert(c.DER))
	out = openssl(t, tmp, "verify", "-crl_check_all", "-CAfile", filepath.Join(dir, "root.pem"), "-untrusted", filepath.Join(dir, "tls-1.pem"), "-CRLfile", crls, leaf)
	if !strings.Contains(out, ": OK") {
		t.Errorf("crl_check_all: %s", out)
	}
	// Beyond 12 months is refused even for the root.
	if _, err := ca.RootIssuer.CRL(context.Background(), &CRLRequest{Number: big.NewInt(2), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(366 * Day)}); err == nil {
		t.Error("13-month root CRL accepted")
	}
}
