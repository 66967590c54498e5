package pki

import (
	"context"
	"crypto/elliptic"
	"testing"
)

// TestCRLPartitionsCoverIssuedCertificates: the disclosed shard list holds
// the distribution point of every certificate, and nothing else.
func TestCRLPartitionsCoverIssuedCertificates(t *testing.T) {
	ca := getFileCA(t)
	iss, _ := ca.Issuer("tls-1")
	parts := iss.CRLPartitions()
	if len(parts) != iss.CRLShards() || len(parts) != 4 {
		t.Fatalf("%d partitions for %d shards", len(parts), iss.CRLShards())
	}
	if parts[0] != testURLs.Base+"/repository/crl/tls-1/0.crl" || parts[3] != testURLs.Base+"/repository/crl/tls-1/3.crl" {
		t.Errorf("partitions %v", parts)
	}
	seen := map[string]bool{}
	csr := makeCSR(t, ecKey(t, elliptic.P256()))
	for range 24 {
		got, err := iss.Issue(context.Background(), &IssueRequest{Request: Request{Profile: ProfileServerDV, CSR: csr, Domains: []string{"example.com"}}, Serial: serial(t), NotBefore: now()})
		if err != nil {
			t.Fatal(err)
		}
		dp := got.Cert.CRLDistributionPoints[0]
		if dp != parts[got.Shard] {
			t.Fatalf("certificate CRL DP %s, partition %d is %s", dp, got.Shard, parts[got.Shard])
		}
		seen[dp] = true
	}
	if len(seen) < 2 {
		t.Errorf("24 serials fell in %d shard(s)", len(seen))
	}
	if got := (URLs{Base: "http://x.example/"}).CRLPartitions("a", 0); len(got) != 1 || got[0] != "http://x.example/repository/crl/a/0.crl" {
		t.Errorf("0 shards: %v", got)
	}
}
