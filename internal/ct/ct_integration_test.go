//go:build integration

package ct_test

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
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/certificate-transparency-go/ctutil"
	ctx509 "github.com/google/certificate-transparency-go/x509"

	"certdesk/internal/ct"
	"certdesk/internal/pki"
	"certdesk/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// issuingCA signs an intermediate under the harness root, which the logs
// accept.
func issuingCA(t *testing.T, logs *testenv.CTLogs) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "CT test issuing CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, logs.Root, &key.PublicKey, logs.RootKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func leafTemplate(validity time.Duration) (*x509.Certificate, crypto.PublicKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	now := time.Now().UTC().Truncate(time.Second)
	name := fmt.Sprintf("ct-%x.example.jp", serial.Bytes()[:4])
	return &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: now, NotAfter: now.Add(validity - time.Second),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}, &key.PublicKey
}

// leafIndex reads the Static CT API leaf_index SCT extension (type 0, a
// 40-bit index).
func leafIndex(t *testing.T, s ct.SCT) uint64 {
	t.Helper()
	p, err := s.Parse()
	if err != nil {
		t.Fatal(err)
	}
	e := []byte(p.Extensions)
	if len(e) != 8 || e[0] != 0 || binary.BigEndian.Uint16(e[1:3]) != 5 {
		t.Fatalf("SCT extensions %x: no leaf_index", e)
	}
	return uint64(e[3])<<32 | uint64(binary.BigEndian.Uint32(e[4:]))
}

func TestPrecertToFinalCertificateOnRealLogs(t *testing.T) {
	logs := testenv.SharedCTLogs(t)
	list, err := ct.LoadLogList(logs.ListPath)
	if err != nil {
		t.Fatal(err)
	}
	ca, caKey := issuingCA(t, logs)
	tmpl, pub := leafTemplate(90 * 24 * time.Hour)
	preTmpl, err := pki.PrecertTemplate(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	preDER, err := x509.CreateCertificate(rand.Reader, preTmpl, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	chain := [][]byte{preDER, ca.Raw}

	// Every local log is a Static CT API log: Apple's (and, for older
	// certificates, Chrome's) RFC 6962-log rule cannot be met and the
	// default policy refuses up front, saying so.
	if _, err := ct.Default.Candidates(list, tmpl.NotBefore, tmpl.NotAfter, time.Now()); err == nil || !errors.Is(err, ct.ErrPolicy) || !strings.Contains(err.Error(), "RFC 6962") {
		t.Errorf("default policy with only static logs: %v", err)
	}
	policy, err := ct.ParsePolicy("chrome-static,apple-static")
	if err != nil {
		t.Fatal(err)
	}
	cands, err := policy.Candidates(list, tmpl.NotBefore, tmpl.NotAfter, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	need := policy.Required(tmpl.NotBefore, tmpl.NotAfter)
	if need != 2 || len(cands) < need {
		t.Fatalf("required %d, %d candidates", need, len(cands))
	}
	sizes := map[[32]byte]uint64{}
	for _, l := range logs.Logs {
		sizes[l.ID], _ = l.TreeSize()
	}

	// Concurrent submissions (the harness warmed the logs up).
	sub := &ct.Submitter{Timeout: 2 * time.Minute}
	scts := make([]ct.SCT, need)
	errs := make([]error, need)
	var wg sync.WaitGroup
	for i, l := range cands[:need] {
		wg.Go(func() { scts[i], errs[i] = sub.Submit(context.Background(), l, chain) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := policy.Satisfied(list, scts, tmpl.NotBefore, tmpl.NotAfter); err != nil {
		t.Fatal(err)
	}
	if err := policy.Satisfied(list, scts[:1], tmpl.NotBefore, tmpl.NotAfter); err == nil || !errors.Is(err, ct.ErrPolicy) {
		t.Errorf("one SCT satisfied the policy: %v", err)
	}

	// Each SCT verifies with certificate-transparency-go's verifier against
	// the key in the log list, over the precertificate entry.
	ctPre, err := ctx509.ParseCertificate(preDER)
	if ctx509.IsFatal(err) {
		t.Fatal(err)
	}
	ctCA, _ := ctx509.ParseCertificate(ca.Raw)
	for _, s := range scts {
		p, _ := s.Parse()
		l := list.ByID(s.LogID)
		if err := ctutil.VerifySCT(l.PublicKey, []*ctx509.Certificate{ctPre, ctCA}, p, false); err != nil {
			t.Errorf("SCT of %s: %v", l.Description, err)
		}
		// A different precertificate does not verify with this SCT.
		other, opub := leafTemplate(90 * 24 * time.Hour)
		other.SerialNumber = tmpl.SerialNumber
		otherPre, _ := pki.PrecertTemplate(other)
		otherDER, _ := x509.CreateCertificate(rand.Reader, otherPre, ca, opub, caKey)
		if err := ct.Verify(l, [][]byte{otherDER, ca.Raw}, s); err == nil {
			t.Errorf("SCT of %s verified for another precertificate", l.Description)
		}
	}

	// Final certificate: the SCT list in place of the poison.
	sctList, err := ct.EncodeSCTList(scts)
	if err != nil {
		t.Fatal(err)
	}
	finalTmpl, err := pki.FinalTemplate(preTmpl, sctList)
	if err != nil {
		t.Fatal(err)
	}
	finalDER, err := x509.CreateCertificate(rand.Reader, finalTmpl, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	finalCert, _ := x509.ParseCertificate(finalDER)
	preCert, _ := x509.ParseCertificate(preDER)
	if err := pki.CheckPrecertMatch(preCert, finalCert); err != nil {
		t.Fatal(err)
	}
	// The log holds the TBS as RFC 6962 rebuilds it: without the poison.
	preTBS, err := ctx509.RemoveCTPoison(preCert.RawTBSCertificate)
	if err != nil {
		t.Fatal(err)
	}
	// The embedded SCTs verify against the final certificate (the verifier
	// rebuilds the precertificate entry from it).
	ctFinal, err := ctx509.ParseCertificate(finalDER)
	if ctx509.IsFatal(err) {
		t.Fatal(err)
	}
	if n := len(ctFinal.SCTList.SCTList); n != need {
		t.Fatalf("%d embedded SCTs, want %d", n, need)
	}
	for _, s := range scts {
		p, _ := s.Parse()
		if err := ctutil.VerifySCT(list.ByID(s.LogID).PublicKey, []*ctx509.Certificate{ctFinal, ctCA}, p, true); err != nil {
			t.Errorf("embedded SCT: %v", err)
		}
	}

	// OpenSSL, which nobody here wrote, sees the embedded SCTs.
	cmd := exec.Command("openssl", "x509", "-inform", "DER", "-noout", "-text")
	cmd.Stdin = bytes.NewReader(finalDER)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "CT Precertificate SCTs") {
		t.Fatalf("openssl does not show the SCTs:\n%s", text)
	}
	for _, s := range scts {
		id := strings.ToUpper(hex.EncodeToString(s.LogID[:4]))
		if !strings.Contains(strings.ReplaceAll(text, ":", ""), id) {
			t.Errorf("openssl output lacks log ID %s", id)
		}
	}

	// Each log's own read API holds the precertificate: the checkpoint
	// grew and the entry bundle at the SCT's leaf index carries the
	// precertificate's TBS (poison removed), the issuer key hash and the
	// precertificate itself; the issuer is served by fingerprint.
	issuerKeyHash := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	caFP := sha256.Sum256(ca.Raw)
	for _, s := range scts {
		var l *testenv.CTLog
		for _, x := range logs.Logs {
			if x.ID == s.LogID {
				l = x
			}
		}
		idx := leafIndex(t, s)
		size, err := l.TreeSize()
		if err != nil || size <= sizes[l.ID] || idx >= size {
			t.Errorf("%s: tree size %d (was %d), leaf index %d, %v", l.Name, size, sizes[l.ID], idx, err)
			continue
		}
		bundle, err := l.EntryBundle(idx)
		if err != nil {
			t.Fatal(err)
		}
		for what, b := range map[string][]byte{"TBS": preTBS, "issuer key hash": issuerKeyHash[:], "precertificate": preDER} {
			if !bytes.Contains(bundle, b) {
				t.Errorf("%s: entry bundle lacks the %s", l.Name, what)
			}
		}
		resp, err := http.Get(l.MonitoringURL() + "/issuer/" + hex.EncodeToString(caFP[:]))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s: issuer not served: %v %v", l.Name, resp.Status, err)
		}
		resp.Body.Close()
	}
}

// A log that is down fails within the submission timeout, and the policy
// refuses the SCTs collected without it.
func TestOneLogDown(t *testing.T) {
	logs := testenv.NewCTLogs(t, 2, nil)
	list, err := ct.LoadLogList(logs.ListPath)
	if err != nil {
		t.Fatal(err)
	}
	ca, caKey := issuingCA(t, logs)
	tmpl, pub := leafTemplate(200 * 24 * time.Hour)
	preTmpl, _ := pki.PrecertTemplate(tmpl)
	preDER, err := x509.CreateCertificate(rand.Reader, preTmpl, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	policy, _ := ct.ParsePolicy("chrome-static,apple-static")
	// Over 180 days: 3 SCTs, and two logs are not enough.
	if _, err := policy.Candidates(list, tmpl.NotBefore, tmpl.NotAfter, time.Now()); err == nil || !strings.Contains(err.Error(), "need 3") {
		t.Errorf("two logs for a 200-day certificate: %v", err)
	}
	tmpl.NotAfter = tmpl.NotBefore.Add(90 * 24 * time.Hour)
	preTmpl, _ = pki.PrecertTemplate(tmpl)
	preDER, _ = x509.CreateCertificate(rand.Reader, preTmpl, ca, pub, caKey)

	down := logs.Logs[1]
	down.Stop()
	sub := &ct.Submitter{Timeout: 5 * time.Second}
	var scts []ct.SCT
	for _, l := range list.Logs {
		s, err := sub.Submit(context.Background(), l, [][]byte{preDER, ca.Raw})
		if l.ID == down.ID {
			if err == nil {
				t.Fatal("the stopped log returned an SCT")
			}
			t.Logf("down: %v", err)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		scts = append(scts, s)
	}
	err = policy.Satisfied(list, scts, tmpl.NotBefore, tmpl.NotAfter)
	if err == nil || !errors.Is(err, ct.ErrPolicy) {
		t.Fatalf("one log's SCT satisfied the policy: %v", err)
	}
	t.Logf("refusal: %v", err)
	// Back up: the second SCT completes the set.
	if err := down.Start(); err != nil {
		t.Fatal(err)
	}
	s, err := sub.Submit(context.Background(), list.ByID(down.ID), [][]byte{preDER, ca.Raw})
	if err != nil {
		t.Fatal(err)
	}
	if err := policy.Satisfied(list, append(scts, s), tmpl.NotBefore, tmpl.NotAfter); err != nil {
		t.Fatal(err)
	}
}
