// Package lint runs zlint before anything is signed with a CA key (BR
// §4.3.1.2, DESIGN O15), in the manner of Boulder's linter package: the
// certificate or CRL is first signed by a throwaway "lint issuer" that has
// the real issuer's name and key identifier but a fresh key of the same
// type, so the to-be-signed bytes are exactly those the real key will sign;
// the result is parsed with zcrypto and linted; only if no lint reports
// Error or Fatal may the caller sign for real.
package lint

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	zlint "github.com/zmap/zlint/v3"
	zl "github.com/zmap/zlint/v3/lint"

	"certdesk/internal/pki/problem"
)

// ErrLint refuses a certificate or CRL that zlint finds in error. It is not
// the requester's fault: it means a profile or CA configuration bug, and
// the case goes to staff. The detail names every failing lint.
var ErrLint = &problem.Kind{Code: "lint-failed", Title: "pre-issuance lint failed"}

// Finding is one failing lint.
type Finding struct {
	Name    string
	Status  string
	Details string
}

// globalExclusions are lints never run, each with its reason. Keep this
// list short: a lint that fires is usually right.
var globalExclusions = []string{}

// preIssuanceExclusions are lints skipped only when linting the lint
// issuer's pre-signed copy, because there they cannot say anything:
var preIssuanceExclusions = []string{
	// Verifies the certificate's signature against the leaked eMudhra CA
	// keys. The copy being linted is signed by our throwaway lint key, so
	// the answer is known in advance, and the P-384 verification is ~70%
	// of all lint time (DESIGN issuance target). CA certificates made at
	// bootstrap, which carry real signatures, are still checked by it.
	"e_cert_issued_by_compromised_emudhra_ca",
}

var matchAll = regexp.MustCompile(".")

var (
	registryMu sync.Mutex
	registries = map[string]zl.Registry{}
)

// registry returns the global zlint registry minus exclusions, configured
// by config (TOML), cached: Filter walks every lint.
func registry(exclude []string, config string) (zl.Registry, error) {
	names := append(slices.Clone(globalExclusions), exclude...)
	sort.Strings(names)
	names = slices.Compact(names)
	key := strings.Join(names, ",") + "|" + config
	registryMu.Lock()
	defer registryMu.Unlock()
	if r, ok := registries[key]; ok {
		return r, nil
	}
	r := zl.GlobalRegistry()
	if len(names) > 0 {
		var err error
		r, err = r.Filter(zl.FilterOptions{ExcludeNames: names})
		if err != nil {
			return nil, fmt.Errorf("zlint exclusions %v: %w", names, err)
		}
	} else {
		// A private copy so SetConfiguration never touches the global one.
		var err error
		r, err = r.Filter(zl.FilterOptions{NameFilter: matchAll})
		if err != nil {
			return nil, err
		}
	}
	if config != "" {
		cfg, err := zl.NewConfigFromString(config)
		if err != nil {
			return nil, fmt.Errorf("zlint configuration: %w", err)
		}
		r.SetConfiguration(cfg)
	}
	registries[key] = r
	return r, nil
}

func check(what string, rs *zlint.ResultSet) error {
	if !rs.ErrorsPresent && !rs.FatalsPresent {
		return nil
	}
	var fs []Finding
	for name, r := range rs.Results {
		if r.Status == zl.Error || r.Status == zl.Fatal {
			fs = append(fs, Finding{Name: name, Status: r.Status.String(), Details: r.Details})
		}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Name)
		if f.Details != "" {
			b.WriteString(" (" + f.Details + ")")
		}
	}
	return &Error{Findings: fs, Err: problem.New(ErrLint, "%s refused by pre-issuance lint: %s; fix the profile or CA configuration, nothing was signed", what, b.String())}
}

// Error is a lint refusal with the individual findings.
type Error struct {
	Findings []Finding
	Err      *problem.Error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap gives errors.Is(err, ErrLint).
func (e *Error) Unwrap() error { return e.Err }

// CertificateDER lints a signed certificate (used for CA certificates at
// bootstrap, which are linted before anything is written out).
func CertificateDER(der []byte, exclude []string) error {
	reg, err := registry(exclude, "")
	if err != nil {
		return err
	}
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("zcrypto cannot parse the certificate: %w", err)
	}
	return check("certificate", zlint.LintCertificateEx(c, reg))
}

func crlConfig(caCRL bool) string {
	if caCRL {
		return "[e_crl_next_update_invalid]\nSubscriberCRL = false\n"
	}
	return ""
}

// Linter holds the lint issuer for one real issuer.
type Linter struct {
	realIssuer *x509.Certificate
	issuer     *x509.Certificate
	signer     crypto.Signer
}

// New makes the lint issuer for realIssuer: a fresh key of the same type
// (and curve, so the signature algorithm and thus the TBS are identical), and
// a self-signed certificate carrying the real issuer's subject bytes and
// subject key identifier (so issuer name and AKI come out identical).
func New(realIssuer *x509.Certificate) (*Linter, error) {
	var k crypto.Signer
	var err error
	switch pub := realIssuer.PublicKey.(type) {
	case *ecdsa.PublicKey:
		k, err = ecdsa.GenerateKey(pub.Curve, rand.Reader)
	case *rsa.PublicKey:
		// sha256WithRSAEncryption does not depend on the modulus size, so
		// the TBS is identical with a 1024-bit key, and no lint looks at
		// the signature bytes (see preIssuanceExclusions). A small key
		// makes the second signature per certificate ~8× cheaper than one
		// of the issuer's size. The TBS comparison after real signing is
		// the safety net.
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	default:
		return nil, fmt.Errorf("unsupported issuer key %T", realIssuer.PublicKey)
	}
	if err != nil {
		return nil, fmt.Errorf("generating lint key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		RawSubject:            realIssuer.RawSubject,
		NotBefore:             realIssuer.NotBefore,
		NotAfter:              realIssuer.NotAfter,
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          realIssuer.SubjectKeyId,
		SignatureAlgorithm:    realIssuer.SignatureAlgorithm,
	}
	// The lint issuer signs itself with the throwaway key; its own
	// signature algorithm must suit that key, so let x509 choose it.
	tmpl.SignatureAlgorithm = x509.UnknownSignatureAlgorithm
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		return nil, fmt.Errorf("creating lint issuer: %w", err)
	}
	li, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Linter{realIssuer: realIssuer, issuer: li, signer: k}, nil
}

// Certificate signs tmpl for pub with the lint issuer, lints it (minus
// exclude) and returns the lint certificate, whose RawTBSCertificate the
// caller compares with the real one after signing.
func (l *Linter) Certificate(tmpl *x509.Certificate, pub crypto.PublicKey, exclude []string) (*x509.Certificate, error) {
	reg, err := registry(append(slices.Clone(preIssuanceExclusions), exclude...), "")
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, l.issuer, pub, l.signer)
	if err != nil {
		return nil, fmt.Errorf("building certificate for lint: %w", err)
	}
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("zcrypto cannot parse the certificate to be issued: %w", err)
	}
	if err := check("certificate", zlint.LintCertificateEx(zc, reg)); err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// RevocationList signs tmpl with the lint issuer and lints it. The caller
// may pass a template holding a representative sample of the entries (see
// pki.Issuer.CRL) so that linting costs the same for any CRL size.
func (l *Linter) RevocationList(tmpl *x509.RevocationList, caCRL bool) error {
	reg, err := registry(nil, crlConfig(caCRL))
	if err != nil {
		return err
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, l.issuer, l.signer)
	if err != nil {
		return fmt.Errorf("building CRL for lint: %w", err)
	}
	r, err := zx509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("zcrypto cannot parse the CRL to be issued: %w", err)
	}
	return check("CRL", zlint.LintRevocationListEx(r, reg))
}
