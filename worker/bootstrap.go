package main

import (
	"context"
	"encoding/asn1"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/pki"
)

// bootstrapCA runs the CA key ceremony: a root, one TLS and one client
// issuing CA, their delegated OCSP responders and the disclosure-signing
// certificate, with keys in encrypted PKCS#8 files or a PKCS#11 token. It
// refuses to overwrite an existing CA.
func bootstrapCA(args []string) error {
	fs := flagSet("bootstrap-ca")
	org := fs.String("org", "CertDesk Development CA", "organisation printed in the CA certificates")
	country := fs.String("country", "JP", "country of the CA")
	cps := fs.String("cps", "", "CPS URL (default: <public base URL>/repository/cps)")
	oid := fs.String("policy-oid", "1.3.6.1.4.1.32473.1.1", "the CA's CP/CPS OID (1.3.6.1.4.1.32473 is the documentation arc, for development)")
	cap := fs.Int64("liability-cap-jpy", 1_000_000, "liability cap per certificate, JPY (O16)")
	ifMissing := fs.Bool("if-missing", false, "do nothing when a CA already exists")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(cfg.CADir, "ca.json")); err == nil {
		if *ifMissing {
			return nil
		}
		return fmt.Errorf("a CA already exists in %s; move it away to make a new one", cfg.CADir)
	}
	policyOID, err := parseOID(*oid)
	if err != nil {
		return fmt.Errorf("-policy-oid: %w", err)
	}
	if *cps == "" {
		*cps = cfg.PublicBaseURL + "/repository/cps"
	}
	if err := os.MkdirAll(cfg.CADir, 0o700); err != nil {
		return err
	}
	ks, closeKeys, err := activities.KeyStore(cfg)
	if err != nil {
		return err
	}
	defer closeKeys()
	ca, err := pki.Bootstrap(context.Background(), pki.BootstrapConfig{
		Dir: cfg.CADir, Keys: ks, Organization: *org, Country: *country,
		URLs:   pki.URLs{Base: cfg.PublicBaseURL},
		Policy: pki.CAPolicy{OID: policyOID, CPSURI: *cps, LiabilityCapJPY: *cap},
	})
	if err != nil {
		return err
	}
	for _, is := range ca.Issuers() {
		fmt.Printf("issuer %s: %s (%d CRL shards)\n", is.ID(), is.Certificate().Subject, is.CRLShards())
	}
	fmt.Printf("CA written to %s\n", cfg.CADir)
	return nil
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	for _, p := range strings.Split(s, ".") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a dotted OID", s)
		}
		oid = append(oid, n)
	}
	if len(oid) < 2 {
		return nil, fmt.Errorf("%q is not a dotted OID", s)
	}
	return oid, nil
}
