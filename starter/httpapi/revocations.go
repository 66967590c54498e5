package httpapi

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"

	"certdesk/internal/api"
	"certdesk/internal/pki"
	"certdesk/internal/revocation"
	"certdesk/internal/status"
	"certdesk/internal/store"
	"certdesk/workflows"
)

// KeyProofChallenge is what a key holder signs to prove possession of a
// certificate's private key: the fixed string "certdesk-revoke:" followed
// by the certificate serial in lower-case hex without leading zeros. A
// replayed proof can only revoke the same certificate again, which changes
// nothing, so no server-issued nonce is needed.
//
// With OpenSSL:
//
//	printf 'certdesk-revoke:%s' "$serial" | openssl dgst -sha256 -sign key.pem | base64 -w0
//
// (RSA PKCS #1 v1.5 or PSS, or ECDSA, over SHA-256 of the string; Ed25519
// signs the string itself.) Alternatively send a CSR made with the key whose
// subject common name is the challenge:
//
//	openssl req -new -key key.pem -subj "/CN=certdesk-revoke:$serial"
func KeyProofChallenge(serial string) string {
	return "certdesk-revoke:" + store.NormalizeSerial(serial)
}

// revokeByKeyProof revokes a certificate for key compromise at the request
// of anyone who proves possession of its private key (O12, BR §4.9.2).
func (s *Server) revokeByKeyProof(w http.ResponseWriter, r *http.Request) {
	var req keyProofRequest
	if !s.decodeValid(w, r, &req) {
		return
	}
	cert := req.cert
	serial := cert.SerialNumber.Text(16)
	stored, err := s.st.GetCertificate(r.Context(), serial)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !bytes.Equal(stored.DER, cert.Raw)) {
		s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "this certificate was not issued by CertDesk"))
		return
	}
	if err != nil {
		s.internalError(w, r, "read certificate", err)
		return
	}
	challenge := KeyProofChallenge(serial)
	method := "signature"
	if req.CSR != "" {
		method = "csr"
		err = verifyCSRProof([]byte(req.CSR), cert, challenge)
	} else {
		err = verifySignatureProof(cert.PublicKey, req.sig, challenge)
	}
	if err != nil {
		s.problem(w, r, api.New(http.StatusForbidden, api.TypeKeyProofInvalid, err.Error()+"; sign "+challenge+" (see /openapi.yaml)").
			With("challenge", challenge))
		return
	}
	s.startRevocation(w, r, workflows.RevocationInput{
		Serial: stored.Serial, Reason: revocation.KeyCompromise.String(), Comment: req.Comment,
		Requester: workflows.Requester{Kind: workflows.RequesterSubscriber, ID: "key-proof:" + method},
	}, stored.ResellerID)
}

var errBadProof = errors.New("the signature does not verify with the certificate's public key")

// verifySignatureProof checks sig over challenge with pub.
func verifySignatureProof(pub crypto.PublicKey, sig []byte, challenge string) error {
	digest := sha256.Sum256([]byte(challenge))
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil {
			return nil
		}
		if rsa.VerifyPSS(k, crypto.SHA256, digest[:], sig, nil) == nil {
			return nil
		}
	case *ecdsa.PublicKey:
		if ecdsa.VerifyASN1(k, digest[:], sig) {
			return nil
		}
	case ed25519.PublicKey:
		if ed25519.Verify(k, []byte(challenge), sig) {
			return nil
		}
	default:
		return errors.New("unsupported key type")
	}
	return errBadProof
}

// verifyCSRProof checks that csrPEM is signed by the certificate's key and
// names the challenge as its common name (so a CSR sent for issuance cannot
// be replayed as a compromise report).
func verifyCSRProof(csrPEM []byte, cert *x509.Certificate, challenge string) error {
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		return errors.New("the CSR does not parse")
	}
	if err := csr.CheckSignature(); err != nil {
		return errors.New("the CSR signature does not verify")
	}
	if !bytes.Equal(csr.RawSubjectPublicKeyInfo, cert.RawSubjectPublicKeyInfo) {
		return errors.New("the CSR's public key is not the certificate's")
	}
	if csr.Subject.CommonName != challenge {
		return errors.New("the CSR's subject common name must be the challenge")
	}
	return nil
}

// KeyOnlyProofChallenge is what a key holder signs to report a key as
// compromised without naming a certificate: "certdesk-revoke-key:" followed
// by the lower-case hex SHA-256 of the key's DER SubjectPublicKeyInfo. A
// replayed proof can only block the same key again, which changes nothing.
//
// With OpenSSL:
//
//	spki=$(openssl pkey -in key.pem -pubout -outform DER | sha256sum | cut -d' ' -f1)
//	openssl req -new -key key.pem -subj "/CN=certdesk-revoke-key:$spki"
func KeyOnlyProofChallenge(spkiSHA256 []byte) string {
	return "certdesk-revoke-key:" + hex.EncodeToString(spkiSHA256)
}

// keyOnlyProofRequest is the body of POST /v1/key-compromises.
type keyOnlyProofRequest struct {
	PublicKey string `json:"public_key"`
	Signature string `json:"signature"`
	CSR       string `json:"csr"`
	Comment   string `json:"comment"`

	// Set by Validate.
	pub  crypto.PublicKey
	spki []byte // DER SubjectPublicKeyInfo
	csr  *x509.CertificateRequest
	sig  []byte
}

// Validate parses the proof: a CSR made with the key, or the public key and
// a signature by it (exactly one form).
func (r *keyOnlyProofRequest) Validate() *api.Validation {
	var v api.Validation
	switch {
	case r.CSR == "" && r.PublicKey == "":
		v.Add("csr", "required", "send csr (or public_key and signature) proving possession of the key")
	case r.CSR != "" && (r.PublicKey != "" || r.Signature != ""):
		v.Add("csr", "not_allowed", "send either csr, or public_key and signature, not both")
	case r.CSR != "":
		csr, err := pki.ParseCSR([]byte(r.CSR))
		if err != nil {
			v.Add("csr", "csr-malformed", "the CSR does not parse")
		} else {
			r.csr, r.pub, r.spki = csr, csr.PublicKey, csr.RawSubjectPublicKeyInfo
		}
	default:
		b, _ := pem.Decode([]byte(r.PublicKey))
		if b == nil || b.Type != "PUBLIC KEY" {
			v.Add("public_key", "invalid", "send the public key as one PEM PUBLIC KEY block (openssl pkey -pubout)")
		} else if pub, err := x509.ParsePKIXPublicKey(b.Bytes); err != nil {
			v.Add("public_key", "invalid", "the public key does not parse")
		} else {
			r.pub, r.spki = pub, b.Bytes
		}
		sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.Signature))
		if v.Required("signature", r.Signature == "") && (err != nil || len(sig) == 0 || len(sig) > 2048) {
			v.Add("signature", "invalid", "base64 of the signature over the challenge")
		} else {
			r.sig = sig
		}
	}
	validComment(&v, r.Comment)
	return &v
}

// keyCompromiseResponse is the 202 answer of POST /v1/key-compromises.
type keyCompromiseResponse struct {
	SPKISHA256  string               `json:"spki_sha256"`
	Blocked     bool                 `json:"blocked"`
	Revocations []revocationResponse `json:"revocations"`
}

// reportKeyCompromise blocks a key at the request of anyone who proves
// possession of it, with or without a CertDesk certificate (BR §4.9.2,
// §6.1.1.3), and starts the keyCompromise revocation of every certificate
// with it that is valid or revoked for a weaker reason; each case then
// blocks the key again (idempotent) and cascades.
func (s *Server) reportKeyCompromise(w http.ResponseWriter, r *http.Request) {
	var req keyOnlyProofRequest
	if !s.decodeValid(w, r, &req) {
		return
	}
	sum := sha256.Sum256(req.spki)
	challenge := KeyOnlyProofChallenge(sum[:])
	method := "signature"
	var err error
	if req.csr != nil {
		method = "csr"
		switch {
		case req.csr.CheckSignature() != nil:
			err = errors.New("the CSR signature does not verify")
		case req.csr.Subject.CommonName != challenge:
			err = errors.New("the CSR's subject common name must be the challenge")
		}
	} else {
		err = verifySignatureProof(req.pub, req.sig, challenge)
	}
	if err != nil {
		s.problem(w, r, api.New(http.StatusForbidden, api.TypeKeyProofInvalid, err.Error()+"; sign "+challenge+" (see /openapi.yaml)").
			With("challenge", challenge))
		return
	}
	// Blocked before any case starts, so a CSR with the key is refused from
	// now on even if no certificate has it.
	if err := s.st.BlockKey(r.Context(), sum[:], revocation.KeyCompromise.String(), "key-proof:"+method); err != nil {
		s.internalError(w, r, "block key", err)
		return
	}
	refs, err := s.st.ListCertificatesBySPKI(r.Context(), sum[:])
	if err != nil {
		s.internalError(w, r, "list certificates by key", err)
		return
	}
	res := keyCompromiseResponse{SPKISHA256: hex.EncodeToString(sum[:]), Blocked: true, Revocations: []revocationResponse{}}
	for _, c := range refs {
		if c.Status != status.CertValid && c.ReasonCode != nil && *c.ReasonCode == int(revocation.KeyCompromise) {
			continue // nothing left to do for this one
		}
		rr, err := s.signalRevocation(r, workflows.RevocationInput{
			Serial: c.Serial, Reason: revocation.KeyCompromise.String(), Comment: req.Comment,
			Requester: workflows.Requester{Kind: workflows.RequesterSubscriber, ID: "key-proof:" + method},
		}, c.ResellerID)
		if err != nil {
			s.temporalError(w, r, "start revocation", err)
			return
		}
		res.Revocations = append(res.Revocations, rr)
	}
	writeJSON(w, http.StatusAccepted, res)
}
