package pki

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	zlint "github.com/zmap/zlint/v3"
	zl "github.com/zmap/zlint/v3/lint"

	"certdesk/internal/pki/lint"
)

// issueCase is one good request per profile.
type issueCase struct {
	name string
	key  func(t testing.TB) crypto.Signer
	req  Request
}

func issueCases() []issueCase {
	return []issueCase{
		{
			name: "server-dv",
			key:  func(t testing.TB) crypto.Signer { return ecKey(t, elliptic.P256()) },
			req:  Request{Profile: ProfileServerDV, Domains: []string{"www.example.jp", "example.jp", "*.shop.example.co.jp"}},
		},
		{
			name: "server-dv-rsa",
			key:  func(t testing.TB) crypto.Signer { return rsaKey(t, 2048) },
			req:  Request{Profile: ProfileServerDV, Domains: []string{"rsa.example.com"}},
		},
		{
			name: "server-ov",
			key:  func(t testing.TB) crypto.Signer { return ecKey(t, elliptic.P384()) },
			req: Request{Profile: ProfileServerOV, Domains: []string{"portal.example.co.jp"},
				Subject: Subject{Organization: "株式会社サンプル", Locality: "Chiyoda-ku", Province: "Tokyo", Country: "JP"}},
		},
		{
			name: "client-sign",
			key:  func(t testing.TB) crypto.Signer { return rsaKey(t, 2048) },
			req: Request{Profile: ProfileClientSign, Email: "taro.yamada@example.co.jp",
				Subject: Subject{CommonName: "山田 太郎", Surname: "山田", GivenName: "太郎", Organization: "株式会社サンプル", Country: "JP"}},
		},
		{
			name: "client-sign-individual",
			key:  func(t testing.TB) crypto.Signer { return rsaKey(t, 2048) },
			req: Request{Profile: ProfileClientSign, Email: "hanako@example.jp",
				Subject: Subject{CommonName: "Hanako Suzuki", Surname: "Suzuki", GivenName: "Hanako"}},
		},
	}
}

// issueAll issues one certificate per case with ca and returns them.
func issueAll(t *testing.T, ca *CA) map[string]*Issued {
	t.Helper()
	out := map[string]*Issued{}
	for _, c := range issueCases() {
		req := c.req
		req.CSR = makeCSR(t, c.key(t))
		iss, err := ca.IssuerFor(req.Profile)
		if err != nil {
			t.Fatal(err)
		}
		got, err := iss.Issue(context.Background(), &IssueRequest{Request: req, Serial: serial(t), NotBefore: now()})
		if err != nil {
			t.Fatalf("%s: Issue: %v", c.name, err)
		}
		out[c.name] = got
	}
	return out
}

// lintErrors runs the complete zlint registry (no exclusions) and returns
// the names of lints at Error or Fatal.
func lintErrors(t testing.TB, der []byte) []string {
	t.Helper()
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	rs := zlint.LintCertificate(c)
	var bad []string
	for name, r := range rs.Results {
		if r.Status == zl.Error || r.Status == zl.Fatal {
			bad = append(bad, name+": "+r.Details)
		}
	}
	slices.Sort(bad)
	return bad
}

func lintWarnings(t testing.TB, der []byte) []string {
	t.Helper()
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	rs := zlint.LintCertificate(c)
	var w []string
	for name, r := range rs.Results {
		if r.Status == zl.Warn {
			w = append(w, name)
		}
	}
	slices.Sort(w)
	return w
}

// checkIssued verifies issued certificates with zlint and the openssl CLI.
func checkIssued(t *testing.T, ca *CA, dir string, issued map[string]*Issued) {
	for name, got := range issued {
		t.Run(name, func(t *testing.T) {
			cert := got.Cert
			p, _ := ca.Profiles.Get(strings.TrimSuffix(strings.TrimSuffix(name, "-rsa"), "-individual"))
			// zlint, full registry: only the profile's documented exclusions
			// may fire.
			for _, e := range lintErrors(t, got.DER) {
				lintName, _, _ := strings.Cut(e, ":")
				if !slices.Contains(p.lintExclusions, lintName) {
					t.Errorf("zlint error not excluded by profile: %s", e)
				}
			}
			if w := lintWarnings(t, got.DER); len(w) > 0 {
				t.Logf("zlint warnings: %v", w)
			}
			// The CSR subject must not leak into the certificate.
			if strings.Contains(cert.Subject.String(), "must-be-ignored") || strings.Contains(cert.Subject.String(), "Unverified") || slices.Contains(cert.DNSNames, "unvalidated.example.org") {
				t.Errorf("CSR data leaked into certificate: %v %v", cert.Subject, cert.DNSNames)
			}
			iss, _ := ca.IssuerFor(p.Name)
			wantCRL := testURLs.Base + "/repository/crl/" + iss.ID() + "/" + strconv.Itoa(ShardFor(cert.SerialNumber, iss.CRLShards())) + ".crl"
			if len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != wantCRL {
				t.Errorf("CRL DP = %v, want %s", cert.CRLDistributionPoints, wantCRL)
			}
			if len(cert.OCSPServer) != 1 || cert.OCSPServer[0] != testURLs.Base+"/ocsp" {
				t.Errorf("OCSP = %v", cert.OCSPServer)
			}
			if cert.SerialNumber.BitLen() < 64 {
				t.Errorf("serial too short: %x", cert.SerialNumber)
			}
			checkPolicies(t, p, cert)

			// openssl verify against the root, the issuing CA untrusted, with
			// the purpose of the profile (this checks EKU chaining too).
			leaf := writeFile(t, dir, name+".pem", pemCert(got.DER))
			purpose := "sslserver"
			if p.Purpose == PurposeClientSign {
				purpose = "smimesign"
			}
			out := openssl(t, dir, "verify", "-x509_strict", "-purpose", purpose,
				"-CAfile", filepath.Join(ca.Dir(), "root.pem"), "-untrusted", filepath.Join(ca.Dir(), iss.ID()+".pem"), leaf)
			if !strings.Contains(out, ": OK") {
				t.Errorf("openssl verify: %s", out)
			}
		})
	}
}

// checkPolicies decodes the certificate policies extension and checks the
// BR OID, the CA OID, the CPS URI and (for client) the liability notice.
func checkPolicies(t *testing.T, p *Profile, cert *x509.Certificate) {
	t.Helper()
	var raw []byte
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidCertificatePolicies) {
			raw = e.Value
		}
	}
	if raw == nil {
		t.Fatal("no certificate policies extension")
	}
	var infos []struct {
		Policy     asn1.ObjectIdentifier
		Qualifiers []struct {
			ID        asn1.ObjectIdentifier
			Qualifier asn1.RawValue
		} `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(raw, &infos); err != nil {
		t.Fatalf("policies: %v", err)
	}
	var oids []string
	var cps, notice string
	for _, pi := range infos {
		oids = append(oids, pi.Policy.String())
		for _, q := range pi.Qualifiers {
			switch {
			case q.ID.Equal(oidQualifierCPS):
				cps = string(q.Qualifier.Bytes)
			case q.ID.Equal(oidQualifierUserNotice):
				var un struct {
					Text string `asn1:"utf8"`
				}
				if _, err := asn1.Unmarshal(q.Qualifier.FullBytes, &un); err != nil {
					t.Fatalf("user notice: %v", err)
				}
				notice = un.Text
			}
		}
	}
	want := p.BRPolicy
	if p.SponsoredPolicy != nil && len(cert.Subject.Organization) > 0 {
		want = p.SponsoredPolicy
	}
	if want != nil && (len(oids) == 0 || oids[0] != want.String()) {
		t.Errorf("first policy %v, want CA/B OID %v", oids, want)
	}
	if !slices.Contains(oids, testPolicy.OID.String()) {
		t.Errorf("CA policy OID missing: %v", oids)
	}
	if cps != testPolicy.CPSURI {
		t.Errorf("CPS URI %q", cps)
	}
	if p.LiabilityNotice != (notice != "") {
		t.Errorf("liability notice %q for %s", notice, p.Name)
	}
	if p.LiabilityNotice && (!strings.Contains(notice, "1,000,000") || !strings.Contains(notice, "JPY")) {
		t.Errorf("liability notice lacks the cap: %q", notice)
	}
}

func TestIssueFileKeys(t *testing.T) {
	ca := getFileCA(t)
	checkIssued(t, ca, t.TempDir(), issueAll(t, ca))
}

func TestIssueRefusals(t *testing.T) {
	ca := getFileCA(t)
	tls, _ := ca.Issuer("tls-1")
	key := ecKey(t, elliptic.P256())
	base := IssueRequest{Request: Request{Profile: ProfileServerDV, CSR: makeCSR(t, key), Domains: []string{"example.com"}}, Serial: serial(t), NotBefore: now()}

	r := base
	r.Validity = 200 * Day
	if _, err := tls.Issue(context.Background(), &r); !errors.Is(err, ErrValidity) {
		t.Errorf("200-day TLS certificate: got %v, want ErrValidity", err)
	}
	r = base
	r.Profile = ProfileClientSign
	if _, err := tls.Issue(context.Background(), &r); !errors.Is(err, ErrProfileNotIssuer) {
		t.Errorf("client profile on TLS CA: got %v", err)
	}
	r = base
	r.Serial = nil
	if _, err := tls.Issue(context.Background(), &r); err == nil {
		t.Error("nil serial accepted")
	}
	r = base
	r.NotBefore = time.Time{}
	if _, err := tls.Issue(context.Background(), &r); err == nil {
		t.Error("zero NotBefore accepted")
	}
	// Default validity follows the SC-081 schedule.
	got, err := tls.Issue(context.Background(), &base)
	if err != nil {
		t.Fatal(err)
	}
	v := got.Cert.NotAfter.Sub(got.Cert.NotBefore) + time.Second
	p, _ := ca.Profiles.Get(ProfileServerDV)
	if v != p.MaxValidityAt(base.NotBefore) || v > 199*Day {
		t.Errorf("default TLS validity %v", v)
	}
}

func TestTLSValiditySchedule(t *testing.T) {
	p, _ := DefaultProfiles.Get(ProfileServerDV)
	for _, c := range []struct {
		at   string
		days int
	}{{"2026-01-01", 397}, {"2026-03-15", 199}, {"2027-03-15", 99}, {"2029-03-15", 46}} {
		at, _ := time.Parse(time.DateOnly, c.at)
		if got := p.MaxValidityAt(at); got != time.Duration(c.days)*Day {
			t.Errorf("%s: %v, want %d days", c.at, got, c.days)
		}
	}
	c, _ := DefaultProfiles.Get(ProfileClientSign)
	if c.MaxValidityAt(time.Now()) != 825*Day || c.DefaultValidity != 365*Day {
		t.Errorf("client validity %v/%v", c.MaxValidity, c.DefaultValidity)
	}
}

func TestLintRefusesBadProfile(t *testing.T) {
	ca := getFileCA(t)
	iss, _ := ca.Issuer("tls-1")
	p, _ := ca.Profiles.Get(ProfileServerDV)
	broken := *p
	broken.KeyUsage |= x509.KeyUsageCertSign // a leaf that could sign certificates
	_, err := iss.issue(&broken, ecKey(t, elliptic.P256()).Public(), Subject{}, []string{"example.com"}, "", serial(t), now(), 0)
	if !errors.Is(err, ErrLint) {
		t.Fatalf("got %v, want ErrLint", err)
	}
	var le *lint.Error
	if !errors.As(err, &le) || len(le.Findings) == 0 || !strings.Contains(err.Error(), "e_sub_cert_key_usage_cert_sign_bit_set") {
		t.Errorf("lint refusal does not name the lint: %v", err)
	}
	// Excluding a lint that does not exist is a configuration error, not a
	// silent no-op.
	if err := lint.CertificateDER(ca.Root.Raw, []string{"e_no_such_lint"}); err == nil {
		t.Error("unknown lint name accepted")
	}
}

// TestIssueConcurrent: one Issuer serves concurrent activities (run with
// -race to check the lint registry cache and the signers).
func TestIssueConcurrent(t *testing.T) {
	ca := getFileCA(t)
	iss, _ := ca.Issuer("tls-1")
	csr := makeCSR(t, ecKey(t, elliptic.P256()))
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		s := serial(t)
		go func() {
			_, err := iss.Issue(context.Background(), &IssueRequest{
				Request: Request{Profile: ProfileServerDV, CSR: csr, Domains: []string{"example.com"}},
				Serial:  s, NotBefore: now(),
			})
			errs <- err
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
