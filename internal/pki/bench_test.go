package pki

// Benchmarks. Run with
//
//	go test -run x -bench . -benchtime=1x ./internal/pki/...
//
// Each iteration does a fixed batch of work and reports rates with
// b.ReportMetric, so a single iteration already gives meaningful numbers.

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"math/big"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

var (
	benchCAOnce sync.Once
	benchCA     *CA
	benchCAErr  error
)

// getBenchCA: an ECDSA P-256 and an RSA-2048 TLS issuing CA, 16 CRL shards.
func getBenchCA(b *testing.B) *CA {
	benchCAOnce.Do(func() {
		dir := filepath.Join(testRoot, "bench-ca")
		benchCA, benchCAErr = Bootstrap(context.Background(), BootstrapConfig{
			Dir:          dir,
			Keys:         &FileKeyStore{Dir: filepath.Join(dir, "keys"), Passphrase: testPassphrase, Iterations: testPBKDF2Iterations},
			Organization: "CertDesk Bench KK", Country: "JP", URLs: testURLs, Policy: testPolicy,
			Issuers: []IssuerSpec{
				{ID: "ecdsa-p256", Purpose: PurposeTLSServer, KeyAlgorithm: ECDSAP256, CRLShards: 16},
				{ID: "rsa-2048", Purpose: PurposeTLSServer, KeyAlgorithm: RSA2048, CRLShards: 16},
			},
		})
	})
	if benchCAErr != nil {
		b.Fatal(benchCAErr)
	}
	return benchCA
}

// rawSignRate measures bare signatures per second with signer (SHA-256
// digest, as x509 uses for these keys).
func rawSignRate(b *testing.B, signer crypto.Signer, n int) float64 {
	digest := sha256.Sum256([]byte("benchmark"))
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkIssue: certificates per second through Issue (CSR and key
// checks, template, pre-issuance lint with the lint issuer, real signature,
// TBS comparison) against bare signatures per second on the same key.
func BenchmarkIssue(b *testing.B) {
	ca := getBenchCA(b)
	csr := makeCSR(b, ecKey(b, elliptic.P256()))
	const batch = 200
	for _, id := range []string{"ecdsa-p256", "rsa-2048"} {
		b.Run(id, func(b *testing.B) {
			iss, _ := ca.Issuer(id)
			serials := make([]*big.Int, batch)
			for i := range serials {
				serials[i] = serial(b)
			}
			nb := now()
			// Issuance and bare signatures alternate in chunks of 10, so
			// both see the same machine load (the box is shared).
			const chunk = 10
			digest := sha256.Sum256([]byte("benchmark"))
			var issueTime, rawTime time.Duration
			for b.Loop() {
				for i := 0; i < batch; i += chunk {
					start := time.Now()
					for j := i; j < i+chunk; j++ {
						_, err := iss.Issue(context.Background(), &IssueRequest{
							Request: Request{Profile: ProfileServerDV, CSR: csr, Domains: []string{"www.example.com", "example.com"}},
							Serial:  serials[j], NotBefore: nb,
						})
						if err != nil {
							b.Fatal(err)
						}
					}
					issueTime += time.Since(start)
					start = time.Now()
					for j := 0; j < chunk; j++ {
						if _, err := iss.signer.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
							b.Fatal(err)
						}
					}
					rawTime += time.Since(start)
				}
			}
			certsPerSec := float64(batch*b.N) / issueTime.Seconds()
			raw := float64(batch*b.N) / rawTime.Seconds()
			b.ReportMetric(certsPerSec, "certs/s")
			b.ReportMetric(raw, "raw-sigs/s")
			b.ReportMetric(certsPerSec/raw, "certs/raw-sig")
		})
	}
}

// BenchmarkCRL1M: 1,000,000 revoked certificates in 16 shards through
// Issuer.CRL, against one raw x509.CreateRevocationList over the same
// entries and against raw CreateRevocationList per shard.
func BenchmarkCRL1M(b *testing.B) {
	ca := getBenchCA(b)
	iss, _ := ca.Issuer("ecdsa-p256")
	const total = 1_000_000
	thisUpdate := now()
	shards := make([][]CRLEntry, iss.CRLShards())
	all := make([]x509.RevocationListEntry, 0, total)
	rawShards := make([][]x509.RevocationListEntry, iss.CRLShards())
	reasons := []int{0, 1, 3, 4, 5, 9}
	for i := 0; i < total; i++ {
		s, _ := NewSerial()
		e := CRLEntry{Serial: s, RevokedAt: thisUpdate.Add(-time.Duration(i) * time.Second), Reason: reasons[i%len(reasons)]}
		sh := ShardFor(s, iss.CRLShards())
		shards[sh] = append(shards[sh], e)
		re := x509.RevocationListEntry{SerialNumber: s, RevocationTime: e.RevokedAt, ReasonCode: e.Reason}
		all = append(all, re)
		rawShards[sh] = append(rawShards[sh], re)
	}
	runtime.GC()
	var sharded, rawOne, rawSharded time.Duration
	var bytesTotal, bytesMax int
	for b.Loop() {
		// Shard by shard, Issuer.CRL and a raw CreateRevocationList on the
		// same entries alternate, so both see the same machine load.
		bytesTotal, bytesMax = 0, 0
		for sh, entries := range shards {
			start := time.Now()
			der, err := iss.CRL(context.Background(), &CRLRequest{Shard: sh, Number: big.NewInt(int64(1 + sh)), ThisUpdate: thisUpdate, Entries: entries})
			if err != nil {
				b.Fatal(err)
			}
			sharded += time.Since(start)
			bytesTotal += len(der)
			bytesMax = max(bytesMax, len(der))
			start = time.Now()
			if _, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
				Number: big.NewInt(1), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(7 * Day), RevokedCertificateEntries: rawShards[sh],
			}, iss.cert, iss.signer); err != nil {
				b.Fatal(err)
			}
			rawSharded += time.Since(start)
		}

		start := time.Now()
		if _, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(1), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(7 * Day), RevokedCertificateEntries: all,
		}, iss.cert, iss.signer); err != nil {
			b.Fatal(err)
		}
		rawOne += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(sharded.Seconds()/n, "sharded-s")
	b.ReportMetric(rawOne.Seconds()/n, "raw-single-s")
	b.ReportMetric(rawSharded.Seconds()/n, "raw-sharded-s")
	b.ReportMetric(sharded.Seconds()/rawOne.Seconds(), "x-raw-single")
	b.ReportMetric(sharded.Seconds()/rawSharded.Seconds(), "x-raw-sharded")
	b.ReportMetric(float64(bytesTotal)/float64(len(shards))/1e6, "MB/shard")
	b.ReportMetric(float64(bytesMax)/1e6, "MB-max-shard")
}

// BenchmarkOCSP: responses signed per second by the delegated P-256
// responder, and full RespondOCSP (parse, index match, lookup, sign).
func BenchmarkOCSP(b *testing.B) {
	ca := getBenchCA(b)
	resp, _ := ca.Responder("ecdsa-p256")
	iss, _ := ca.Issuer("ecdsa-p256")
	const batch = 2000
	serials := make([]*big.Int, batch)
	db := &statusDB{}
	for i := range serials {
		serials[i] = serial(b)
		st := CertStatus{Serial: serials[i]}
		if i%2 == 1 {
			st = CertStatus{Serial: serials[i], Revoked: true, RevokedAt: now().Add(-time.Hour), Reason: ReasonKeyCompromise}
		}
		db.put("ecdsa-p256", st)
	}
	b.Run("sign", func(b *testing.B) {
		t0 := now()
		var elapsed time.Duration
		var raw float64
		for b.Loop() {
			start := time.Now()
			for i := 0; i < batch; i++ {
				if _, err := resp.Sign(CertStatus{Serial: serials[i]}, t0); err != nil {
					b.Fatal(err)
				}
			}
			elapsed += time.Since(start)
			raw = rawSignRate(b, resp.signer, batch)
		}
		b.ReportMetric(float64(batch*b.N)/elapsed.Seconds(), "responses/s")
		b.ReportMetric(raw, "raw-sigs/s")
	})
	b.Run("respond-live", func(b *testing.B) {
		idx, _ := ca.OCSPIndex()
		live := NewLiveOCSP(db, resp)
		reqs := make([][]byte, batch)
		for i := range reqs {
			reqs[i] = ocspRequestFor(b, iss.cert, serials[i])
		}
		var elapsed time.Duration
		for b.Loop() {
			start := time.Now()
			for i := 0; i < batch; i++ {
				if _, err := RespondOCSP(context.Background(), reqs[i], idx, live); err != nil {
					b.Fatal(err)
				}
			}
			elapsed += time.Since(start)
		}
		b.ReportMetric(float64(batch*b.N)/elapsed.Seconds(), "responses/s")
	})
	// The front end's pre-signed path: parse, match the issuer, look the
	// stored response up, compute cache headers (no signing).
	b.Run("respond-presigned", func(b *testing.B) {
		idx, _ := ca.OCSPIndex()
		store := presigned{}
		reqs := make([][]byte, batch)
		for i := range reqs {
			reqs[i] = ocspRequestFor(b, iss.cert, serials[i])
			s, err := resp.Sign(CertStatus{Serial: serials[i]}, now())
			if err != nil {
				b.Fatal(err)
			}
			store[serials[i].Text(16)] = s
		}
		var elapsed time.Duration
		for b.Loop() {
			start := time.Now()
			for i := 0; i < batch; i++ {
				der, err := RespondOCSP(context.Background(), reqs[i], idx, store)
				if err != nil {
					b.Fatal(err)
				}
				s := store[serials[i].Text(16)]
				_ = OCSPCacheHeaders(der, s.ThisUpdate, s.NextUpdate, time.Now())
			}
			elapsed += time.Since(start)
		}
		b.ReportMetric(float64(batch*b.N)/elapsed.Seconds(), "responses/s")
	})
}

type presigned map[string]SignedOCSP

func (p presigned) OCSPResponse(_ context.Context, _ string, s *big.Int) ([]byte, error) {
	r, ok := p[s.Text(16)]
	if !ok {
		return nil, ErrNotIssued
	}
	return r.DER, nil
}

func ocspRequestFor(b *testing.B, issuer *x509.Certificate, s *big.Int) []byte {
	der, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: s}, issuer, nil)
	if err != nil {
		b.Fatal(err)
	}
	return der
}
