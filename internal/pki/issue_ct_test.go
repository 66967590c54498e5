package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ctgo "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/ctutil"
	"github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	zx509 "github.com/zmap/zcrypto/x509"
	zlint "github.com/zmap/zlint/v3"
	zl "github.com/zmap/zlint/v3/lint"

	"certdesk/internal/ct"
)

// testLog is a throwaway CT log key: it signs SCTs exactly as a log would
// (RFC 6962 §3.2, over the precertificate entry), so the SCT lists of the
// unit tests are real, verifiable ones without a running log.
type testLog struct {
	key *ecdsa.PrivateKey
	id  [sha256.Size]byte
}

func newTestLog(t *testing.T) *testLog {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{key: k, id: sha256.Sum256(spki)}
}

// sct signs an SCT for the precertificate chain [pre, issuer], now.
func (l *testLog) sct(t *testing.T, preDER, issuerDER []byte) ct.SCT {
	t.Helper()
	return l.sctAt(t, preDER, issuerDER, time.Now())
}

func (l *testLog) sctAt(t *testing.T, preDER, issuerDER []byte, at time.Time) ct.SCT {
	t.Helper()
	ts := uint64(at.UnixMilli())
	leaf, err := ctgo.MerkleTreeLeafFromRawChain([]ctgo.ASN1Cert{{Data: preDER}, {Data: issuerDER}}, ctgo.PrecertLogEntryType, ts)
	if err != nil {
		t.Fatal(err)
	}
	s := ctgo.SignedCertificateTimestamp{SCTVersion: ctgo.V1, LogID: ctgo.LogID{KeyID: l.id}, Timestamp: ts}
	input, err := ctgo.SerializeSCTSignatureInput(s, ctgo.LogEntry{Leaf: *leaf})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := tls.CreateSignature(*l.key, tls.SHA256, input)
	if err != nil {
		t.Fatal(err)
	}
	s.Signature = ctgo.DigitallySigned(sig)
	raw, err := tls.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return ct.SCT{LogID: l.id, Timestamp: ts, Raw: raw}
}

func extension(c *x509.Certificate, id asn1.ObjectIdentifier) *pkix.Extension {
	for i := range c.Extensions {
		if c.Extensions[i].Id.Equal(id) {
			return &c.Extensions[i]
		}
	}
	return nil
}

// lintResults runs the full zlint registry and returns every lint that did
// not pass or was not applicable, as "name=status".
func lintResults(t *testing.T, der []byte) map[string]string {
	t.Helper()
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for name, r := range zlint.LintCertificate(c).Results {
		if r.Status != zl.Pass && r.Status != zl.NA && r.Status != zl.NE {
			out[name] = r.Status.String()
		}
	}
	return out
}

func ctRequest(t *testing.T) *IssueRequest {
	return &IssueRequest{
		Request: Request{Profile: ProfileServerDV, CSR: makeCSR(t, ecKey(t, elliptic.P256())),
			Domains: []string{"www.example.jp", "example.jp", "*.shop.example.co.jp"}},
		Serial: serial(t), NotBefore: now(),
	}
}

func TestIssuePrecertAndFinal(t *testing.T) {
	ca := getFileCA(t)
	iss, _ := ca.Issuer("tls-1")
	req := ctRequest(t)
	ctx := context.Background()

	pre, err := iss.IssuePrecert(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if e := extension(pre.Cert, OIDCTPoison); e == nil || !e.Critical || !bytes.Equal(e.Value, asn1Null) {
		t.Fatalf("precertificate poison extension: %+v", e)
	}
	if extension(pre.Cert, OIDCTSCTList) != nil {
		t.Fatal("precertificate carries an SCT list")
	}
	if err := pre.Cert.CheckSignatureFrom(iss.Certificate()); err != nil {
		t.Fatalf("precertificate not signed by the issuing CA: %v", err)
	}
	// The precertificate is the certificate Issue signs for the same
	// request, plus the poison.
	plain, err := iss.Issue(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	preTBS, err := ctx509.RemoveCTPoison(pre.Cert.RawTBSCertificate)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(preTBS, plain.Cert.RawTBSCertificate) {
		t.Fatal("the precertificate without poison differs from what Issue signs for the same request")
	}

	logs := []*testLog{newTestLog(t), newTestLog(t)}
	var scts []ct.SCT
	for _, l := range logs {
		scts = append(scts, l.sct(t, pre.DER, iss.Certificate().Raw))
	}
	sctList, err := ct.EncodeSCTList(scts)
	if err != nil {
		t.Fatal(err)
	}
	final, err := iss.IssueFinal(ctx, req, pre.DER, sctList)
	if err != nil {
		t.Fatal(err)
	}
	if extension(final.Cert, OIDCTPoison) != nil || IsPrecertificate(final.Cert) {
		t.Fatal("final certificate carries the poison")
	}
	e := extension(final.Cert, OIDCTSCTList)
	if e == nil || e.Critical {
		t.Fatalf("final SCT list extension: %+v", e)
	}
	var inner []byte
	if _, err := asn1.Unmarshal(e.Value, &inner); err != nil || !bytes.Equal(inner, sctList) {
		t.Fatalf("SCT list extension value %x: %v", e.Value, err)
	}
	if err := CheckPrecertMatch(pre.Cert, final.Cert); err != nil {
		t.Fatal(err)
	}
	if final.Cert.SerialNumber.Cmp(req.Serial) != 0 || final.Shard != pre.Shard {
		t.Fatalf("final serial %x shard %d, precertificate shard %d", final.Cert.SerialNumber, final.Shard, pre.Shard)
	}
	if err := final.Cert.CheckSignatureFrom(iss.Certificate()); err != nil {
		t.Fatal(err)
	}
	// The embedded SCTs verify over the final certificate with
	// certificate-transparency-go, which rebuilds the precertificate entry.
	ctFinal, err := ctx509.ParseCertificate(final.DER)
	if ctx509.IsFatal(err) {
		t.Fatal(err)
	}
	ctIssuer, _ := ctx509.ParseCertificate(iss.Certificate().Raw)
	for i, s := range scts {
		p, _ := s.Parse()
		if err := ctutil.VerifySCT(logs[i].key.Public(), []*ctx509.Certificate{ctFinal, ctIssuer}, p, true); err != nil {
			t.Errorf("embedded SCT %d: %v", i, err)
		}
	}

	// OpenSSL parses the list.
	dir := t.TempDir()
	text := openssl(t, dir, "x509", "-inform", "DER", "-in", writeFile(t, dir, "final.der", final.DER), "-noout", "-text")
	if !strings.Contains(text, "CT Precertificate SCTs") {
		t.Fatalf("openssl does not show the SCTs:\n%s", text)
	}
	flat := strings.ReplaceAll(text, ":", "")
	for _, l := range logs {
		if id := strings.ToUpper(hex.EncodeToString(l.id[:8])); !strings.Contains(flat, id) {
			t.Errorf("openssl output lacks log ID %s", id)
		}
	}
	preText := openssl(t, dir, "x509", "-inform", "DER", "-in", writeFile(t, dir, "pre.der", pre.DER), "-noout", "-text")
	if !strings.Contains(preText, "CT Precertificate Poison: critical") {
		t.Errorf("openssl does not show the critical poison:\n%s", preText)
	}

	// zlint, full registry: no error anywhere; the final certificate and
	// the precertificate warn about nothing the plain certificate does not.
	for name, der := range map[string][]byte{"precertificate": pre.DER, "final": final.DER} {
		if errs := lintErrors(t, der); len(errs) > 0 {
			t.Errorf("zlint errors on the %s: %v", name, errs)
		}
	}
	plainW := lintWarnings(t, plain.DER)
	for name, der := range map[string][]byte{"precertificate": pre.DER, "final": final.DER} {
		for _, w := range lintWarnings(t, der) {
			if !slices.Contains(plainW, w) {
				t.Errorf("zlint warning on the %s not seen on Issue certificates: %s", name, w)
			}
		}
	}
	// The CT lints ran and passed where they apply: the plain certificate
	// gets a notice for lacking SCTs, the final one does not.
	plainR, preR, finalR := lintResults(t, plain.DER), lintResults(t, pre.DER), lintResults(t, final.DER)
	t.Logf("zlint non-pass results: Issue %v, precertificate %v, final %v", plainR, preR, finalR)
	if plainR["n_ct_sct_policy_count_unsatisfied"] == "" {
		t.Error("the plain certificate did not draw the SCT-count notice: the CT lints did not run")
	}
	if s, ok := finalR["n_ct_sct_policy_count_unsatisfied"]; ok {
		t.Errorf("final certificate with 2 SCTs: n_ct_sct_policy_count_unsatisfied = %s", s)
	}
}

func TestIssueFinalRefusesMismatch(t *testing.T) {
	ca := getFileCA(t)
	iss, _ := ca.Issuer("tls-1")
	ctx := context.Background()
	req := ctRequest(t)
	pre, err := iss.IssuePrecert(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	sctList, err := ct.EncodeSCTList([]ct.SCT{newTestLog(t).sct(t, pre.DER, iss.Certificate().Raw)})
	if err != nil {
		t.Fatal(err)
	}

	mutations := map[string]func(r *IssueRequest){
		"other notAfter": func(r *IssueRequest) { r.Validity = 90 * Day },
		"other domains":  func(r *IssueRequest) { r.Domains = []string{"www.example.jp", "example.jp"} },
		"more domains":   func(r *IssueRequest) { r.Domains = append(slices.Clone(r.Domains), "extra.example.jp") },
		"other order":    func(r *IssueRequest) { r.Domains = []string{"example.jp", "www.example.jp", "*.shop.example.co.jp"} },
		"other serial":   func(r *IssueRequest) { r.Serial = serial(t) },
		"other key":      func(r *IssueRequest) { r.CSR = makeCSR(t, rsaKey(t, 2048)) },
		"other notBefore": func(r *IssueRequest) {
			r.NotBefore = r.NotBefore.Add(time.Minute)
		},
		"other profile": func(r *IssueRequest) {
			r.Profile = ProfileServerOV
			r.Subject = Subject{Organization: "株式会社サンプル", Locality: "Chiyoda-ku", Province: "Tokyo", Country: "JP"}
		},
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			r := *req
			mutate(&r)
			got, err := iss.IssueFinal(ctx, &r, pre.DER, sctList)
			if !errors.Is(err, ErrPrecertMismatch) || got != nil {
				t.Fatalf("got %v, %v; want ErrPrecertMismatch and nothing", got, err)
			}
		})
	}

	// Not a precertificate: the certificate Issue signs for the request.
	plain, err := iss.Issue(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := iss.IssueFinal(ctx, req, plain.DER, sctList); !errors.Is(err, ErrPrecertMismatch) || got != nil {
		t.Errorf("certificate without poison as precertificate: %v", err)
	}
	// A precertificate with the same contents and issuer name signed by
	// another key (an impostor CA with tls-1's subject).
	impostorKey := freshECKey(t)
	impostorTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), RawSubject: iss.Certificate().RawSubject,
		NotBefore: iss.Certificate().NotBefore, NotAfter: iss.Certificate().NotAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId: iss.Certificate().SubjectKeyId,
	}
	impDER, err := x509.CreateCertificate(rand.Reader, impostorTmpl, impostorTmpl, impostorKey.Public(), impostorKey)
	if err != nil {
		t.Fatal(err)
	}
	imp, _ := x509.ParseCertificate(impDER)
	b, err := iss.requestTemplate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	forgedTmpl, _ := PrecertTemplate(b.tmpl)
	forged, err := x509.CreateCertificate(rand.Reader, forgedTmpl, imp, b.pub, impostorKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := iss.IssueFinal(ctx, req, forged, sctList); !errors.Is(err, ErrPrecertMismatch) || got != nil {
		t.Errorf("precertificate of another key: %v", err)
	}
	// Another issuer does not finish tls-1's precertificate.
	client, _ := ca.Issuer("client-1")
	if got, err := client.IssueFinal(ctx, req, pre.DER, sctList); err == nil || got != nil {
		t.Error("client-1 finished a tls-1 precertificate")
	}
	if _, err := iss.IssueFinal(ctx, req, pre.DER, nil); err == nil {
		t.Error("empty SCT list accepted")
	}
	if _, err := iss.IssueFinal(ctx, req, []byte("garbage"), sctList); err == nil {
		t.Error("unparsable precertificate accepted")
	}
	// The unmodified request still works after all those refusals.
	if _, err := iss.IssueFinal(ctx, req, pre.DER, sctList); err != nil {
		t.Fatal(err)
	}
}

func TestClientProfileRefusesCT(t *testing.T) {
	ca := getFileCA(t)
	client, _ := ca.Issuer("client-1")
	var c issueCase
	for _, x := range issueCases() {
		if x.name == "client-sign" {
			c = x
		}
	}
	req := &IssueRequest{Request: c.req, Serial: serial(t), NotBefore: now()}
	req.CSR = makeCSR(t, c.key(t))
	ctx := context.Background()
	if got, err := client.IssuePrecert(ctx, req); !errors.Is(err, ErrNoCT) || got != nil {
		t.Fatalf("client-sign IssuePrecert: %v, %v; want ErrNoCT", got, err)
	}
	// Issue is unchanged for the client profile: no poison, no SCT list.
	got, err := client.Issue(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if extension(got.Cert, OIDCTPoison) != nil || extension(got.Cert, OIDCTSCTList) != nil {
		t.Error("client certificate carries a CT extension")
	}
	// IssueFinal refuses too, whatever precertificate it is handed.
	tls, _ := ca.Issuer("tls-1")
	pre, err := tls.IssuePrecert(ctx, ctRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	sctList, _ := ct.EncodeSCTList([]ct.SCT{newTestLog(t).sct(t, pre.DER, tls.Certificate().Raw)})
	if got, err := client.IssueFinal(ctx, req, pre.DER, sctList); !errors.Is(err, ErrNoCT) || got != nil {
		t.Errorf("client-sign IssueFinal: %v; want ErrNoCT", err)
	}
}

// countingSigner counts the signatures made with the CA key.
type countingSigner struct {
	crypto.Signer
	mu sync.Mutex
	n  int
}

func (s *countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	return s.Signer.Sign(r, digest, opts)
}

func (s *countingSigner) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// TestIssueFinalMismatchSignsNothing: the refusal comes before the CA key
// is used, so no certificate differing from the precertificate ever exists.
func TestIssueFinalMismatchSignsNothing(t *testing.T) {
	ca := getFileCA(t)
	tls1, _ := ca.Issuer("tls-1")
	signer := &countingSigner{Signer: tls1.signer}
	iss, err := NewIssuer(IssuerConfig{ID: tls1.id, Cert: tls1.cert, Signer: signer, Purposes: tls1.purposes,
		URLs: tls1.urls, CRLShards: tls1.shards, Policy: tls1.policy})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := ctRequest(t)
	pre, err := iss.IssuePrecert(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if signer.count() != 1 {
		t.Fatalf("%d CA signatures for one precertificate", signer.count())
	}
	sctList, _ := ct.EncodeSCTList([]ct.SCT{newTestLog(t).sct(t, pre.DER, iss.Certificate().Raw)})
	r := *req
	r.Domains = []string{"other.example.jp"}
	if _, err := iss.IssueFinal(ctx, &r, pre.DER, sctList); !errors.Is(err, ErrPrecertMismatch) {
		t.Fatalf("got %v, want ErrPrecertMismatch", err)
	}
	if signer.count() != 1 {
		t.Fatalf("the CA key signed during a refused IssueFinal (%d signatures)", signer.count())
	}
	if _, err := iss.IssueFinal(ctx, req, pre.DER, sctList); err != nil || signer.count() != 2 {
		t.Fatalf("IssueFinal: %v, %d signatures", err, signer.count())
	}
}

// TestIssueFinalLintsSCTTimes: zlint's e_excessively_backdated (BR
// §7.1.2.7: notBefore within 48 hours of signing, judged by the earliest
// SCT) runs before the final certificate is signed, so SCTs gathered more
// than 48 hours after the stored NotBefore make IssueFinal refuse.
func TestIssueFinalLintsSCTTimes(t *testing.T) {
	ca := getFileCA(t)
	iss, _ := ca.Issuer("tls-1")
	ctx := context.Background()
	req := ctRequest(t)
	pre, err := iss.IssuePrecert(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	late := newTestLog(t).sctAt(t, pre.DER, iss.Certificate().Raw, req.NotBefore.Add(72*time.Hour))
	sctList, _ := ct.EncodeSCTList([]ct.SCT{late})
	got, err := iss.IssueFinal(ctx, req, pre.DER, sctList)
	if !errors.Is(err, ErrLint) || got != nil || !strings.Contains(err.Error(), "backdated") {
		t.Fatalf("SCT 72 h after notBefore: %v; want the backdating lint refusal", err)
	}
}
