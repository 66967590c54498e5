package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"

	"certdesk/internal/pki"
	"certdesk/internal/store"
)

// ACMEProblem is an RFC 8555 §6.7 error an ACME order's workflow records
// on a challenge or on the order: Type is the part after
// "urn:ietf:params:acme:error:" (e.g. incorrectResponse, badCSR).
type ACMEProblem struct {
	Type   string
	Detail string
}

func (p *ACMEProblem) doc(status int) json.RawMessage {
	if p == nil {
		return nil
	}
	raw, _ := json.Marshal(map[string]any{"type": "urn:ietf:params:acme:error:" + p.Type, "detail": p.Detail, "status": status})
	return raw
}

// ACMEChallengeResultInput is the outcome of one ACME challenge: nil
// Problem means valid.
type ACMEChallengeResultInput struct {
	ChallengeID string
	Problem     *ACMEProblem `json:",omitempty"`
}

// RecordACMEChallenge writes a challenge's outcome; the store moves its
// authorization and order along (ready once every authorization is valid,
// invalid with one invalid). Idempotent: a retry writes the same values.
func (a *Activities) RecordACMEChallenge(ctx context.Context, in ACMEChallengeResultInput) error {
	if in.ChallengeID == "" {
		return nonRetryable(ErrTypeInvalid, "ACME challenge: id is required", nil)
	}
	return storeErr(a.Store.FinishACMEChallenge(ctx, in.ChallengeID, in.Problem.doc(http.StatusForbidden)), "ACME challenge "+in.ChallengeID)
}

// ACMEOrderResultInput is the outcome of a finalized ACME order: the
// issued certificate (its serial, issuing CA and PEM) or a Problem.
type ACMEOrderResultInput struct {
	OrderID        string
	Serial         string
	Issuer         string
	CertificatePEM string
	Problem        *ACMEProblem `json:",omitempty"`
}

// RecordACMEOrder marks a processing ACME order valid with the certificate
// chain (leaf, then the issuing CA certificate from the CA directory) or
// invalid with the problem. An order already finished is left as it is, so
// a retry is harmless.
func (a *Activities) RecordACMEOrder(ctx context.Context, in ACMEOrderResultInput) error {
	if in.OrderID == "" || (in.Problem == nil && (in.Serial == "" || in.CertificatePEM == "")) {
		return nonRetryable(ErrTypeInvalid, "ACME order: id and a certificate or a problem are required", nil)
	}
	chain := ""
	if in.Problem == nil {
		ca, err := pki.ReadPublicCA(a.Config.CADir)
		if err != nil {
			return err
		}
		iss, ok := ca.Issuers[in.Issuer]
		if !ok {
			return nonRetryable(ErrTypeInvalid, "ACME order: unknown issuing CA "+in.Issuer, nil)
		}
		chain = in.CertificatePEM + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Raw}))
	}
	err := a.Store.FinishACMEOrder(ctx, in.OrderID, chain, store.NormalizeSerial(in.Serial), in.Problem.doc(http.StatusForbidden))
	if errors.Is(err, store.ErrInvalidTransition) {
		return nil // finished already (a retry), or never finalized
	}
	return storeErr(err, "ACME order "+in.OrderID)
}

// ACMECSRInput is the CSR an ACME order's application received at finalize.
type ACMECSRInput struct {
	ApplicationID string
	CSRPEM        string
	SPKISHA256    string // hex, from CheckCSR
}

// RecordACMECSR stores the finalize CSR on the application recorded at
// newOrder. Idempotent for the same key.
func (a *Activities) RecordACMECSR(ctx context.Context, in ACMECSRInput) error {
	der, err := csrDER(in.CSRPEM)
	if err != nil {
		return nonRetryable(ErrTypeCSRRejected, err.Error(), nil)
	}
	spki, err := hex.DecodeString(in.SPKISHA256)
	if err != nil || len(spki) != sha256.Size {
		return nonRetryable(ErrTypeInvalid, "SPKISHA256 must be 64 hex digits", nil)
	}
	if err := a.Store.SetApplicationCSR(ctx, in.ApplicationID, der, spki); err != nil {
		return storeErr(err, "application "+in.ApplicationID)
	}
	return a.audit(ctx, "system", "application.acme_finalized", "application:"+in.ApplicationID,
		map[string]any{"spki_sha256": in.SPKISHA256})
}
