package httpapi

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"certdesk/internal/api"
	"certdesk/internal/cases"
	"certdesk/internal/ct"
	"certdesk/internal/product"
	"certdesk/internal/revocation"
	"certdesk/internal/status"
	"certdesk/internal/store"
	"certdesk/workflows"
)

// LegalBasisEntrustment is recorded when a reseller reads personal data of
// a subscriber it manages: the designated reseller handles the certificate
// information on the CA's behalf (委託, APPI Art. 27(5)(i)), so this is not
// a third-party provision needing consent, but CertDesk records it anyway
// (O3, O7) so a disclosure shows who received what.
const LegalBasisEntrustment = "APPI Art. 27(5)(i) entrustment (designated reseller handling certificate information for the CA)"

var serialPattern = regexp.MustCompile(`^(0x)?[0-9a-fA-F:]{1,64}$`)

// certificateResponse is GET /v1/certificates/{serial}.
type certificateResponse struct {
	Serial            string            `json:"serial"`
	Status            string            `json:"status"`
	Product           string            `json:"product"`
	Issuer            string            `json:"issuer"`
	NotBefore         time.Time         `json:"not_before"`
	NotAfter          time.Time         `json:"not_after"`
	Subject           string            `json:"subject"`
	DNSNames          []string          `json:"dns_names,omitempty"`
	EmailAddresses    []string          `json:"email_addresses,omitempty"`
	ApplicationID     string            `json:"application_id"`
	RevokedAt         *time.Time        `json:"revoked_at,omitempty"`
	RevocationReason  string            `json:"revocation_reason,omitempty"`
	PEM               string            `json:"pem"`
	CTState           string            `json:"ct_state"`
	SCTs              []sctResponse     `json:"scts,omitempty"`
	Links             map[string]string `json:"links,omitempty"`
	PersonalDataNotes string            `json:"personal_data_notice,omitempty"`
}

// sctResponse is one embedded SCT as relying-party evidence.
type sctResponse struct {
	LogID     string    `json:"log_id"`
	Timestamp time.Time `json:"timestamp"`
	LeafIndex *uint64   `json:"leaf_index,omitempty"`
	SCT       []byte    `json:"sct"`
}

// ctStates names store CT states in the API.
var ctStates = map[string]string{store.CTNone: "none", store.CTPrecert: "precertificate", store.CTFinal: "final", "": "none"}

// serialParam validates and normalises the {serial} path value; an invalid
// one is simply not found.
func serialParam(r *http.Request) (string, bool) {
	s := r.PathValue("serial")
	if !serialPattern.MatchString(s) {
		return "", false
	}
	n := store.NormalizeSerial(s)
	return n, n != "" && n != "0"
}

// getCertificate returns a certificate the reseller manages. A client-sign
// certificate names its subscriber: that read is recorded in the provision
// ledger before the data is sent (O3, O7).
func (s *Server) getCertificate(w http.ResponseWriter, r *http.Request) {
	serial, ok := serialParam(r)
	if !ok {
		s.notFound(w, r, "certificate")
		return
	}
	c, err := s.st.GetCertificateForReseller(r.Context(), serial, resellerOf(r))
	if errors.Is(err, store.ErrNotFound) {
		s.notFound(w, r, "certificate")
		return
	}
	if err != nil {
		s.internalError(w, r, "read certificate", err)
		return
	}
	cert, err := x509.ParseCertificate(c.DER)
	if err != nil {
		s.internalError(w, r, "parse stored certificate", err)
		return
	}
	resp := certificateResponse{
		Serial: c.Serial, Status: c.Status, Product: c.Product, Issuer: c.Issuer,
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), Subject: cert.Subject.String(),
		DNSNames: cert.DNSNames, EmailAddresses: cert.EmailAddresses, ApplicationID: c.ApplicationID,
		PEM:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})),
		Links: map[string]string{"revocation": "/v1/certificates/" + c.Serial + "/revocation", "application": "/v1/applications/" + c.ApplicationID},
	}
	resp.CTState = ctStates[c.CTState]
	if c.CTState == store.CTFinal {
		rows, err := s.st.ListSCTs(r.Context(), c.Serial)
		if err != nil {
			s.internalError(w, r, "read SCTs", err)
			return
		}
		for _, row := range rows {
			sr := sctResponse{LogID: base64.StdEncoding.EncodeToString(row.LogID), Timestamp: row.Timestamp.UTC(), SCT: row.Raw}
			if idx, ok := ct.LeafIndex(ct.SCT{Raw: row.Raw}); ok {
				sr.LeafIndex = &idx
			}
			resp.SCTs = append(resp.SCTs, sr)
		}
	}
	if c.Status == status.CertRevoked {
		if ref, err := s.st.GetCertificateRef(r.Context(), serial); err == nil && ref.RevokedAt != nil {
			at := ref.RevokedAt.UTC()
			resp.RevokedAt = &at
			if ref.ReasonCode != nil {
				resp.RevocationReason = revocation.NameOf(*ref.ReasonCode)
			}
		}
	}
	if items := personalItems(c.Product, cert); len(items) > 0 {
		rid, _ := r.Context().Value(ctxRequestID).(string)
		if err := s.st.RecordProvision(r.Context(), store.Provision{
			ID:            "api:" + rid + ":certificate:" + c.Serial,
			ProvidedAt:    s.now(),
			RecipientKind: "reseller",
			RecipientRef:  resellerOf(r),
			PersonRef:     c.SubscriberID,
			DataItems:     items,
			LegalBasis:    LegalBasisEntrustment,
			ContextRef:    "GET /v1/certificates/" + c.Serial + " (request " + rid + ")",
		}); err != nil {
			// No record, no data (O7).
			s.internalError(w, r, "record provision", err)
			return
		}
		resp.PersonalDataNotes = "this answer contains the subscriber's personal data; its provision to you has been recorded (APPI Art. 27(5)(i))"
	}
	writeJSON(w, http.StatusOK, resp)
}

// personalItems lists the personal data a certificate carries: a
// client-sign certificate names a person (and an email address); TLS
// certificates name domains and, for OV, a legal entity.
func personalItems(prod string, c *x509.Certificate) []string {
	if !product.Client(prod) {
		return nil
	}
	items := []string{"certificate"}
	if c.Subject.CommonName != "" {
		items = append(items, "name")
	}
	if len(c.Subject.Organization) > 0 {
		items = append(items, "organization")
	}
	if len(c.Subject.Country) > 0 {
		items = append(items, "country")
	}
	if len(c.EmailAddresses) > 0 {
		items = append(items, "email")
	}
	return items
}

type revocationResponse struct {
	WorkflowID string    `json:"workflow_id"`
	Serial     string    `json:"serial"`
	Reason     string    `json:"reason"`
	Status     string    `json:"status"`
	Deadline   time.Time `json:"deadline"`
}

// revokeByReseller starts (or joins) the revocation of a certificate the
// reseller manages.
func (s *Server) revokeByReseller(w http.ResponseWriter, r *http.Request) {
	var req revocationRequest
	if !s.decodeValid(w, r, &req) {
		return
	}
	ref, ok := s.ownCertificate(w, r)
	if !ok {
		return
	}
	s.startRevocation(w, r, workflows.RevocationInput{
		Serial: ref.Serial, Reason: req.Reason, Comment: req.Comment,
		Requester: workflows.Requester{Kind: workflows.RequesterReseller, ID: resellerOf(r)},
	}, ref.ResellerID)
}

// startRevocation signal-with-starts revocation/<serial>: a running case
// gets the request as a signal, otherwise a new case starts with it.
func (s *Server) startRevocation(w http.ResponseWriter, r *http.Request, in workflows.RevocationInput, resellerID string) {
	if _, _, err := workflows.RevocationPolicy(in.Reason, in.Requester.Kind, in.Ground); err != nil {
		var v api.Validation
		v.Add("reason", "one_of", err.Error())
		s.problem(w, r, v.Problem())
		return
	}
	res, err := s.signalRevocation(r, in, resellerID)
	if err != nil {
		s.temporalError(w, r, "start revocation", err)
		return
	}
	w.Header().Set("Location", "/v1/certificates/"+in.Serial)
	writeJSON(w, http.StatusAccepted, res)
}

// signalRevocation starts the revocation case of in.Serial, or joins the
// running one (signal-with-start); the caller has checked the reason.
func (s *Server) signalRevocation(r *http.Request, in workflows.RevocationInput, resellerID string) (revocationResponse, error) {
	now := s.now().UTC().Truncate(time.Second)
	in.RequestedAt = now
	_, deadline, err := workflows.RevocationPolicy(in.Reason, in.Requester.Kind, in.Ground)
	if err != nil {
		return revocationResponse{}, err
	}
	wid := workflows.RevocationWorkflowID(in.Serial)
	attrs := []temporal.SearchAttributeUpdate{
		cases.CaseType.ValueSet(cases.TypeRevocation),
		cases.CaseStatus.ValueSet(workflows.RevRequested),
		cases.CertificateSerial.ValueSet(in.Serial),
		cases.DueAt.ValueSet(now.Add(deadline)),
	}
	if resellerID != "" {
		attrs = append(attrs, cases.ResellerID.ValueSet(resellerID))
	}
	_, err = s.tc.SignalWithStartWorkflow(r.Context(), wid, workflows.RequestSignal, in, client.StartWorkflowOptions{
		ID:            wid,
		TaskQueue:     workflows.TaskQueue,
		StaticSummary: fmt.Sprintf("Revocation of %s (%s), requested by %s", in.Serial, in.Reason, in.Requester.Kind),
		StaticDetails: fmt.Sprintf("Serial: %s\nReason: %s\nRequester: %s %s\nDeadline (BR 4.9.1.1): %s\nReceived through the API (request %s).",
			in.Serial, in.Reason, in.Requester.Kind, in.Requester.ID, now.Add(deadline).Format(time.RFC3339), r.Context().Value(ctxRequestID)),
		TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
	}, workflows.Revocation, in)
	if err != nil {
		return revocationResponse{}, err
	}
	return revocationResponse{WorkflowID: wid, Serial: in.Serial, Reason: in.Reason,
		Status: workflows.RevRequested, Deadline: now.Add(deadline)}, nil
}

type correctionAccepted struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	Serial     string `json:"serial"`
	Status     string `json:"status"`
}

// createCorrection starts correction/<id> for a certificate the reseller
// manages (O5). Field names and values are checked here for shape; the
// workflow decides what each change means (contact-only: applied; printed
// in the certificate: revocation and a new application) and refuses
// changes it cannot make, with a reason the reseller reads in the case.
func (s *Server) createCorrection(w http.ResponseWriter, r *http.Request) {
	var req correctionRequest
	if !s.decodeValid(w, r, &req) {
		return
	}
	ref, ok := s.ownCertificate(w, r)
	if !ok {
		return
	}
	fields := make([]string, 0, len(req.Changes))
	for k := range req.Changes {
		fields = append(fields, k)
	}
	sort.Strings(fields)
	id := "corr_" + randomID(10)
	wid := workflows.CorrectionWorkflowID(id)
	_, err := s.tc.ExecuteWorkflow(r.Context(), client.StartWorkflowOptions{
		ID:                       wid,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            fmt.Sprintf("Correction %s of certificate %s for reseller %s", id, ref.Serial, ref.ResellerID),
		StaticDetails: fmt.Sprintf("Certificate: %s (%s)\nReseller: %s\nFields: %s\nReceived through the reseller API (request %s).",
			ref.Serial, ref.Product, ref.ResellerID, strings.Join(fields, ", "), requestIDOf(r)),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			cases.CaseType.ValueSet(cases.TypeCorrection),
			cases.CaseStatus.ValueSet(workflows.CorrReceived),
			cases.ResellerID.ValueSet(ref.ResellerID),
			cases.CertificateSerial.ValueSet(ref.Serial),
		),
	}, workflows.Correction, workflows.CorrectionInput{
		CorrectionID: id, Serial: ref.Serial, ResellerID: ref.ResellerID, Changes: req.Changes, Reason: req.Reason,
	})
	if err != nil {
		s.temporalError(w, r, "start correction", err)
		return
	}
	writeJSON(w, http.StatusAccepted, correctionAccepted{ID: id, WorkflowID: wid, Serial: ref.Serial, Status: workflows.CorrReceived})
}

// ownCertificate reads the certificate named in the path if the calling
// reseller manages it; otherwise it has answered 404 (another reseller's
// certificate is not found, never forbidden) or 500 and returns false.
func (s *Server) ownCertificate(w http.ResponseWriter, r *http.Request) (store.CertificateRef, bool) {
	serial, ok := serialParam(r)
	if !ok {
		s.notFound(w, r, "certificate")
		return store.CertificateRef{}, false
	}
	ref, err := s.st.GetCertificateRef(r.Context(), serial)
	if errors.Is(err, store.ErrNotFound) || (err == nil && ref.ResellerID != resellerOf(r)) {
		s.notFound(w, r, "certificate")
		return store.CertificateRef{}, false
	}
	if err != nil {
		s.internalError(w, r, "read certificate", err)
		return store.CertificateRef{}, false
	}
	return ref, true
}
