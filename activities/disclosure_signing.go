package activities

import (
	"context"
	"time"

	"certdesk/internal/disclosure"
	"certdesk/internal/store"
)

// SignDisclosureInput names the draft to sign and the digest the workflow
// was told when it was compiled.
type SignDisclosureInput struct {
	RequestID string
	PackageID string
	SHA256    string
}

// SignDisclosureResult names the stored, signed package.
type SignDisclosureResult struct {
	PackageID string
	SHA256    string
	Signer    string // subject of the document-signing certificate
}

// SignDisclosurePackage signs a compiled disclosure package with the CA's
// document-signing key (a detached CMS signature over the JSON that
// `openssl cms -verify` accepts), stores the package and drops the draft.
// It signs only the draft whose digest the workflow holds. Idempotent: once
// a package is saved for the request, a retry returns it and signs nothing.
func (s *SigningActivities) SignDisclosurePackage(ctx context.Context, in SignDisclosureInput) (SignDisclosureResult, error) {
	ds := s.CA.DocumentSigner()
	if ds == nil {
		return SignDisclosureResult{}, nonRetryable(ErrTypeInvalid, "this CA has no document-signing certificate (it is issued under the client-sign issuing CA at bootstrap)", nil)
	}
	res := SignDisclosureResult{Signer: ds.Certificate().Subject.CommonName}
	if ref, err := s.Store.DisclosurePackageRef(ctx, in.RequestID); err != nil {
		return res, storeErr(err, "disclosure request "+in.RequestID)
	} else if ref != "" {
		pkg, err := s.Store.GetDisclosurePackage(ctx, ref)
		if err != nil {
			return res, storeErr(err, "disclosure package "+ref)
		}
		_ = s.Store.DeleteDisclosureDraft(ctx, in.RequestID)
		res.PackageID, res.SHA256 = pkg.ID, disclosure.DigestOf(pkg.JSON)
		return res, nil
	}
	draft, err := s.Store.GetDisclosureDraft(ctx, in.RequestID)
	if err != nil {
		return res, storeErr(err, "disclosure draft of "+in.RequestID)
	}
	if got := disclosure.DigestOf(draft.JSON); got != in.SHA256 || draft.SHA256 != in.SHA256 {
		return res, nonRetryable(ErrTypeInvalid, "disclosure draft of "+in.RequestID+" does not match the digest compiled; refusing to sign", nil)
	}
	if ds.NeedsRenewal(time.Now()) {
		s.Log.Warn("document-signing certificate expires within 30 days; renew it", "not_after", ds.Certificate().NotAfter)
	}
	sig, err := ds.SignDetached(draft.JSON)
	if err != nil {
		return res, err
	}
	// One event per package (keyed by request and digest), before it is saved.
	if err := s.auditSigning(ctx, AuditDisclosureSigned, "disclosure:"+in.RequestID, map[string]any{
		"package": in.PackageID, "sha256": in.SHA256, "signer": res.Signer,
	}, in.SHA256); err != nil {
		return res, err
	}
	id, err := s.Store.SaveDisclosurePackage(ctx, store.DisclosurePackage{
		ID: in.PackageID, RequestID: in.RequestID, JSON: draft.JSON, HTML: draft.HTML, SignatureDER: sig,
	})
	if err != nil {
		return res, storeErr(err, "disclosure package of "+in.RequestID)
	}
	if err := s.Store.DeleteDisclosureDraft(ctx, in.RequestID); err != nil {
		s.Log.Warn("disclosure draft not deleted; it is removed on the next signing attempt", "request", in.RequestID, "error", err)
	}
	res.PackageID, res.SHA256 = id, in.SHA256
	return res, nil
}
