package pki

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"certdesk/internal/pki/problem"
)

// CA is a loaded certificate authority: the root certificate, the issuing
// CAs with their keys, their OCSP responders and the document signer. It is
// safe for concurrent use; RenewOCSPResponder swaps responders in place.
type CA struct {
	dir string

	mu         sync.RWMutex
	man        manifest
	issuers    map[string]*Issuer
	responders map[string]*OCSPResponder
	docSigner  *DocumentSigner

	// Root is the root CA certificate.
	Root *x509.Certificate
	// RootIssuer signs the root's CRL (covering the issuing CAs); nil
	// unless LoadOptions.RootKey, because the root key should stay offline.
	RootIssuer *Issuer
	// Profiles is the profile set the issuers use.
	Profiles *ProfileSet
}

// LoadOptions tunes LoadCA.
type LoadOptions struct {
	// Profiles overrides the profile options (validity caps).
	Profiles ProfileOptions
	// RootKey also loads the root key, for the root CRL ceremony.
	RootKey bool
	// Blocked is consulted again at issuance.
	Blocked BlockedKeys
	// OCSPValidity of signed responses; 0 means DefaultOCSPValidity.
	OCSPValidity time.Duration
}

// LoadCA reads dir/ca.json and the certificates it names, and loads the
// keys from keys (the same store Bootstrap used). The signing worker calls
// it at start.
func LoadCA(ctx context.Context, dir string, keys KeyStore, opts LoadOptions) (*CA, error) {
	man, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	oid, err := parseOID(man.Policy.OID)
	if err != nil {
		return nil, err
	}
	policy := CAPolicy{OID: oid, CPSURI: man.Policy.CPSURI, LiabilityCapJPY: man.Policy.LiabilityCapJPY, NoticeText: man.Policy.NoticeText}
	urls := URLs{Base: man.BaseURL}
	profiles, err := NewProfileSet(opts.Profiles)
	if err != nil {
		return nil, err
	}
	root, err := readCert(dir, man.Root.Cert)
	if err != nil {
		return nil, err
	}
	ca := &CA{dir: dir, man: man, Root: root, Profiles: profiles, issuers: map[string]*Issuer{}, responders: map[string]*OCSPResponder{}}
	if opts.RootKey {
		k, err := keys.Load(ctx, man.Root.Key)
		if err != nil {
			return nil, err
		}
		ca.RootIssuer, err = NewIssuer(IssuerConfig{ID: man.Root.ID, Cert: root, Signer: k, URLs: urls, Policy: policy, Profiles: profiles})
		if err != nil {
			return nil, err
		}
	}
	for _, mi := range man.Issuers {
		cert, err := readCert(dir, mi.Cert)
		if err != nil {
			return nil, err
		}
		if err := cert.CheckSignatureFrom(root); err != nil {
			return nil, fmt.Errorf("issuing CA %s is not signed by the root: %w", mi.ID, err)
		}
		k, err := keys.Load(ctx, mi.Key)
		if err != nil {
			return nil, err
		}
		iss, err := NewIssuer(IssuerConfig{
			ID: mi.ID, Cert: cert, Signer: k, Purposes: mi.Purposes, URLs: urls,
			CRLShards: mi.CRLShards, Policy: policy, Profiles: profiles, Blocked: opts.Blocked,
		})
		if err != nil {
			return nil, err
		}
		ca.issuers[mi.ID] = iss
		rc, err := readCert(dir, mi.Responder.Cert)
		if err != nil {
			return nil, err
		}
		rk, err := keys.Load(ctx, mi.Responder.Key)
		if err != nil {
			return nil, err
		}
		r, err := NewOCSPResponder(mi.ID, cert, rc, rk, opts.OCSPValidity)
		if err != nil {
			return nil, err
		}
		ca.responders[mi.ID] = r
	}
	if ds := man.DocumentSigner; ds != nil {
		iss := ca.issuers[ds.Issuer]
		if iss == nil {
			return nil, fmt.Errorf("document signer issuer %q not in manifest", ds.Issuer)
		}
		c, err := readCert(dir, ds.Cert)
		if err != nil {
			return nil, err
		}
		k, err := keys.Load(ctx, ds.Key)
		if err != nil {
			return nil, err
		}
		if ca.docSigner, err = NewDocumentSigner(c, k, iss.cert); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	for _, p := range strings.Split(s, ".") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad policy OID %q in manifest", s)
		}
		oid = append(oid, n)
	}
	return oid, nil
}

// readManifest reads and checks dir/ca.json.
func readManifest(dir string) (manifest, error) {
	var man manifest
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return man, fmt.Errorf("reading CA manifest: %w (run the bootstrap first)", err)
	}
	if err := json.Unmarshal(data, &man); err != nil {
		return man, fmt.Errorf("CA manifest %s: %w", manifestName, err)
	}
	if man.Version != 1 {
		return man, fmt.Errorf("CA manifest version %d not supported", man.Version)
	}
	return man, nil
}

func readCert(dir, name string) (*x509.Certificate, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no CERTIFICATE PEM block", name)
	}
	return x509.ParseCertificate(b.Bytes)
}

// Dir returns the CA directory.
func (ca *CA) Dir() string { return ca.dir }

// Issuer returns an issuing CA by ID.
func (ca *CA) Issuer(id string) (*Issuer, bool) {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	i, ok := ca.issuers[id]
	return i, ok
}

// Issuers returns the issuing CAs sorted by ID.
func (ca *CA) Issuers() []*Issuer {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	out := make([]*Issuer, 0, len(ca.issuers))
	for _, i := range ca.issuers {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].id < out[b].id })
	return out
}

// IssuerFor returns the issuing CA for a product: the first (by ID) whose
// purpose matches the profile.
func (ca *CA) IssuerFor(profile string) (*Issuer, error) {
	p, err := ca.Profiles.Get(profile)
	if err != nil {
		return nil, err
	}
	for _, i := range ca.Issuers() {
		if slices.Contains(i.purposes, p.Purpose) {
			return i, nil
		}
	}
	return nil, problem.New(ErrProfileNotIssuer, "no issuing CA signs %s certificates; bootstrap one with purpose %s", profile, p.Purpose)
}

// Responder returns the OCSP responder of an issuer.
func (ca *CA) Responder(issuerID string) (*OCSPResponder, bool) {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	r, ok := ca.responders[issuerID]
	return r, ok
}

// DocumentSigner returns the disclosure-package signer (nil when the CA has
// no client-sign issuer).
func (ca *CA) DocumentSigner() *DocumentSigner {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	return ca.docSigner
}

// OCSPIndex indexes the issuing CAs for RespondOCSP.
func (ca *CA) OCSPIndex() (*OCSPIndex, error) {
	m := map[string]*x509.Certificate{}
	for _, i := range ca.Issuers() {
		m[i.id] = i.cert
	}
	return NewOCSPIndex(m)
}

// ChainPEM returns issuer certificate + root, PEM, as served to clients
// that need the intermediate.
func (ca *CA) ChainPEM(issuerID string) ([]byte, error) {
	i, ok := ca.Issuer(issuerID)
	if !ok {
		return nil, fmt.Errorf("unknown issuer %q", issuerID)
	}
	return append(pemCert(i.cert.Raw), pemCert(ca.Root.Raw)...), nil
}

// RenewOCSPResponder makes a new responder key (ECDSA P-256, label
// <issuer>-ocsp-<timestamp>) and certificate for issuerID, records it in
// the manifest and installs it. Call it when Responder(id).NeedsRenewal(now)
// (a daily schedule is enough: renewal starts 10 days before expiry).
// Responses signed by the previous responder stay valid: its certificate
// remains valid until it expires. Run it from one activity at a time per
// CA directory; other signing workers pick the new responder up on their
// next LoadCA.
func (ca *CA) RenewOCSPResponder(ctx context.Context, keys KeyStore, issuerID string, now time.Time) (*OCSPResponder, error) {
	iss, ok := ca.Issuer(issuerID)
	if !ok {
		return nil, fmt.Errorf("unknown issuer %q", issuerID)
	}
	now = now.UTC().Truncate(time.Second)
	r, der, label, err := newResponder(ctx, keys, iss, now.Format("20060102t150405"), now)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(ca.dir, label+".pem"), pemCert(der), 0o644); err != nil {
		return nil, err
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	for n := range ca.man.Issuers {
		if ca.man.Issuers[n].ID == issuerID {
			ca.man.Issuers[n].Responder = manifestCert{Cert: label + ".pem", Key: label}
		}
	}
	if err := ca.writeManifest(); err != nil {
		return nil, err
	}
	ca.responders[issuerID] = r
	return r, nil
}
