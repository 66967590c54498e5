package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"

	"certdesk/internal/pki/goodkey"
	"certdesk/internal/pki/problem"
)

// rsaFromPrimes builds an RSA key with the given primes and exponent, for
// keys crypto/rsa refuses to generate (e ≠ 65537, odd sizes, close primes).
func rsaFromPrimes(t testing.TB, p, q *big.Int, e int) *rsa.PrivateKey {
	t.Helper()
	one := big.NewInt(1)
	pm1 := new(big.Int).Sub(p, one)
	qm1 := new(big.Int).Sub(q, one)
	phi := new(big.Int).Mul(pm1, qm1)
	d := new(big.Int).ModInverse(big.NewInt(int64(e)), phi)
	if d == nil {
		return nil
	}
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: e},
		D:         d,
		Primes:    []*big.Int{p, q},
	}
	k.Precompute()
	return k
}

// primesFor returns two random primes of bits each such that e is invertible.
func primesFor(t testing.TB, bits, e int) (*big.Int, *big.Int) {
	t.Helper()
	for {
		p, err := rand.Prime(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		q, err := rand.Prime(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		if rsaFromPrimes(t, p, q, e) != nil && p.Cmp(q) != 0 {
			return p, q
		}
	}
}

var oidSHA1WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
var oidMD5WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 4}
var oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}

type rawCSR struct {
	TBS       asn1.RawValue
	Algorithm pkix.AlgorithmIdentifier
	Signature asn1.BitString
}

// resignRSA re-signs the CertificationRequestInfo of csrPEM with an
// arbitrary digest (SHA-1, MD5): x509.CreateCertificateRequest no longer
// produces such CSRs, but old subscriber tools do. The PKCS#1 DigestInfo is
// assembled here so the test does not depend on which hashes crypto/rsa
// still accepts.
func resignRSA(t testing.TB, csrPEM []byte, key *rsa.PrivateKey, h crypto.Hash, alg asn1.ObjectIdentifier) []byte {
	t.Helper()
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	var digest []byte
	var hashOID asn1.ObjectIdentifier
	switch h {
	case crypto.SHA1:
		s := sha1.Sum(csr.RawTBSCertificateRequest)
		digest, hashOID = s[:], asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	case crypto.MD5:
		s := md5.Sum(csr.RawTBSCertificateRequest)
		digest, hashOID = s[:], asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
	}
	di, err := asn1.Marshal(struct {
		Alg    pkix.AlgorithmIdentifier
		Digest []byte
	}{pkix.AlgorithmIdentifier{Algorithm: hashOID, Parameters: asn1.NullRawValue}, digest})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := rsa.SignPKCS1v15(nil, key, 0, di)
	if err != nil {
		t.Fatal(err)
	}
	return assembleCSR(t, csr.RawTBSCertificateRequest, alg, sig)
}

func assembleCSR(t testing.TB, tbs []byte, alg asn1.ObjectIdentifier, sig []byte) []byte {
	t.Helper()
	der, err := asn1.Marshal(rawCSR{
		TBS:       asn1.RawValue{FullBytes: tbs},
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: alg, Parameters: asn1.NullRawValue},
		Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// csrForPublicKey builds a CSR for a public key whose private key we do not
// have (ROCA sample, broken moduli). Its signature is garbage: the key
// checks run before the signature check, so the key refusal is what the
// subscriber sees.
func csrForPublicKey(t testing.TB, pub crypto.PublicKey) []byte {
	return csrRawRSA(t, pub, nil)
}

// csrRawRSA builds a CSR for pub and, if key is set, signs it with
// textbook PKCS#1 v1.5 (crypto/rsa refuses keys with close primes, which
// is exactly the key we need to sign with).
func csrRawRSA(t testing.TB, pub crypto.PublicKey, key *rsa.PrivateKey) []byte {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := asn1.Marshal(pkix.Name{CommonName: "x"}.ToRDNSequence())
	tbs, err := asn1.Marshal(struct {
		Version    int
		Subject    asn1.RawValue
		PublicKey  asn1.RawValue
		Attributes asn1.RawValue
	}{0, asn1.RawValue{FullBytes: subj}, asn1.RawValue{FullBytes: spki}, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true}})
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 256)
	if key != nil {
		digest := sha256.Sum256(tbs)
		di, _ := asn1.Marshal(struct {
			Alg    pkix.AlgorithmIdentifier
			Digest []byte
		}{pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, Parameters: asn1.NullRawValue}, digest[:]})
		k := key.N.BitLen() / 8
		em := make([]byte, k)
		em[1] = 1
		for i := 2; i < k-len(di)-1; i++ {
			em[i] = 0xff
		}
		copy(em[k-len(di):], di)
		sig = new(big.Int).Exp(new(big.Int).SetBytes(em), key.D, key.N).FillBytes(make([]byte, k))
	}
	return assembleCSR(t, tbs, oidSHA256WithRSA, sig)
}

// The ROCA sample from github.com/titanous/rocacheck's test (a key made by
// an affected Infineon chip).
const rocaPublicKey = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlze9c7qGdjDLVR/ntk+4
ZkfMcYsAnmfTFHfe3Xv7jRQqPCXCULtr0y0jG3aRJmEenoXO9uDveqr43gFB9yvA
dLEhu0aJqpB7lNZ+yXsvfVp/96dkSN8oWYL/dd9Z7GQOvVniHUY3Xsd7zdw2eYOy
HSXhhA2Ttwnj3c1jEYfC0y9q1cU99aL0ogGDqolcOvlkJu+mGb+6+WyboFa1gwRu
kYxBHZWKiHCt/eihvXsPTzTlXmTXWdGJtA1xZDnCBWuZ90b5R0agXVIESTl0cCyH
aQM/tLZmktJIU+Eu7ALBXemPg9kh3SCnYd3/YvDGCtYSXOWthHwlP5CImRBcQaNn
cQIDAQAB
-----END PUBLIC KEY-----`

func rocaKey(t testing.TB) *rsa.PublicKey {
	b, _ := pem.Decode([]byte(rocaPublicKey))
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PublicKey)
}

// fermatKey has primes sharing their top ~800 bits.
func fermatKey(t testing.TB) crypto.Signer {
	return cache.get(t, "fermat", func() (crypto.Signer, error) {
		p, err := rand.Prime(rand.Reader, 1024)
		if err != nil {
			return nil, err
		}
		q := new(big.Int).Add(p, new(big.Int).Lsh(big.NewInt(1), 200))
		q.SetBit(q, 0, 1)
		for !q.ProbablyPrime(20) {
			q.Add(q, big.NewInt(2))
		}
		k := rsaFromPrimes(t, p, q, 65537)
		if k == nil {
			return nil, errors.New("65537 not invertible; rerun")
		}
		return k, nil
	})
}

type blockedSet map[[32]byte]bool

func (b blockedSet) IsBlocked(_ context.Context, h [32]byte) (bool, error) { return b[h], nil }

type failingBlocked struct{}

func (failingBlocked) IsBlocked(context.Context, [32]byte) (bool, error) {
	return false, errors.New("db down")
}

func TestCheckCSRRefusals(t *testing.T) {
	ctx := context.Background()
	good := rsaKey(t, 2048)
	goodPEM := makeCSR(t, good)
	ecPEM := makeCSR(t, ecKey(t, elliptic.P256()))

	blockedKey := freshECKey(t)
	h, _ := SPKISHA256(blockedKey.Public())
	blocked := blockedSet{h: true}

	e3 := cache.get(t, "rsa-e3", func() (crypto.Signer, error) {
		p, q := primesFor(t, 1024, 3)
		return rsaFromPrimes(t, p, q, 3), nil
	})
	odd := cache.get(t, "rsa-2050", func() (crypto.Signer, error) {
		// 1025-bit primes: a 2049/2050-bit modulus, not a multiple of 8
		// in most draws; retried below until it is not.
		for {
			p, q := primesFor(t, 1025, 65537)
			k := rsaFromPrimes(t, p, q, 65537)
			if k.N.BitLen()%8 != 0 {
				return k, nil
			}
		}
	})
	_, ed, _ := ed25519.GenerateKey(rand.Reader)

	tampered := func() []byte {
		b, _ := pem.Decode(goodPEM)
		der := append([]byte(nil), b.Bytes...)
		der[len(der)-5] ^= 0x40 // flip a bit in the signature
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}()

	smallFactor := func() *rsa.PublicKey {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 2048))
		n.SetBit(n, 2047, 1)
		n.Sub(n, new(big.Int).Mod(n, big.NewInt(3*5*7)))
		n.Add(n, big.NewInt(105)) // divisible by 3, 5 and 7, odd
		return &rsa.PublicKey{N: n, E: 65537}
	}()

	dv := func(csr []byte, domains ...string) Request {
		return Request{Profile: ProfileServerDV, CSR: csr, Domains: domains}
	}
	client := func(csr []byte, email string) Request {
		return Request{Profile: ProfileClientSign, CSR: csr, Email: email, Subject: Subject{CommonName: "Taro Yamada", Surname: "Yamada"}}
	}

	cases := []struct {
		name    string
		req     Request
		blocked BlockedKeys
		want    error
		// msg is a fragment the refusal must contain (actionable text).
		msg string
	}{
		{"rsa-1024", dv(makeCSR(t, rsaKey(t, 1024)), "example.com"), nil, ErrRSAKeyTooSmall, "minimum is 2048"},
		{"rsa-2047", dv(makeCSR(t, rsaKey(t, 2047)), "example.com"), nil, ErrRSAKeyTooSmall, "2047 bits"},
		{"rsa-not-multiple-of-8", dv(makeCSR(t, odd), "example.com"), nil, ErrRSAKeySize, "multiple of 8"},
		{"rsa-e3", dv(makeCSR(t, e3), "example.com"), nil, ErrRSAExponent, "65537"},
		{"rsa-small-factor", dv(csrForPublicKey(t, smallFactor), "example.com"), nil, ErrRSAModulus, "small prime factor"},
		{"sha1-rsa", dv(resignRSA(t, goodPEM, good.(*rsa.PrivateKey), crypto.SHA1, oidSHA1WithRSA), "example.com"), nil, ErrWeakSignatureAlgorithm, "O11"},
		{"md5-rsa", dv(resignRSA(t, goodPEM, good.(*rsa.PrivateKey), crypto.MD5, oidMD5WithRSA), "example.com"), nil, ErrWeakSignatureAlgorithm, "SHA-256"},
		{"roca", dv(csrForPublicKey(t, rocaKey(t)), "example.com"), nil, ErrROCA, "ROCA"},
		{"fermat", dv(csrRawRSA(t, fermatKey(t).Public(), fermatKey(t).(*rsa.PrivateKey)), "example.com"), nil, ErrFermat, "Fermat"},
		{"p224", dv(makeCSR(t, ecKey(t, elliptic.P224())), "example.com"), nil, ErrCurveNotAllowed, "P-224"},
		{"p521", dv(makeCSR(t, ecKey(t, elliptic.P521())), "example.com"), nil, ErrCurveNotAllowed, "P-521"},
		{"ed25519-tls", dv(makeCSR(t, ed), "example.com"), nil, ErrKeyTypeNotAllowed, "Ed25519"},
		{"ecdsa-client", client(ecPEM, "taro@example.jp"), nil, ErrKeyTypeNotAllowed, "RSA"},
		{"tampered-signature", dv(tampered, "example.com"), nil, ErrCSRSignature, "altered"},
		{"garbage", dv([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), "example.com"), nil, ErrCSRMalformed, "PKCS#10"},
		{"blocked-key", dv(makeCSR(t, blockedKey), "example.com"), blocked, ErrBlockedKey, "compromised"},
		{"ip-address", dv(ecPEM, "192.0.2.1"), nil, ErrNameIPAddress, "IP address"},
		{"ipv6-address", dv(ecPEM, "2001:db8::1"), nil, ErrNameIPAddress, "IP address"},
		{"single-label", dv(ecPEM, "intranet"), nil, ErrNameNotPublic, "single-label"},
		{"dot-local", dv(ecPEM, "printer.local"), nil, ErrNameNotPublic, "public top-level"},
		{"dot-internal", dv(ecPEM, "db.corp.internal"), nil, ErrNameNotPublic, "public top-level"},
		{"wildcard-on-tld", dv(ecPEM, "*.com"), nil, ErrWildcardInvalid, "public suffix"},
		{"wildcard-on-cctld-suffix", dv(ecPEM, "*.co.jp"), nil, ErrWildcardInvalid, "public suffix"},
		{"wildcard-not-leftmost", dv(ecPEM, "a.*.example.com"), nil, ErrWildcardInvalid, "leftmost"},
		{"partial-wildcard", dv(ecPEM, "w*.example.com"), nil, ErrWildcardInvalid, "leftmost"},
		{"public-suffix", dv(ecPEM, "co.jp"), nil, ErrNameIsSuffix, "public suffix"},
		{"upper-case", dv(ecPEM, "WWW.Example.com"), nil, ErrNameMalformed, "lower case"},
		{"underscore", dv(ecPEM, "my_host.example.com"), nil, ErrNameMalformed, "only a-z"},
		{"trailing-dot", dv(ecPEM, "example.com."), nil, ErrNameMalformed, "trailing dot"},
		{"label-too-long", dv(ecPEM, strings.Repeat("a", 64)+".example.com"), nil, ErrNameTooLong, "63"},
		{"name-too-long", dv(ecPEM, strings.Repeat("abcdefghi.", 26)+"example.com"), nil, ErrNameTooLong, "253"},
		{"bad-idn", dv(ecPEM, "xn--zz-zzzz.example.com"), nil, ErrNameMalformed, "IDN"},
		{"no-domains", dv(ecPEM), nil, ErrNoNames, "at least one"},
		{"duplicate-domain", dv(ecPEM, "example.com", "example.com"), nil, ErrDuplicateName, "twice"},
		{"bad-email", client(goodPEM, "Taro <taro@example.jp>"), nil, ErrEmailInvalid, "bare"},
		{"email-internal-domain", client(goodPEM, "taro@mail.local"), nil, ErrEmailInvalid, "domain"},
		{"dv-with-org", Request{Profile: ProfileServerDV, CSR: ecPEM, Domains: []string{"example.com"}, Subject: Subject{Organization: "X KK"}}, nil, ErrSubjectInvalid, ProfileServerOV},
		{"ov-without-locality", Request{Profile: ProfileServerOV, CSR: ecPEM, Domains: []string{"example.com"}, Subject: Subject{Organization: "X KK", Country: "JP"}}, nil, ErrSubjectInvalid, "locality"},
		{"bad-country", Request{Profile: ProfileServerOV, CSR: ecPEM, Domains: []string{"example.com"}, Subject: Subject{Organization: "X KK", Province: "Tokyo", Country: "JA"}}, nil, ErrSubjectInvalid, "ISO 3166"},
		{"unknown-profile", Request{Profile: "server-ev", CSR: ecPEM}, nil, ErrUnknownProfile, "server-dv"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := CheckCSR(ctx, &c.req, c.blocked)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v (code %q), want %v", err, problem.CodeOf(err), c.want)
			}
			if !problem.IsRefusal(err) {
				t.Errorf("refusal not marked as such: %v", err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("message %q lacks %q", err, c.msg)
			}
		})
	}

	// The same checks pass good requests (each case above differs from one
	// of these in one respect only).
	for name, r := range map[string]Request{
		"rsa":       dv(goodPEM, "example.com", "*.example.com", "xn--wgv71a119e.jp"),
		"ec":        dv(ecPEM, "www.example.co.jp"),
		"client":    client(goodPEM, "taro@example.jp"),
		"unblocked": dv(makeCSR(t, freshECKey(t)), "example.com"),
	} {
		if _, err := CheckCSR(ctx, &r, blocked); err != nil {
			t.Errorf("good request %s refused: %v", name, err)
		}
	}

	// A failing blocked-key lookup is a retryable failure, not a refusal.
	r := dv(ecPEM, "example.com")
	_, err := CheckCSR(ctx, &r, failingBlocked{})
	if err == nil || problem.IsRefusal(err) {
		t.Errorf("lookup failure: got %v, want a retryable error", err)
	}
}

func TestKeyChecksDirect(t *testing.T) {
	// ROCA: every sample of the reference implementation.
	if !goodkey.IsROCAWeak(rocaKey(t).N) {
		t.Error("ROCA sample not detected")
	}
	if goodkey.IsROCAWeak(rsaKey(t, 2048).Public().(*rsa.PublicKey).N) {
		t.Error("random key flagged as ROCA")
	}
	// Fermat: close primes found, random ones not.
	if !goodkey.FermatFactorable(fermatKey(t).Public().(*rsa.PublicKey).N, goodkey.FermatRounds) {
		t.Error("close primes not detected")
	}
	if goodkey.FermatFactorable(rsaKey(t, 2048).Public().(*rsa.PublicKey).N, goodkey.FermatRounds) {
		t.Error("random key flagged as Fermat-factorable")
	}
	// P-256 with an off-curve point is refused (if it ever gets past
	// parsing, e.g. when a caller hands us a public key directly).
	pub := ecKey(t, elliptic.P256()).Public().(*ecdsa.PublicKey)
	bad := &ecdsa.PublicKey{Curve: pub.Curve, X: pub.X, Y: new(big.Int).Add(pub.Y, big.NewInt(1))}
	pol := goodkey.Policy{AllowP256: true}
	if err := pol.CheckStatic(bad); !errors.Is(err, goodkey.ErrECPointInvalid) {
		t.Errorf("off-curve point: %v", err)
	}
}
