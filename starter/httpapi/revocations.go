package httpapi

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"net/http"

	"certdesk/internal/api"
	"certdesk/internal/pki"
	"certdesk/internal/revocation"
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
