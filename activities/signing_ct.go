package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"

	"certdesk/internal/ct"
	"certdesk/internal/pki"
	"certdesk/internal/pki/problem"
	"certdesk/internal/product"
	"certdesk/internal/status"
	"certdesk/internal/store"
)

// ErrTypeCTIncomplete: the SCTs stored for a precertificate do not (or no
// longer) satisfy the CT policy; the workflow gathers SCTs again before the
// final certificate is signed.
const ErrTypeCTIncomplete = "CTIncomplete"

// CTStore is what Certificate Transparency issuance reads and writes.
type CTStore interface {
	GetCertificate(ctx context.Context, serial string) (store.Certificate, error)
	ListSCTs(ctx context.Context, serial string) ([]store.SCT, error)
}

// CTLogs is the log list and the policy the signer checks SCTs against;
// nil on a signer without CERTDESK_CT_LOG_LIST, which then refuses TLS
// issuance.
type CTLogs struct {
	List   *ct.LogList
	Policy ct.Policy
}

// LoadCTLogs reads the log list at path for policy; empty path: nil.
func LoadCTLogs(path string, policy ct.Policy) (*CTLogs, error) {
	if path == "" {
		return nil, nil
	}
	list, err := ct.LoadLogList(path)
	if err != nil {
		return nil, err
	}
	if len(policy) == 0 {
		policy = ct.Default
	}
	return &CTLogs{List: list, Policy: policy}, nil
}

// SCTInfo describes one embedded SCT for the subscriber's email and the
// API: which log, when, and where its entry can be read. Public data.
type SCTInfo struct {
	LogID     string // hex SHA-256 of the log key
	Log       string // the log's description
	Operator  string
	Timestamp time.Time
	// LeafIndex is the entry's index in a Static CT API log.
	LeafIndex *uint64 `json:",omitempty"`
	Link      string
}

// FinalInput names the precertificate whose final certificate to sign; In
// is the request the precertificate was signed from.
type FinalInput struct {
	In     IssueInput
	Serial string
}

// IssuePrecertificate lints and signs the application's precertificate
// exactly once (the contract of IssueCertificate: issuance lock, serial
// reserved first, what is stored is returned) and stores it as issued:
// from then on the serial answers OCSP and can be revoked. TLS products
// only; a signer without a CT log list refuses before signing.
func (s *SigningActivities) IssuePrecertificate(ctx context.Context, in IssueInput) (IssueResult, error) {
	if !product.TLS(in.Product) {
		return IssueResult{}, nonRetryable(ErrTypeInvalid, in.Product+" certificates are not logged in Certificate Transparency: issue them with IssueCertificate", nil)
	}
	if s.CT == nil {
		return IssueResult{}, nonRetryable(ErrTypeCSRRejected, "not signed: the signer has no Certificate Transparency log list; set CERTDESK_CT_LOG_LIST and restart the signer", nil)
	}
	var res IssueResult
	err := s.Store.WithIssuanceLock(ctx, in.ApplicationID, func(ctx context.Context) error {
		p, err := s.prepare(ctx, in)
		if err != nil || p.existing != nil {
			if p.existing != nil {
				res = issueResult(*p.existing)
				return s.auditCertificate(ctx, AuditPrecertificateSigned, *p.existing, in.ApplicationID)
			}
			return err
		}
		notAfter := p.req.NotBefore.Add(p.req.Validity - time.Second)
		if _, err := s.CT.Policy.Candidates(s.CT.List, p.req.NotBefore, notAfter, time.Now()); err != nil {
			// Nothing signed: a precertificate no log could take would
			// be issuance that never finishes.
			return fmt.Errorf("precertificate not signed: %w", err)
		}
		out, err := p.issuer.IssuePrecert(ctx, p.req)
		if err != nil {
			return signErr(err)
		}
		c, err := s.certificateRow(in, p, out)
		if err != nil {
			return err
		}
		if err := s.Store.StorePrecertificate(ctx, c); err != nil {
			return storeErr(err, "precertificate")
		}
		c.CTState, c.PrecertDER = store.CTPrecert, c.DER
		if err := s.auditCertificate(ctx, AuditPrecertificateSigned, c, in.ApplicationID); err != nil {
			return err
		}
		s.firstOCSP(ctx, c.Serial)
		res = issueResult(c)
		return nil
	})
	return res, err
}

// IssueFinalCertificate signs, exactly once, the final certificate of the
// precertificate in.Serial with the SCTs stored for it, after verifying
// each against its log's key and the whole set against the CT policy. Its
// TBSCertificate is the precertificate's but for poison → SCT list
// (pki.Issuer.IssueFinal refuses otherwise). A final certificate already
// stored is returned as it is.
func (s *SigningActivities) IssueFinalCertificate(ctx context.Context, in FinalInput) (IssueResult, error) {
	if s.CT == nil {
		return IssueResult{}, nonRetryable(ErrTypeCSRRejected, "not signed: the signer has no Certificate Transparency log list; set CERTDESK_CT_LOG_LIST and restart the signer", nil)
	}
	var res IssueResult
	err := s.Store.WithIssuanceLock(ctx, in.In.ApplicationID, func(ctx context.Context) error {
		c, err := s.Store.GetCertificate(ctx, in.Serial)
		if err != nil {
			return storeErr(err, "precertificate "+in.Serial)
		}
		if c.ApplicationID != in.In.ApplicationID {
			return nonRetryable(ErrTypeInvalid, fmt.Sprintf("certificate %s belongs to application %s, not %s", c.Serial, c.ApplicationID, in.In.ApplicationID), nil)
		}
		switch c.CTState {
		case store.CTFinal:
			res = issueResult(c)
			if err := s.auditCertificate(ctx, AuditCertificateSigned, c, in.In.ApplicationID); err != nil {
				return err
			}
			res.SCTs, err = s.sctInfo(ctx, s.Store, c)
			return err
		case store.CTPrecert:
		default:
			return nonRetryable(ErrTypeInvalid, "certificate "+c.Serial+" was not issued through Certificate Transparency", nil)
		}
		issuer, ok := s.CA.Issuer(c.Issuer)
		if !ok {
			return nonRetryable(ErrTypeInvalid, "issuing CA "+c.Issuer+" of precertificate "+c.Serial+" is not loaded by this signer", nil)
		}
		scts, err := verifiedSCTs(ctx, s.Store, s.CT, c, issuer.Certificate().Raw)
		if err != nil {
			return err
		}
		list, err := ct.EncodeSCTList(scts)
		if err != nil {
			return err
		}
		serial, ok := new(big.Int).SetString(c.Serial, 16)
		if !ok {
			return nonRetryable(ErrTypeInvalid, "stored serial is not hex", nil)
		}
		req := &pki.IssueRequest{
			Request:   pki.Request{Profile: in.In.Product, CSR: []byte(in.In.CSRPEM), Subject: in.In.Subject, Domains: in.In.Domains, Email: in.In.Email},
			Serial:    serial,
			NotBefore: c.NotBefore.UTC(),
			Validity:  time.Duration(in.In.ValidityDays) * 24 * time.Hour,
		}
		out, err := issuer.IssueFinal(ctx, req, c.PrecertDER, list)
		if err != nil {
			return signErr(err)
		}
		if err := s.Store.StoreFinalCertificate(ctx, c.Serial, out.DER); err != nil {
			return storeErr(err, "final certificate")
		}
		c.DER, c.CTState = out.DER, store.CTFinal
		if err := s.auditCertificate(ctx, AuditCertificateSigned, c, in.In.ApplicationID); err != nil {
			return err
		}
		res = issueResult(c)
		res.SCTs, err = s.sctInfo(ctx, s.Store, c)
		return err
	})
	return res, err
}

// verifiedSCTs reads the stored SCTs of precertificate c and returns those
// of listed logs, each verified again against its log's key over the
// precertificate, once they satisfy the policy; ErrTypeCTIncomplete when
// they do not.
func verifiedSCTs(ctx context.Context, st CTStore, logs *CTLogs, c store.Certificate, issuerDER []byte) ([]ct.SCT, error) {
	rows, err := st.ListSCTs(ctx, c.Serial)
	if err != nil {
		return nil, err
	}
	chain := [][]byte{c.PrecertDER, issuerDER}
	var out []ct.SCT
	for _, r := range rows {
		sct, ok := toSCT(r)
		l := logs.List.ByID(sct.LogID)
		if !ok || l == nil {
			continue // a log no longer listed: its SCT does not count
		}
		if err := ct.Verify(l, chain, sct); err != nil {
			return nil, nonRetryable(ErrTypeCSRRejected, "not signed: a stored SCT does not verify: "+err.Error(), nil)
		}
		out = append(out, sct)
	}
	if err := logs.Policy.Satisfied(logs.List, out, c.NotBefore, c.NotAfter); err != nil {
		return nil, nonRetryable(ErrTypeCTIncomplete, fmt.Sprintf("final certificate %s not signed: %v", c.Serial, err), nil)
	}
	return out, nil
}

func toSCT(r store.SCT) (ct.SCT, bool) {
	if len(r.LogID) != sha256.Size {
		return ct.SCT{}, false
	}
	s := ct.SCT{Timestamp: uint64(r.Timestamp.UnixMilli()), Raw: r.Raw}
	copy(s.LogID[:], r.LogID)
	if p, err := s.Parse(); err == nil {
		s.Timestamp = p.Timestamp // exact, not the stored rounding
	}
	return s, true
}

// sctInfo describes the SCTs stored for c.
func (s *SigningActivities) sctInfo(ctx context.Context, st CTStore, c store.Certificate) ([]SCTInfo, error) {
	return describeSCTs(ctx, st, s.CT.List, c.Serial)
}

func describeSCTs(ctx context.Context, st CTStore, list *ct.LogList, serial string) ([]SCTInfo, error) {
	rows, err := st.ListSCTs(ctx, serial)
	if err != nil {
		return nil, err
	}
	out := make([]SCTInfo, 0, len(rows))
	for _, r := range rows {
		sct, ok := toSCT(r)
		if !ok {
			continue
		}
		info := SCTInfo{LogID: hex.EncodeToString(sct.LogID[:]), Timestamp: sct.Time()}
		if l := list.ByID(sct.LogID); l != nil {
			info.Log, info.Operator, info.Link = l.Description, l.Operator, ct.EntryLink(l, sct)
		}
		if idx, ok := ct.LeafIndex(sct); ok {
			info.LeafIndex = &idx
		}
		out = append(out, info)
	}
	return out, nil
}

// signErr maps an issuer's refusal to a non-retryable rejection.
func signErr(err error) error {
	if problem.IsRefusal(err) {
		return nonRetryable(ErrTypeCSRRejected, err.Error(), nil)
	}
	return err
}

// prepared is what signing needs once the application's serial is
// reserved, or the certificate already stored for it.
type prepared struct {
	existing *store.Certificate
	issuer   *pki.Issuer
	serial   string
	req      *pki.IssueRequest
}

// prepare runs under the issuance lock: it returns the application's stored
// certificate if there is one; otherwise it checks the evidence and
// reserves the serial. Whether a certificate was already issued must be
// known before signing: a read that fails stops here (and is retried)
// rather than risk a second certificate.
func (s *SigningActivities) prepare(ctx context.Context, in IssueInput) (prepared, error) {
	iss, err := s.Store.GetIssuance(ctx, in.ApplicationID)
	switch {
	case err == nil:
		c, err := s.Store.GetCertificate(ctx, iss.Serial)
		if err == nil {
			return prepared{existing: &c}, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return prepared{}, err
		}
	case !errors.Is(err, store.ErrNotFound):
		return prepared{}, err
	}
	if err := checkEvidence(ctx, s.Store, in, time.Now()); err != nil {
		return prepared{}, err
	}
	issuer, err := s.CA.IssuerFor(in.Product)
	if err != nil {
		return prepared{}, nonRetryable(ErrTypeInvalid, err.Error(), nil)
	}
	candidate, err := pki.NewSerial()
	if err != nil {
		return prepared{}, err
	}
	iss, err = s.Store.ReserveSerial(ctx, in.ApplicationID, candidate.Text(16))
	if err != nil {
		return prepared{}, storeErr(err, "issuance")
	}
	serial, ok := new(big.Int).SetString(iss.Serial, 16)
	if !ok {
		return prepared{}, nonRetryable(ErrTypeInvalid, "reserved serial is not hex", nil)
	}
	return prepared{issuer: issuer, serial: iss.Serial, req: &pki.IssueRequest{
		Request:   pki.Request{Profile: in.Product, CSR: []byte(in.CSRPEM), Subject: in.Subject, Domains: in.Domains, Email: in.Email},
		Serial:    serial,
		NotBefore: notBefore(iss.ReservedAt, time.Now()),
		Validity:  time.Duration(in.ValidityDays) * 24 * time.Hour,
	}}, nil
}

// certificateRow is the row of a certificate (or precertificate) just signed.
func (s *SigningActivities) certificateRow(in IssueInput, p prepared, out *pki.Issued) (store.Certificate, error) {
	spki, err := pki.SPKISHA256(out.Cert.PublicKey)
	if err != nil {
		return store.Certificate{}, err
	}
	return store.Certificate{
		Serial: p.serial, Issuer: p.issuer.ID(), DER: out.DER, NotBefore: out.Cert.NotBefore, NotAfter: out.Cert.NotAfter,
		SPKISHA256: spki[:], Status: status.CertValid, ResellerID: in.ResellerID, SubscriberID: in.SubscriberID,
		ApplicationID: in.ApplicationID, Product: in.Product, CRLShard: out.Shard,
	}, nil
}

// firstOCSP signs a first OCSP answer ("good") so relying parties get one
// at once; the refresh schedule signs it otherwise.
func (s *SigningActivities) firstOCSP(ctx context.Context, serial string) {
	if err := s.signOCSP(ctx, []string{serial}); err != nil {
		s.Log.Warn("first OCSP response not signed; the refresh schedule will", "serial", serial, "error", err)
	}
}
