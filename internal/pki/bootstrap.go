package pki

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"certdesk/internal/pki/lint"
)

// IssuerSpec describes one issuing CA to create.
type IssuerSpec struct {
	// ID is the URL slug, e.g. "tls-1".
	ID         string
	CommonName string
	// Purpose is PurposeTLSServer or PurposeClientSign: one hierarchy per
	// purpose, because the Chrome Root Program wants TLS-only issuing CAs
	// and EKU-chaining clients need emailProtection in the client CA.
	Purpose      Purpose
	KeyAlgorithm KeyAlgorithm
	// Validity 0 means 5 years (and never beyond the root).
	Validity  time.Duration
	CRLShards int
}

// BootstrapConfig is the input of the CA key ceremony.
type BootstrapConfig struct {
	// Dir receives the certificates (PEM) and the manifest ca.json.
	Dir string
	// Keys holds the private keys: a FileKeyStore (encrypted PKCS#8 files,
	// may point at Dir) or a PKCS11KeyStore.
	Keys KeyStore

	Organization string
	Country      string

	// RootID defaults to "root"; RootCommonName to Organization+" Root CA".
	RootID         string
	RootCommonName string
	// RootKeyAlgorithm: ECDSAP384 (default), RSA3072 or RSA4096.
	RootKeyAlgorithm KeyAlgorithm
	// RootValidity defaults to 15 years (Chrome Root Program maximum).
	RootValidity time.Duration

	// Issuers defaults to one TLS ("tls-1") and one client ("client-1")
	// issuing CA, ECDSA P-384, 16 CRL shards each.
	Issuers []IssuerSpec

	URLs     URLs
	Policy   CAPolicy
	Profiles ProfileOptions

	// DocumentSignerName is the CN of the disclosure-signing certificate;
	// it is issued by the first client-sign issuer. Defaults to
	// Organization+" Disclosure Signing".
	DocumentSignerName string

	// Now defaults to time.Now().
	Now time.Time
}

// manifest is ca.json: what Bootstrap made and where, so that LoadCA needs
// only the directory and the key store.
type manifest struct {
	Version        int                `json:"version"`
	BaseURL        string             `json:"base_url"`
	Policy         manifestPolicy     `json:"policy"`
	Root           manifestCert       `json:"root"`
	Issuers        []manifestIssuer   `json:"issuers"`
	DocumentSigner *manifestDocSigner `json:"document_signer,omitempty"`
}

type manifestPolicy struct {
	OID             string `json:"oid"`
	CPSURI          string `json:"cps_uri"`
	LiabilityCapJPY int64  `json:"liability_cap_jpy"`
	NoticeText      string `json:"notice_text,omitempty"`
}

type manifestCert struct {
	ID   string `json:"id,omitempty"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

type manifestIssuer struct {
	manifestCert
	Purposes  []Purpose    `json:"purposes"`
	CRLShards int          `json:"crl_shards"`
	Chain     string       `json:"chain"`
	Responder manifestCert `json:"ocsp_responder"`
}

type manifestDocSigner struct {
	Issuer string `json:"issuer"`
	manifestCert
}

const manifestName = "ca.json"

// Bootstrap runs the CA ceremony: a root CA, the issuing CAs signed by it,
// a delegated OCSP responder per issuing CA (ECDSA P-256, id-kp-OCSPSigning,
// ocsp-nocheck, 30 days) and the disclosure document-signing certificate.
// Every certificate is linted with zlint before anything is written; the
// manifest ca.json is written last and marks a complete CA. Bootstrap
// refuses to run over an existing manifest.
func Bootstrap(ctx context.Context, cfg BootstrapConfig) (*CA, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, manifestName)); err == nil {
		return nil, fmt.Errorf("%s already holds a CA (%s); bootstrap into an empty directory", cfg.Dir, manifestName)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	profiles, err := NewProfileSet(cfg.Profiles)
	if err != nil {
		return nil, err
	}
	now := cfg.Now.UTC().Truncate(time.Second)
	stamp := now.Format("20060102t150405")

	// Root.
	rootKey, err := cfg.Keys.Generate(ctx, cfg.RootID, cfg.RootKeyAlgorithm)
	if err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	rootSerial, err := NewSerial()
	if err != nil {
		return nil, err
	}
	rootTmpl := &x509.Certificate{
		SerialNumber:          rootSerial,
		Subject:               pkix.Name{Country: []string{cfg.Country}, Organization: []string{cfg.Organization}, CommonName: cfg.RootCommonName},
		NotBefore:             now,
		NotAfter:              now.Add(cfg.RootValidity - time.Second),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            -1,
	}
	root, rootDER, err := signCA(rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("root certificate: %w", err)
	}
	man := manifest{
		Version: 1,
		BaseURL: cfg.URLs.Base,
		Policy: manifestPolicy{
			OID: cfg.Policy.OID.String(), CPSURI: cfg.Policy.CPSURI,
			LiabilityCapJPY: cfg.Policy.LiabilityCap(), NoticeText: cfg.Policy.NoticeText,
		},
		Root: manifestCert{ID: cfg.RootID, Cert: cfg.RootID + ".pem", Key: cfg.RootID},
	}
	files := map[string][]byte{man.Root.Cert: pemCert(rootDER)}

	ca := &CA{dir: cfg.Dir, Root: root, Profiles: profiles, issuers: map[string]*Issuer{}, responders: map[string]*OCSPResponder{}}
	var docIssuer *Issuer
	for _, spec := range cfg.Issuers {
		key, err := cfg.Keys.Generate(ctx, spec.ID, spec.KeyAlgorithm)
		if err != nil {
			return nil, fmt.Errorf("issuing CA %s key: %w", spec.ID, err)
		}
		serial, err := NewSerial()
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber:          serial,
			Subject:               pkix.Name{Country: []string{cfg.Country}, Organization: []string{cfg.Organization}, CommonName: spec.CommonName},
			NotBefore:             now,
			NotAfter:              now.Add(spec.Validity - time.Second),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
			MaxPathLen:            0,
			MaxPathLenZero:        true,
			CRLDistributionPoints: []string{cfg.URLs.CRL(cfg.RootID, 0)},
			IssuingCertificateURL: []string{cfg.URLs.CAIssuers(cfg.RootID)},
		}
		// Policies carry only the id-qt-cps qualifier: BR 7.1.2.10.5
		// forbids any other in CA certificates.
		var specs []policySpec
		switch spec.Purpose {
		case PurposeTLSServer:
			// BR 7.1.2.10.6: serverAuth only (clientAuth MAY, but the
			// Chrome Root Program requires dedicated TLS hierarchies).
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			// The CA issues both DV and OV, and a policy-restricted CA may
			// list exactly one reserved OID (BR Table 73, zlint
			// e_ca_multiple_reserved_policy_oids). An affiliated CA (ours:
			// same operator as the root) uses anyPolicy alone (Table 72).
			specs = []policySpec{{OID: oidAnyPolicy, CPSURI: cfg.Policy.CPSURI}}
		case PurposeClientSign:
			// Chained EKU checks (Windows, NSS, OpenSSL's smime purpose)
			// need the leaf EKUs in the CA certificate too.
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection}
			specs = []policySpec{{OID: cfg.Policy.OID, CPSURI: cfg.Policy.CPSURI}}
		default:
			return nil, fmt.Errorf("issuing CA %s: purpose must be %s or %s", spec.ID, PurposeTLSServer, PurposeClientSign)
		}
		ext, err := certificatePoliciesExtension(specs)
		if err != nil {
			return nil, err
		}
		tmpl.ExtraExtensions = []pkix.Extension{ext}
		cert, der, err := signCA(tmpl, root, key.Public(), rootKey)
		if err != nil {
			return nil, fmt.Errorf("issuing CA %s certificate: %w", spec.ID, err)
		}
		iss, err := NewIssuer(IssuerConfig{
			ID: spec.ID, Cert: cert, Signer: key, Purposes: []Purpose{spec.Purpose},
			URLs: cfg.URLs, CRLShards: spec.CRLShards, Policy: cfg.Policy, Profiles: profiles,
		})
		if err != nil {
			return nil, err
		}
		ca.issuers[spec.ID] = iss
		mi := manifestIssuer{
			manifestCert: manifestCert{ID: spec.ID, Cert: spec.ID + ".pem", Key: spec.ID},
			Purposes:     []Purpose{spec.Purpose}, CRLShards: iss.shards, Chain: spec.ID + "-chain.pem",
		}
		files[mi.Cert] = pemCert(der)
		files[mi.Chain] = append(pemCert(der), pemCert(rootDER)...)

		// Delegated OCSP responder.
		resp, respDER, label, err := newResponder(ctx, cfg.Keys, iss, stamp, now)
		if err != nil {
			return nil, err
		}
		ca.responders[spec.ID] = resp
		mi.Responder = manifestCert{Cert: label + ".pem", Key: label}
		files[mi.Responder.Cert] = pemCert(respDER)
		man.Issuers = append(man.Issuers, mi)
		if docIssuer == nil && spec.Purpose == PurposeClientSign {
			docIssuer = iss
		}
	}

	// Disclosure document-signing certificate.
	if docIssuer != nil {
		label := "document-signing-" + stamp
		key, err := cfg.Keys.Generate(ctx, label, ECDSAP256)
		if err != nil {
			return nil, fmt.Errorf("document-signing key: %w", err)
		}
		serial, err := NewSerial()
		if err != nil {
			return nil, err
		}
		issued, err := docIssuer.issue(profiles.internal(profileDocumentSigning), key.Public(),
			Subject{CommonName: cfg.DocumentSignerName, Organization: cfg.Organization, Country: cfg.Country},
			nil, "", serial, now, 0)
		if err != nil {
			return nil, fmt.Errorf("document-signing certificate: %w", err)
		}
		ds, err := NewDocumentSigner(issued.Cert, key, docIssuer.cert)
		if err != nil {
			return nil, err
		}
		ca.docSigner = ds
		man.DocumentSigner = &manifestDocSigner{Issuer: docIssuer.id, manifestCert: manifestCert{Cert: label + ".pem", Key: label}}
		files[man.DocumentSigner.Cert] = pemCert(issued.DER)
	}

	for name, data := range files {
		if err := writeFileAtomic(filepath.Join(cfg.Dir, name), data, 0o644); err != nil {
			return nil, err
		}
	}
	ca.man = man
	if err := ca.writeManifest(); err != nil {
		return nil, err
	}
	return ca, nil
}

func (cfg *BootstrapConfig) defaults() error {
	if cfg.Dir == "" || cfg.Keys == nil {
		return errors.New("bootstrap needs an output directory and a key store")
	}
	if cfg.Organization == "" {
		return errors.New("bootstrap needs the CA organisation name")
	}
	if err := checkCountry(cfg.Country, true); err != nil {
		return err
	}
	if err := cfg.URLs.validate(); err != nil {
		return err
	}
	if err := cfg.Policy.validate(); err != nil {
		return err
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	if cfg.RootID == "" {
		cfg.RootID = "root"
	}
	if cfg.RootCommonName == "" {
		cfg.RootCommonName = cfg.Organization + " Root CA"
	}
	if cfg.RootKeyAlgorithm == "" {
		cfg.RootKeyAlgorithm = ECDSAP384
	}
	switch cfg.RootKeyAlgorithm {
	case ECDSAP384, RSA3072, RSA4096:
	default:
		return fmt.Errorf("root key algorithm %q: use ecdsa-p384, rsa-3072 or rsa-4096", cfg.RootKeyAlgorithm)
	}
	if cfg.RootValidity == 0 {
		cfg.RootValidity = 15 * 365 * Day
	}
	if cfg.DocumentSignerName == "" {
		cfg.DocumentSignerName = cfg.Organization + " Disclosure Signing"
	}
	if len(cfg.Issuers) == 0 {
		cfg.Issuers = []IssuerSpec{
			{ID: "tls-1", CommonName: cfg.Organization + " TLS Issuing CA 1", Purpose: PurposeTLSServer},
			{ID: "client-1", CommonName: cfg.Organization + " Client Issuing CA 1", Purpose: PurposeClientSign},
		}
	}
	seen := map[string]bool{cfg.RootID: true}
	for n := range cfg.Issuers {
		s := &cfg.Issuers[n]
		if !issuerIDPattern.MatchString(s.ID) || seen[s.ID] {
			return fmt.Errorf("issuer ID %q is invalid or repeated", s.ID)
		}
		seen[s.ID] = true
		// Validate everything before the first key is generated: keys
		// cannot be un-generated in a token.
		if s.Purpose != PurposeTLSServer && s.Purpose != PurposeClientSign {
			return fmt.Errorf("issuing CA %s: purpose must be %s or %s", s.ID, PurposeTLSServer, PurposeClientSign)
		}
		if s.KeyAlgorithm == "" {
			s.KeyAlgorithm = ECDSAP384
		}
		if !s.KeyAlgorithm.valid() {
			return fmt.Errorf("issuer %s: unknown key algorithm %q", s.ID, s.KeyAlgorithm)
		}
		if s.Validity == 0 {
			s.Validity = 5 * 365 * Day
		}
		if s.Validity > cfg.RootValidity {
			return fmt.Errorf("issuer %s would outlive the root", s.ID)
		}
		if s.CRLShards == 0 {
			s.CRLShards = 16
		}
		if s.CommonName == "" {
			s.CommonName = cfg.Organization + " Issuing CA " + s.ID
		}
	}
	return nil
}

// signCA signs a CA certificate and lints the result before it is used or
// written anywhere.
func signCA(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, []byte, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, nil, err
	}
	if err := lint.CertificateDER(der, nil); err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, der, err
}

// newResponder generates a responder key and certificate for iss.
func newResponder(ctx context.Context, keys KeyStore, iss *Issuer, stamp string, now time.Time) (*OCSPResponder, []byte, string, error) {
	label := iss.id + "-ocsp-" + stamp
	key, err := keys.Generate(ctx, label, ECDSAP256)
	if err != nil {
		return nil, nil, "", fmt.Errorf("OCSP responder key for %s: %w", iss.id, err)
	}
	serial, err := NewSerial()
	if err != nil {
		return nil, nil, "", err
	}
	cn := iss.cert.Subject.CommonName + " OCSP"
	if len(cn) > ubCommonName {
		cn = "OCSP Responder " + iss.id
	}
	subj := Subject{CommonName: cn, Organization: first(iss.cert.Subject.Organization), Country: first(iss.cert.Subject.Country)}
	issued, err := iss.issue(iss.profiles.internal(profileOCSPResponder), key.Public(), subj, nil, "", serial, now, 0)
	if err != nil {
		return nil, nil, "", fmt.Errorf("OCSP responder certificate for %s: %w", iss.id, err)
	}
	r, err := NewOCSPResponder(iss.id, iss.cert, issued.Cert, key, 0)
	if err != nil {
		return nil, nil, "", err
	}
	return r, issued.DER, label, nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// writeFileAtomic writes via a temporary file and rename, so a reader (or a
// crash) never sees half a certificate or manifest.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), perm); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func (ca *CA) writeManifest() error {
	data, err := json.MarshalIndent(ca.man, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(ca.dir, manifestName), append(data, '\n'), 0o644)
}
