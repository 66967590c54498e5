package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"time"

	"certdesk/internal/pki/lint"
	"certdesk/internal/pki/problem"
)

// Issuance refusal kinds.
var (
	ErrValidity         = &problem.Kind{Code: "validity-not-allowed", Title: "requested validity not allowed"}
	ErrProfileNotIssuer = &problem.Kind{Code: "profile-not-for-issuer", Title: "this issuing CA does not sign this product"}
	// ErrLint: zlint found an error; nothing was signed.
	ErrLint = lint.ErrLint
)

// IssuerConfig describes one CA that signs certificates or CRLs.
type IssuerConfig struct {
	// ID is the issuer's URL slug, as in /repository/crl/{ID}/{shard}.crl.
	ID string
	// Cert is the CA certificate; Signer its private key (file or PKCS#11).
	Cert   *x509.Certificate
	Signer crypto.Signer
	// Purposes lists which profiles this CA signs (one hierarchy per
	// purpose: the Chrome Root Program requires TLS-only issuing CAs). A
	// root has none: it only signs CA certificates and its CRL.
	Purposes []Purpose
	URLs     URLs
	// CRLShards is the number of CRL shards, fixed for the issuer's
	// lifetime (the shard URL is in every certificate). 0 means 1.
	CRLShards int
	Policy    CAPolicy
	// Profiles defaults to DefaultProfiles.
	Profiles *ProfileSet
	// Blocked, when set, is consulted again at issuance (the key may have
	// been blocked since the application was checked).
	Blocked BlockedKeys
}

// Issuer signs certificates and CRLs with one CA key.
type Issuer struct {
	id       string
	cert     *x509.Certificate
	signer   crypto.Signer
	purposes []Purpose
	urls     URLs
	shards   int
	policy   CAPolicy
	profiles *ProfileSet
	blocked  BlockedKeys
	linter   *lint.Linter
	root     bool // self-signed: its CRL covers CA certificates
}

var issuerIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// NewIssuer checks cfg and prepares the lint issuer (generating a throwaway
// key of the same type, which for RSA 4096 takes a moment).
func NewIssuer(cfg IssuerConfig) (*Issuer, error) {
	if !issuerIDPattern.MatchString(cfg.ID) {
		return nil, fmt.Errorf("issuer ID %q: use 1-63 characters a-z 0-9 -", cfg.ID)
	}
	c := cfg.Cert
	if c == nil || cfg.Signer == nil {
		return nil, errors.New("issuer certificate and signer are required")
	}
	if !c.IsCA || !c.BasicConstraintsValid {
		return nil, fmt.Errorf("issuer %s: certificate is not a CA certificate", cfg.ID)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 || c.KeyUsage&x509.KeyUsageCRLSign == 0 || len(c.SubjectKeyId) == 0 {
		return nil, fmt.Errorf("issuer %s: CA certificate needs keyCertSign, cRLSign and a subject key identifier", cfg.ID)
	}
	if _, err := publicKeyAlgorithm(c.PublicKey); err != nil {
		return nil, fmt.Errorf("issuer %s: %w; CA keys must be ECDSA P-256/P-384 or RSA 2048/3072/4096", cfg.ID, err)
	}
	if !publicKeysEqual(c.PublicKey, cfg.Signer.Public()) {
		return nil, fmt.Errorf("issuer %s: the private key does not match the CA certificate; check the key label", cfg.ID)
	}
	if err := cfg.URLs.validate(); err != nil {
		return nil, err
	}
	if cfg.CRLShards == 0 {
		cfg.CRLShards = 1
	}
	if cfg.CRLShards < 1 || cfg.CRLShards > maxShards {
		return nil, fmt.Errorf("CRL shard count %d out of range 1..%d", cfg.CRLShards, maxShards)
	}
	if len(cfg.Purposes) > 0 {
		if err := cfg.Policy.validate(); err != nil {
			return nil, err
		}
	}
	if cfg.Profiles == nil {
		cfg.Profiles = DefaultProfiles
	}
	l, err := lint.New(c)
	if err != nil {
		return nil, err
	}
	return &Issuer{
		id: cfg.ID, cert: c, signer: cfg.Signer, purposes: slices.Clone(cfg.Purposes),
		urls: cfg.URLs, shards: cfg.CRLShards, policy: cfg.Policy, profiles: cfg.Profiles,
		blocked: cfg.Blocked, linter: l,
		root: bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil,
	}, nil
}

// ID returns the issuer's URL slug.
func (i *Issuer) ID() string { return i.id }

// Certificate returns the CA certificate.
func (i *Issuer) Certificate() *x509.Certificate { return i.cert }

// CRLShards returns the issuer's fixed shard count.
func (i *Issuer) CRLShards() int { return i.shards }

// Purposes returns what the issuer signs.
func (i *Issuer) Purposes() []Purpose { return slices.Clone(i.purposes) }

// Signs reports whether the issuer signs the given profile.
func (i *Issuer) Signs(profile string) bool {
	p, err := i.profiles.Get(profile)
	return err == nil && slices.Contains(i.purposes, p.Purpose)
}

// IssueRequest is a Request plus the values the caller fixes before
// signing so that a retry produces the same certificate contents.
type IssueRequest struct {
	Request
	// Serial is drawn with NewSerial and stored by the caller *before*
	// calling Issue.
	Serial *big.Int `json:"serial"`
	// NotBefore is fixed and stored with the serial (typically the time the
	// serial was reserved, truncated to the second).
	NotBefore time.Time `json:"not_before"`
	// Validity is the requested lifetime; 0 means the profile default
	// (capped by the BR schedule for TLS).
	Validity time.Duration `json:"validity,omitempty"`
}

// Issued is a signed certificate.
type Issued struct {
	DER  []byte
	Cert *x509.Certificate
	// Shard is the CRL shard the certificate's revocation will be listed in.
	Shard int
}

// Issue checks req again (CSR, key policy, blocked key, names, subject),
// builds the certificate from the verified data only, lints it with zlint
// through the lint issuer and, if clean, signs it with the CA key.
//
// Idempotency contract (for Temporal activities): Issue is a function of
// (req, issuer) except for the signature bytes, which are random for ECDSA
// issuers. The caller must (1) draw the serial with NewSerial and fix
// NotBefore, (2) store both durably for the application, (3) call Issue,
// (4) store the DER in the same activity before returning. A retry after a
// crash reuses the stored serial and NotBefore and therefore yields the same
// TBSCertificate; one serial never names two different certificate
// contents. If a DER is already stored for the serial, do not call Issue.
func (i *Issuer) Issue(ctx context.Context, req *IssueRequest) (*Issued, error) {
	b, err := i.requestTemplate(ctx, req)
	if err != nil {
		return nil, err
	}
	return i.sign(b, nil)
}

// built is a certificate template ready to be linted and signed, with
// what signing needs besides it.
type built struct {
	profile *Profile
	tmpl    *x509.Certificate
	pub     crypto.PublicKey
	shard   int
}

// requestTemplate checks a public request again and builds its template:
// the one place Issue, IssuePrecert and IssueFinal get their contents from,
// so that the three cannot disagree about a request.
func (i *Issuer) requestTemplate(ctx context.Context, req *IssueRequest) (*built, error) {
	if req == nil {
		return nil, errors.New("no issuance request")
	}
	p, err := i.profiles.Get(req.Profile)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(i.purposes, p.Purpose) {
		return nil, problem.New(ErrProfileNotIssuer, "issuing CA %s does not sign %s certificates; route the request to an issuer for %s", i.id, p.Name, p.Purpose)
	}
	csr, err := checkCSR(ctx, p, &req.Request, i.blocked)
	if err != nil {
		return nil, err
	}
	return i.template(p, csr.PublicKey, req.Subject, req.Domains, req.Email, req.Serial, req.NotBefore, req.Validity)
}

// issue builds, lints and signs. Internal profiles (OCSP responder,
// document signing) come here directly.
func (i *Issuer) issue(p *Profile, pub crypto.PublicKey, s Subject, domains []string, email string, serial *big.Int, notBefore time.Time, validity time.Duration) (*Issued, error) {
	b, err := i.template(p, pub, s, domains, email, serial, notBefore, validity)
	if err != nil {
		return nil, err
	}
	return i.sign(b, nil)
}

// template builds the certificate template from verified data only. It is
// deterministic: the same arguments give the same template, which is what
// lets IssueFinal rebuild the precertificate's contents from the request.
func (i *Issuer) template(p *Profile, pub crypto.PublicKey, s Subject, domains []string, email string, serial *big.Int, notBefore time.Time, validity time.Duration) (*built, error) {
	if err := checkSerial(serial); err != nil {
		return nil, err
	}
	if notBefore.IsZero() {
		return nil, errors.New("NotBefore is zero; fix it and store it with the serial before signing so retries produce the same certificate")
	}
	notBefore = notBefore.UTC().Truncate(time.Second)
	maxV := p.MaxValidityAt(notBefore)
	if validity == 0 {
		validity = min(p.DefaultValidity, maxV)
	}
	if validity < time.Hour || validity > maxV {
		return nil, problem.New(ErrValidity, "%s validity %.0f days is not allowed; the maximum for a certificate starting %s is %.0f days",
			p.Name, validity.Hours()/24, notBefore.Format(time.DateOnly), maxV.Hours()/24)
	}
	// BR counting: the period includes both ends, hence −1 s.
	notAfter := notBefore.Add(validity - time.Second)
	if notBefore.Before(i.cert.NotBefore) || notAfter.After(i.cert.NotAfter) {
		return nil, problem.New(ErrValidity, "the certificate (%s to %s) would fall outside the validity of issuing CA %s (%s to %s); adjust NotBefore or the validity, or issue from a newer CA",
			notBefore.Format(time.RFC3339), notAfter.Format(time.RFC3339), i.id, i.cert.NotBefore.Format(time.RFC3339), i.cert.NotAfter.Format(time.RFC3339))
	}
	name, err := buildSubject(p, s, domains)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               name,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              p.KeyUsage,
		ExtKeyUsage:           p.ExtKeyUsage,
		UnknownExtKeyUsage:    p.UnknownExtKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              domains,
	}
	if email != "" {
		tmpl.EmailAddresses = []string{email}
	}
	if p.Purpose != PurposeTLSServer {
		// RFC 5280 4.2.1.2 says end-entity certificates SHOULD carry a
		// subject key identifier (S/MIME and document tools use it to find
		// the signer); BR 7.1.2.7.6 says NOT RECOMMENDED for TLS.
		ski, err := subjectKeyID(pub)
		if err != nil {
			return nil, err
		}
		tmpl.SubjectKeyId = ski
	}
	shard := ShardFor(serial, i.shards)
	if p.RevocationInfo {
		tmpl.CRLDistributionPoints = []string{i.urls.CRL(i.id, shard)}
		tmpl.OCSPServer = []string{i.urls.OCSP()}
		tmpl.IssuingCertificateURL = []string{i.urls.CAIssuers(i.id)}
	}
	if p.Policies {
		ext, err := certificatePoliciesExtension(i.policySpecs(p, s))
		if err != nil {
			return nil, err
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, ext)
	}
	if p.OCSPNoCheck {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidOCSPNoCheck, Value: []byte{0x05, 0x00}})
	}
	return &built{profile: p, tmpl: tmpl, pub: pub, shard: shard}, nil
}

// sign lints b's template through the lint issuer and, if clean and if
// beforeSigning (when set) accepts the linted certificate, whose TBS is the
// one the CA key is about to sign, signs it with the CA key.
func (i *Issuer) sign(b *built, beforeSigning func(linted *x509.Certificate) error) (*Issued, error) {
	lintCert, err := i.linter.Certificate(b.tmpl, b.pub, b.profile.lintExclusions)
	if err != nil {
		return nil, err
	}
	if beforeSigning != nil {
		if err := beforeSigning(lintCert); err != nil {
			return nil, err
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, b.tmpl, i.cert, b.pub, i.signer)
	if err != nil {
		return nil, fmt.Errorf("signing with issuer %s: %w", i.id, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	// What was linted is what was signed, byte for byte.
	if !bytes.Equal(cert.RawTBSCertificate, lintCert.RawTBSCertificate) {
		return nil, fmt.Errorf("issuer %s: signed TBSCertificate differs from the linted one; refusing to return it (bug)", i.id)
	}
	return &Issued{DER: der, Cert: cert, Shard: b.shard}, nil
}

// policySpecs: the BR reserved OID first (no qualifiers, BR 7.1.2.7.9), then
// the CA's policy with the CPS URI and, where allowed, the liability notice.
func (i *Issuer) policySpecs(p *Profile, s Subject) []policySpec {
	var specs []policySpec
	switch {
	case p.SponsoredPolicy != nil && s.Organization != "":
		specs = append(specs, policySpec{OID: p.SponsoredPolicy})
	case p.BRPolicy != nil:
		specs = append(specs, policySpec{OID: p.BRPolicy})
	}
	own := policySpec{OID: i.policy.OID, CPSURI: i.policy.CPSURI}
	if p.LiabilityNotice {
		own.UserNotice = i.policy.notice()
	}
	return append(specs, own)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}

// subjectKeyID is RFC 7093 method 1: the leftmost 160 bits of the SHA-256
// of the subjectPublicKey bits.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}
