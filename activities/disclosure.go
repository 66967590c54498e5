package activities

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"html/template"
	"regexp"
	"sort"
	"strings"
	"time"

	"certdesk/internal/mailer"
	"certdesk/internal/store"
)

// DisclosureRequestInput is a disclosure request as received (O6).
type DisclosureRequestInput struct {
	RequestID     string
	Name          string
	Email         string
	PostalAddress string
	Delivery      string // electronic or paper
	ReceivedAt    time.Time
	DueAt         time.Time
	WorkflowID    string
}

// RecordDisclosureRequest stores the request (personal data encrypted) and
// audits its receipt. Idempotent by request id.
func (a *Activities) RecordDisclosureRequest(ctx context.Context, in DisclosureRequestInput) error {
	if err := a.Store.CreateDisclosureRequest(ctx, store.DisclosureRequest{
		ID: in.RequestID, Name: in.Name, Email: in.Email, PostalAddress: in.PostalAddress,
		ReceivedAt: in.ReceivedAt, DueAt: in.DueAt, DeliveryMethod: in.Delivery, WorkflowID: in.WorkflowID,
	}); err != nil {
		return storeErr(err, "disclosure request "+in.RequestID)
	}
	return a.audit(ctx, "system", "disclosure.received", "disclosure:"+in.RequestID,
		map[string]any{"delivery": in.Delivery, "due_at": in.DueAt.UTC().Format(time.RFC3339)})
}

// DisclosureStateInput moves a request.
type DisclosureStateInput struct {
	RequestID      string
	State          string // received, verifying_identity, compiling, delivering, delivered, closed
	Reason         string // no personal data
	VerificationID string
	Actor          string // audit actor; default system
}

// SetDisclosureState records the state (absolute: retry-safe) and audits it.
func (a *Activities) SetDisclosureState(ctx context.Context, in DisclosureStateInput) error {
	if in.VerificationID != "" {
		if err := a.Store.SetDisclosureVerification(ctx, in.RequestID, in.VerificationID); err != nil {
			return storeErr(err, "disclosure request "+in.RequestID)
		}
	}
	if err := a.Store.SetDisclosureState(ctx, in.RequestID, in.State, in.Reason); err != nil {
		return storeErr(err, "disclosure request "+in.RequestID)
	}
	actor := in.Actor
	if actor == "" {
		actor = "system"
	}
	return a.audit(ctx, actor, "disclosure."+in.State, "disclosure:"+in.RequestID, map[string]any{"reason": in.Reason})
}

// DisclosurePauseInput stops or restarts the O6 clock.
type DisclosurePauseInput struct {
	RequestID string
	Reviewer  string
	Reason    string    // pause: why the requester is waited for; no personal data
	At        time.Time // pause: when the clock stopped
	DueAt     time.Time // resume: the due time moved by the paused time
	PausedFor time.Duration
}

// PauseDisclosure stops the clock while waiting for the requester (e.g. for
// identity documents), keeps the reason on the request and audits it.
func (a *Activities) PauseDisclosure(ctx context.Context, in DisclosurePauseInput) error {
	if err := a.Store.PauseDisclosure(ctx, in.RequestID, in.Reason, in.At); err != nil {
		return storeErr(err, "disclosure request "+in.RequestID)
	}
	return a.audit(ctx, actorOf(in.Reviewer), "disclosure.paused", "disclosure:"+in.RequestID,
		map[string]any{"reason": in.Reason, "at": in.At.UTC().Format(time.RFC3339)})
}

// ResumeDisclosure restarts the clock with the due time extended.
func (a *Activities) ResumeDisclosure(ctx context.Context, in DisclosurePauseInput) error {
	if err := a.Store.ResumeDisclosure(ctx, in.RequestID, in.DueAt); err != nil {
		return storeErr(err, "disclosure request "+in.RequestID)
	}
	return a.audit(ctx, actorOf(in.Reviewer), "disclosure.resumed", "disclosure:"+in.RequestID,
		map[string]any{"due_at": in.DueAt.UTC().Format(time.RFC3339), "paused_seconds": int64(in.PausedFor / time.Second)})
}

// CompileDisclosureInput names the request to answer.
type CompileDisclosureInput struct {
	RequestID string
	// ExcludeKeyPrefixes leaves out the emails of this very request (the
	// one-time code): they are not data held before it.
	ExcludeKeyPrefixes []string
}

// CompileDisclosureResult describes the draft without its content.
type CompileDisclosureResult struct {
	SHA256      string         // digest of the package JSON, what the CA signs
	NothingHeld bool           // no retained personal data about the requester
	Counts      map[string]int // records per category
	DataItems   []string       // the categories disclosed (for the provision ledger)
	PersonRefs  []string       // subscriber ids found (or the email reference)
}

// Disclosure package categories.
const (
	ItemSubscribers         = "subscriber_records"
	ItemApplications        = "applications"
	ItemCertificates        = "certificates"
	ItemCorrections         = "corrections"
	ItemRevocations         = "revocations"
	ItemEmails              = "emails"
	ItemProvisions          = "third_party_provisions"
	ItemStaffAccess         = "staff_access"
	ItemInquiries           = "inquiries"
	ItemDisclosureRequests  = "previous_disclosure_requests"
	DisclosureFormat        = "certdesk-disclosure/1"
	disclosureController    = "CertDesk Certification Authority (CertDesk 認証局)"
	disclosureLegalBasis    = "APPI Art. 33 (個人情報の保護に関する法律第33条)"
	DisclosureProvisionNote = "APPI Art. 33: disclosure to the data subject at their request (個人情報の保護に関する法律第33条に基づく本人への開示)"
)

// DisclosurePackage is the JSON document a requester receives. Every list
// is present (possibly empty) so the absence of a category is explicit.
type DisclosurePackage struct {
	Format      string    `json:"format"`
	RequestID   string    `json:"request_id"`
	ReceivedAt  time.Time `json:"received_at"`
	CompiledAt  time.Time `json:"compiled_at"`
	Controller  string    `json:"controller"`
	LegalBasis  string    `json:"legal_basis"`
	NothingHeld bool      `json:"nothing_held"`
	StatementJA string    `json:"statement_ja"`
	StatementEN string    `json:"statement_en"`

	Subscribers          []DisclosedSubscriber  `json:"subscriber_records"`
	Applications         []DisclosedApplication `json:"applications"`
	Certificates         []DisclosedCertificate `json:"certificates"`
	Corrections          []DisclosedCorrection  `json:"corrections"`
	Revocations          []DisclosedRevocation  `json:"revocations"`
	Emails               []DisclosedEmail       `json:"emails"`
	ThirdPartyProvisions []DisclosedProvision   `json:"third_party_provisions"`
	StaffAccess          []DisclosedAccess      `json:"staff_access"`
	Inquiries            []DisclosedInquiry     `json:"inquiries"`
	DisclosureRequests   []DisclosedRequest     `json:"previous_disclosure_requests"`
}

// DisclosedSubscriber is one subscriber record.
type DisclosedSubscriber struct {
	ID           string    `json:"id"`
	ResellerID   string    `json:"reseller_id"`
	Organization string    `json:"organization,omitempty"`
	Name         string    `json:"name"`
	Email        string    `json:"email"`
	Phone        string    `json:"phone,omitempty"`
	Address      string    `json:"address,omitempty"`
	Country      string    `json:"country,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// DisclosedApplication is one certificate application.
type DisclosedApplication struct {
	ID                 string     `json:"id"`
	SubscriberID       string     `json:"subscriber_id"`
	ResellerID         string     `json:"reseller_id"`
	Product            string     `json:"product"`
	Domains            []string   `json:"domains"`
	ValidityDays       int        `json:"validity_days"`
	TermsVersion       string     `json:"terms_version"`
	AttestedAt         time.Time  `json:"attested_at"`
	Status             string     `json:"status"`
	StatusReason       string     `json:"status_reason,omitempty"`
	CertificateSerial  string     `json:"certificate_serial,omitempty"`
	VerificationMethod string     `json:"verification_method,omitempty"`
	VerificationResult string     `json:"verification_result,omitempty"`
	VerifiedAt         *time.Time `json:"verification_decided_at,omitempty"`
	CSRPEM             string     `json:"csr_pem"`
	CreatedAt          time.Time  `json:"created_at"`
}

// DisclosedCertificate is one certificate.
type DisclosedCertificate struct {
	Serial         string     `json:"serial"`
	SubscriberID   string     `json:"subscriber_id"`
	Issuer         string     `json:"issuer"`
	Product        string     `json:"product"`
	Status         string     `json:"status"`
	NotBefore      time.Time  `json:"not_before"`
	NotAfter       time.Time  `json:"not_after"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	CertificatePEM string     `json:"certificate_pem"`
}

// DisclosedCorrection is one correction of a certificate's data.
type DisclosedCorrection struct {
	ID               string            `json:"id"`
	Serial           string            `json:"serial"`
	ResellerID       string            `json:"reseller_id"`
	OldValues        map[string]string `json:"old_values"`
	NewValues        map[string]string `json:"new_values"`
	Classification   string            `json:"classification"`
	Status           string            `json:"status"`
	RevocationSerial string            `json:"revocation_serial,omitempty"`
	NewApplicationID string            `json:"new_application_id,omitempty"`
	CreatedAt        time.Time         `json:"created_at"`
}

// DisclosedRevocation is one revocation (or open request).
type DisclosedRevocation struct {
	Serial          string     `json:"serial"`
	ReasonCode      int        `json:"reason_code"`
	Reason          string     `json:"reason"`
	RequestedByKind string     `json:"requested_by_kind"`
	RequestedAt     time.Time  `json:"requested_at"`
	RevokedAt       *time.Time `json:"revoked_at,omitempty"`
}

// DisclosedEmail is one notice sent (or attempted) to the person.
type DisclosedEmail struct {
	Notice    string     `json:"notice"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
}

// DisclosedProvision is one provision to a third party (O7).
type DisclosedProvision struct {
	ID            string    `json:"id"`
	ProvidedAt    time.Time `json:"provided_at"`
	RecipientKind string    `json:"recipient_kind"`
	RecipientRef  string    `json:"recipient"`
	PersonRef     string    `json:"person_ref"`
	DataItems     []string  `json:"data_items"`
	LegalBasis    string    `json:"legal_basis"`
}

// DisclosedAccess is one access by staff to the person's data (O8).
type DisclosedAccess struct {
	StaffID    string    `json:"staff_id"`
	PersonRef  string    `json:"person_ref"`
	Purpose    string    `json:"purpose"`
	Channel    string    `json:"channel"`
	AccessedAt time.Time `json:"accessed_at"`
}

// DisclosedInquiry is one inquiry, complaint or stop request.
type DisclosedInquiry struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	Body       string     `json:"body"`
	Status     string     `json:"status"`
	Answer     string     `json:"answer,omitempty"`
	StopStatus string     `json:"stop_status,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
}

// DisclosedRequest is an earlier disclosure request.
type DisclosedRequest struct {
	ID          string     `json:"id"`
	Name        string     `json:"name,omitempty"`
	Delivery    string     `json:"delivery_method"`
	State       string     `json:"state"`
	ReceivedAt  time.Time  `json:"received_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
}

var revocationReasonNames = map[int]string{0: "unspecified", 1: "keyCompromise", 3: "affiliationChanged",
	4: "superseded", 5: "cessationOfOperation", 9: "privilegeWithdrawn"}

// CompileDisclosure gathers everything held about the person whose address
// the request gives (found through the blind index: several subscriber
// records may hold it), renders it as JSON and HTML and stores the draft
// for the signer. Insert-once: a retry returns the first draft's digest.
func (a *Activities) CompileDisclosure(ctx context.Context, in CompileDisclosureInput) (CompileDisclosureResult, error) {
	req, err := a.Store.GetDisclosureRequest(ctx, in.RequestID)
	if err != nil {
		return CompileDisclosureResult{}, storeErr(err, "disclosure request "+in.RequestID)
	}
	pkg, personRefs, err := a.compileDisclosure(ctx, req, in.ExcludeKeyPrefixes)
	if err != nil {
		return CompileDisclosureResult{}, err
	}
	jsonDoc, err := MarshalDisclosure(pkg)
	if err != nil {
		return CompileDisclosureResult{}, nonRetryable(ErrTypeInvalid, "disclosure package: "+err.Error(), nil)
	}
	html, err := RenderDisclosureHTML(pkg)
	if err != nil {
		return CompileDisclosureResult{}, nonRetryable(ErrTypeInvalid, "disclosure package: "+err.Error(), nil)
	}
	digest, err := a.Store.SaveDisclosureDraft(ctx, in.RequestID, jsonDoc, html)
	if err != nil {
		return CompileDisclosureResult{}, storeErr(err, "disclosure draft "+in.RequestID)
	}
	res := CompileDisclosureResult{SHA256: digest, NothingHeld: pkg.NothingHeld, Counts: pkg.counts(), PersonRefs: personRefs}
	for item, n := range res.Counts {
		if n > 0 {
			res.DataItems = append(res.DataItems, item)
		}
	}
	sort.Strings(res.DataItems)
	if err := a.audit(ctx, "system", "disclosure.compiled", "disclosure:"+in.RequestID,
		map[string]any{"sha256": digest, "counts": res.Counts}); err != nil {
		return CompileDisclosureResult{}, err
	}
	return res, nil
}

func (p *DisclosurePackage) counts() map[string]int {
	return map[string]int{
		ItemSubscribers: len(p.Subscribers), ItemApplications: len(p.Applications), ItemCertificates: len(p.Certificates),
		ItemCorrections: len(p.Corrections), ItemRevocations: len(p.Revocations), ItemEmails: len(p.Emails),
		ItemProvisions: len(p.ThirdPartyProvisions), ItemStaffAccess: len(p.StaffAccess), ItemInquiries: len(p.Inquiries),
		ItemDisclosureRequests: len(p.DisclosureRequests),
	}
}

func (a *Activities) compileDisclosure(ctx context.Context, req store.DisclosureRequest, exclude []string) (*DisclosurePackage, []string, error) {
	p := &DisclosurePackage{Format: DisclosureFormat, RequestID: req.ID, ReceivedAt: req.ReceivedAt.UTC(),
		CompiledAt: time.Now().UTC().Truncate(time.Second), Controller: disclosureController, LegalBasis: disclosureLegalBasis,
		Subscribers: []DisclosedSubscriber{}, Applications: []DisclosedApplication{}, Certificates: []DisclosedCertificate{},
		Corrections: []DisclosedCorrection{}, Revocations: []DisclosedRevocation{}, Emails: []DisclosedEmail{},
		ThirdPartyProvisions: []DisclosedProvision{}, StaffAccess: []DisclosedAccess{}, Inquiries: []DisclosedInquiry{},
		DisclosureRequests: []DisclosedRequest{}}
	emailRef := "email-bidx:" + hex.EncodeToString(a.BlindIndex.Email(req.Email))
	subs, err := a.Store.FindSubscribersByEmail(ctx, req.Email)
	if err != nil {
		return nil, nil, err
	}
	refs := []string{emailRef}
	var personRefs []string
	for _, s := range subs {
		refs = append(refs, "subscriber:"+s.ID)
		personRefs = append(personRefs, s.ID)
		p.Subscribers = append(p.Subscribers, DisclosedSubscriber{ID: s.ID, ResellerID: s.ResellerID, Organization: s.Organization,
			Name: s.Name, Email: s.Email, Phone: s.Phone, Address: s.Address, Country: s.Country,
			CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC()})
		if err := a.discloseSubscriber(ctx, p, s.ID); err != nil {
			return nil, nil, err
		}
	}

	emails, err := a.Store.ListEmailsByRecipient(ctx, refs...)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range emails {
		if hasAnyPrefix(e.IdempotencyKey, exclude) {
			continue
		}
		p.Emails = append(p.Emails, DisclosedEmail{Notice: e.Notice, Status: e.Status, CreatedAt: e.CreatedAt.UTC(), SentAt: utcPtr(e.SentAt)})
	}
	inqs, err := a.Store.ListInquiriesByEmail(ctx, req.Email)
	if err != nil {
		return nil, nil, err
	}
	for _, q := range inqs {
		d := DisclosedInquiry{ID: q.ID, Kind: q.Kind, Body: q.Body, Status: q.Status, Answer: q.Answer,
			CreatedAt: q.CreatedAt.UTC(), AnsweredAt: utcPtr(q.AnsweredAt)}
		if q.Kind == "stop_provision" {
			if st, err := a.Store.GetProvisionStop(ctx, q.ID); err == nil {
				d.StopStatus = st.Status
			}
		}
		p.Inquiries = append(p.Inquiries, d)
	}
	prev, err := a.Store.ListDisclosureRequestsByEmail(ctx, req.Email, req.ID)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range prev {
		p.DisclosureRequests = append(p.DisclosureRequests, DisclosedRequest{ID: r.ID, Name: r.Name, Delivery: r.DeliveryMethod,
			State: r.State, ReceivedAt: r.ReceivedAt.UTC(), DeliveredAt: utcPtr(r.DeliveredAt)})
	}

	total := 0
	for _, n := range p.counts() {
		total += n
	}
	p.NothingHeld = total == 0
	if p.NothingHeld {
		p.StatementJA = "当局は、ご請求者様ご本人に関する保有個人データを保有しておりません（個人情報の保護に関する法律第33条に基づく回答）。"
		p.StatementEN = "CertDesk holds no retained personal data about the requester (answer under Article 33 of the Act on the Protection of Personal Information)."
		personRefs = nil
	} else {
		p.StatementJA = "本書は、個人情報の保護に関する法律第33条に基づき、ご請求者様ご本人に関して当局が保有する個人データの全てを開示するものです。"
		p.StatementEN = "This package discloses all personal data CertDesk holds about the requester, under Article 33 of the Act on the Protection of Personal Information."
		if len(personRefs) == 0 {
			personRefs = []string{emailRef}
		}
	}
	return p, personRefs, nil
}

// discloseSubscriber adds what hangs off one subscriber record.
func (a *Activities) discloseSubscriber(ctx context.Context, p *DisclosurePackage, subID string) error {
	apps, err := a.Store.ListApplicationsBySubscriber(ctx, subID)
	if err != nil {
		return err
	}
	for _, ap := range apps {
		d := DisclosedApplication{ID: ap.ID, SubscriberID: subID, ResellerID: ap.ResellerID, Product: ap.Product,
			Domains: append([]string{}, ap.Domains...), ValidityDays: ap.ValidityDays, TermsVersion: ap.AttestationTermsVersion,
			AttestedAt: ap.AttestedAt.UTC(), Status: ap.Status, StatusReason: ap.StatusReason, CertificateSerial: ap.CertificateSerial,
			CSRPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: ap.CSR})), CreatedAt: ap.CreatedAt.UTC()}
		if ap.VerificationID != "" {
			if v, err := a.Store.GetVerification(ctx, ap.VerificationID); err == nil {
				d.VerificationMethod, d.VerificationResult, d.VerifiedAt = v.Method, v.Result, utcPtr(v.DecidedAt)
			}
		}
		p.Applications = append(p.Applications, d)
	}
	certs, err := a.Store.ListCertificatesBySubscriber(ctx, subID)
	if err != nil {
		return err
	}
	for _, ref := range certs {
		c, err := a.Store.GetCertificate(ctx, ref.Serial)
		if err != nil {
			return storeErr(err, "certificate "+ref.Serial)
		}
		p.Certificates = append(p.Certificates, DisclosedCertificate{Serial: c.Serial, SubscriberID: subID, Issuer: c.Issuer,
			Product: c.Product, Status: c.Status, NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), RevokedAt: utcPtr(ref.RevokedAt),
			CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))})
		r, err := a.Store.GetRevocation(ctx, c.Serial)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		p.Revocations = append(p.Revocations, DisclosedRevocation{Serial: r.Serial, ReasonCode: r.ReasonCode,
			Reason: revocationReasonNames[r.ReasonCode], RequestedByKind: r.RequestedByKind, RequestedAt: r.RequestedAt.UTC(),
			RevokedAt: utcPtr(r.RevokedAt)})
	}
	corrs, err := a.Store.ListCorrectionsBySubscriber(ctx, subID)
	if err != nil {
		return err
	}
	for _, c := range corrs {
		p.Corrections = append(p.Corrections, DisclosedCorrection{ID: c.ID, Serial: c.Serial, ResellerID: c.ResellerID,
			OldValues: c.OldValues, NewValues: c.NewValues, Classification: c.Classification, Status: c.Status,
			RevocationSerial: c.RevocationSerial, NewApplicationID: c.NewApplicationID, CreatedAt: c.CreatedAt.UTC()})
	}
	provs, err := a.Store.ListProvisionsByPerson(ctx, subID)
	if err != nil {
		return err
	}
	for _, pr := range provs {
		p.ThirdPartyProvisions = append(p.ThirdPartyProvisions, DisclosedProvision{ID: pr.ID, ProvidedAt: pr.ProvidedAt.UTC(),
			RecipientKind: pr.RecipientKind, RecipientRef: pr.RecipientRef, PersonRef: pr.PersonRef,
			DataItems: append([]string{}, pr.DataItems...), LegalBasis: pr.LegalBasis})
	}
	acc, err := a.Store.ListStaffAccessByPerson(ctx, subID)
	if err != nil {
		return err
	}
	for _, x := range acc {
		p.StaffAccess = append(p.StaffAccess, DisclosedAccess{StaffID: x.StaffID, PersonRef: x.PersonRef, Purpose: x.Purpose,
			Channel: x.Channel, AccessedAt: x.AccessedAt.UTC()})
	}
	return nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// MarshalDisclosure is the package's JSON form: indented, HTML characters
// not escaped, a final newline. These bytes are what the CA signs.
func MarshalDisclosure(p *DisclosurePackage) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var disclosureHTML = template.Must(template.New("disclosure").Funcs(template.FuncMap{
	"t": func(t time.Time) string { return t.In(mailer.JST).Format("2006-01-02 15:04 MST") },
	"tp": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.In(mailer.JST).Format("2006-01-02 15:04 MST")
	},
	"join": func(v []string) string { return strings.Join(v, ", ") },
	"kv": func(m map[string]string) string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + m[k]
		}
		return strings.Join(parts, " / ")
	},
}).Parse(`<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8">
<title>保有個人データの開示 / Disclosure of retained personal data — {{.RequestID}}</title>
<style>body{font-family:sans-serif;margin:2em;line-height:1.5}table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top;font-size:90%}th{background:#eee}
pre{white-space:pre-wrap;font-size:75%}</style></head><body>
<h1>保有個人データの開示<br><small>Disclosure of retained personal data</small></h1>
<p>受付番号 / Request ID: <b>{{.RequestID}}</b><br>
受付日時 / Received: {{t .ReceivedAt}}<br>
作成日時 / Compiled: {{t .CompiledAt}}<br>
個人情報取扱事業者 / Controller: {{.Controller}}<br>
根拠 / Legal basis: {{.LegalBasis}}</p>
<p>{{.StatementJA}}<br>{{.StatementEN}}</p>
<p>この要約は同梱の JSON（package.json）を読みやすくしたものです。JSON には当局の電子署名（CMS 分離署名）が付されており、次のコマンドで改ざんのないことを確認できます。<br>
This summary renders the enclosed JSON (package.json), which carries CertDesk's detached CMS signature. Check it with:<br>
<code>openssl cms -verify -binary -inform DER -in package.json.p7s -content package.json -CAfile root.pem -purpose any</code></p>
{{if not .NothingHeld}}
<h2>加入者情報 / Subscriber records ({{len .Subscribers}})</h2>
{{if .Subscribers}}<table><tr><th>ID</th><th>指定事業者 / Reseller</th><th>組織名 / Organisation</th><th>氏名 / Name</th><th>メール / Email</th><th>電話 / Phone</th><th>住所 / Address</th><th>国 / Country</th><th>登録 / Created</th><th>更新 / Updated</th></tr>
{{range .Subscribers}}<tr><td>{{.ID}}</td><td>{{.ResellerID}}</td><td>{{.Organization}}</td><td>{{.Name}}</td><td>{{.Email}}</td><td>{{.Phone}}</td><td>{{.Address}}</td><td>{{.Country}}</td><td>{{t .CreatedAt}}</td><td>{{t .UpdatedAt}}</td></tr>
{{end}}</table>{{else}}<p>なし / None</p>{{end}}
<h2>申請 / Applications ({{len .Applications}})</h2>
{{if .Applications}}<table><tr><th>ID</th><th>商品 / Product</th><th>ドメイン / Domains</th><th>状態 / Status</th><th>規約版 / Terms</th><th>本人確認 / Verification</th><th>証明書 / Certificate</th><th>受付 / Received</th></tr>
{{range .Applications}}<tr><td>{{.ID}}</td><td>{{.Product}}</td><td>{{join .Domains}}</td><td>{{.Status}} {{.StatusReason}}</td><td>{{.TermsVersion}}</td><td>{{.VerificationMethod}} {{.VerificationResult}}</td><td>{{.CertificateSerial}}</td><td>{{t .CreatedAt}}</td></tr>
{{end}}</table>{{else}}<p>なし / None</p>{{end}}
<h2>証明書 / Certificates ({{len .Certificates}})</h2>
{{if .Certificates}}<table><tr><th>シリアル番号 / Serial</th><th>商品 / Product</th><th>状態 / Status</th><th>有効期間 / Validity</th><th>取消 / Revoked</th></tr>
{{range .Certificates}}<tr><td>{{.Serial}}</td><td>{{.Product}}</td><td>{{.Status}}</td><td>{{t .NotBefore}} – {{t .NotAfter}}</td><td>{{tp .RevokedAt}}</td></tr>
{{end}}</table>{{else}}<p>なし / None</p>{{end}}
<h2>訂正 / Corrections ({{len .Corrections}})</h2>
{{if .Corrections}}<table><tr><th>ID</th><th>証明書 / Certificate</th><th>訂正前 / Before</th><th>訂正後 / After</th><th>状態 / Status</th><th>受付 / Received</th></tr>
{{range .Corrections}}<tr><td>{{.ID}}</td><td>{{.Serial}}</td><td>{{kv .OldValues}}</td><td>{{kv .NewValues}}</td><td>{{.Status}}</td><td>{{t .CreatedAt}}</td></tr>
{{end}}</table>{{else}}<p>なし / None</p>{{end}}
<h2>取消 / Revocations ({{len .Revocations}})</h2>
{{if .Revocations}}<table><tr><th>シリアル番号 / Serial</th><th>理由 / Reason</th><th>請求者 / Requested by</th><th>請求 / Requested</th><th>取消 / Revoked</th></tr>
{{range .Revocations}}<tr><td>{{.Serial}}</td><td>{{.Reason}} ({{.ReasonCode}})</td><td>{{.RequestedByKind}}</td><td>{{t .RequestedAt}}</td><td>{{tp .RevokedAt}}</td></tr>
{{end}}</table>{{else}}<p>なし / None</p>{{end}}
<h2>送信したメール / Emails sent ({{len .Emails}})</h2>
{{if .Emails}}<table><tr><th>通知 / Notice</th><th>状態 / Status</th><th>作成 / Created</th><th>送信 / Sent</th></tr>
{{range .Emails}}<tr><td>{{.Notice}}</td><td>{{.Status}}</td><td>{{t .CreatedAt}}</td><td>{{tp .SentAt}}</td></tr>
{{end}}</table>{{else}}<p>なし / None</p>{{end}}
<h2>第三者提供の記録 / Records of provision to third parties ({{len .ThirdPartyProvisions}})</h2>
{{if .ThirdPartyProvisions}}<table><tr><th>提供日時 / Provided</th><th>提供先 / Recipient</th><th>項目 / Data items</th><th>根拠 / Legal basis</th></tr>
{{range .ThirdPartyProvisions}}<tr><td>{{t .ProvidedAt}}</td><td>{{.RecipientKind}}: {{.RecipientRef}}</td><td>{{join .DataItems}}</td><td>{{.LegalBasis}}</td></tr>
{{end}}</table>{{else}}<p>なし / None</p>{{end}}
<h2>従業者によるアクセス / Staff access ({{len .StaffAccess}})</h2>
{{if .StaffAccess}}<table><tr><th>日時 / When</th><th>担当者 / Staff</th><th>目的 / Purpose</th><th>経路 / Channel</th></tr>
{{range .StaffAccess}}<tr><td>{{t .AccessedAt}}</td><td>{{.StaffID}}</td><td>{{.Purpose}}</td><td>{{.Channel}}</td></tr>
{{end}}</table>{{else}}<p>なし / None</p>{{end}}
<h2>お問い合わせ・苦情・提供停止の請求 / Inquiries, complaints and stop requests ({{len .Inquiries}})</h2>
{{if .Inquiries}}<table><tr><th>ID</th><th>種別 / Kind</th><th>内容 / Text</th><th>回答 / Answer</th><th>状態 / Status</th><th>受付 / Received</th></tr>
{{range .Inquiries}}<tr><td>{{.ID}}</td><td>{{.Kind}}</td><td>{{.Body}}</td><td>{{.Answer}}</td><td>{{.Status}} {{.StopStatus}}</td><td>{{t .CreatedAt}}</td></tr>
{{end}}</table>{{else}}<p>なし / None</p>{{end}}
<h2>過去の開示請求 / Earlier disclosure requests ({{len .DisclosureRequests}})</h2>
{{if .DisclosureRequests}}<table><tr><th>ID</th><th>受付 / Received</th><th>方法 / Delivery</th><th>状態 / State</th></tr>
{{range .DisclosureRequests}}<tr><td>{{.ID}}</td><td>{{t .ReceivedAt}}</td><td>{{.Delivery}}</td><td>{{.State}}</td></tr>
{{end}}</table>{{else}}<p>なし / None</p>{{end}}
{{end}}
</body></html>
`))

// RenderDisclosureHTML is the readable summary (Japanese first, English
// too) of a package.
func RenderDisclosureHTML(p *DisclosurePackage) ([]byte, error) {
	var b bytes.Buffer
	if err := disclosureHTML.Execute(&b, p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ArmLinkInput arms a request's download link. Only the token's hash comes
// here; the token itself goes only into the email to the requester.
type ArmLinkInput struct {
	RequestID string
	TokenHash string // store.HashLinkToken(token)
	ExpiresAt time.Time
	Downloads int
}

// ArmLinkResult tells the workflow where downloads are served.
type ArmLinkResult struct {
	DownloadBaseURL string // the token is appended
}

var tokenHashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ArmDisclosureLink stores the link's token hash, expiry and allowance.
// Retry-safe: the same link again is a no-op.
func (a *Activities) ArmDisclosureLink(ctx context.Context, in ArmLinkInput) (ArmLinkResult, error) {
	if !tokenHashRE.MatchString(in.TokenHash) || in.Downloads <= 0 || in.ExpiresAt.IsZero() {
		return ArmLinkResult{}, nonRetryable(ErrTypeInvalid, "disclosure link: token hash, expiry and a positive download count are required", nil)
	}
	if ref, err := a.Store.DisclosurePackageRef(ctx, in.RequestID); err != nil {
		return ArmLinkResult{}, storeErr(err, "disclosure request "+in.RequestID)
	} else if ref == "" {
		return ArmLinkResult{}, nonRetryable(ErrTypeInvalid, "disclosure request "+in.RequestID+" has no signed package to link to", nil)
	}
	if err := a.Store.SetDisclosureLink(ctx, in.RequestID, in.TokenHash, in.ExpiresAt, in.Downloads); err != nil {
		return ArmLinkResult{}, storeErr(err, "disclosure request "+in.RequestID)
	}
	if err := a.audit(ctx, "system", "disclosure.link_armed", "disclosure:"+in.RequestID,
		map[string]any{"expires_at": in.ExpiresAt.UTC().Format(time.RFC3339), "downloads": in.Downloads}); err != nil {
		return ArmLinkResult{}, err
	}
	return ArmLinkResult{DownloadBaseURL: strings.TrimRight(a.Config.PublicBaseURL, "/") + "/v1/disclosures/"}, nil
}

// DeliverNothingInput sends the signed "nothing held" answer.
type DeliverNothingInput struct {
	RequestID      string
	IdempotencyKey string
}

var unsafeName = regexp.MustCompile(`[^0-9A-Za-z._-]`)

// DeliverDisclosureNothing emails disclosure_nothing_held to the requester
// with the signed statement attached (JSON and its detached CMS signature),
// so the "no data" answer is as verifiable as a package. The address and
// the statement are read here, not carried through workflow history.
func (a *Activities) DeliverDisclosureNothing(ctx context.Context, in DeliverNothingInput) (NotifyResult, error) {
	req, err := a.Store.GetDisclosureRequest(ctx, in.RequestID)
	if err != nil {
		return NotifyResult{}, storeErr(err, "disclosure request "+in.RequestID)
	}
	if req.PackageRef == "" {
		return NotifyResult{}, nonRetryable(ErrTypeInvalid, "disclosure request "+in.RequestID+" has no signed answer", nil)
	}
	pkg, err := a.Store.GetDisclosurePackage(ctx, req.PackageRef)
	if err != nil {
		return NotifyResult{}, storeErr(err, "disclosure package of "+in.RequestID)
	}
	name := "disclosure-" + unsafeName.ReplaceAllString(in.RequestID, "_") + ".json"
	return a.Notify(ctx, NotifyInput{
		Recipient: Recipient{Email: req.Email},
		Message: mailer.Message{Notice: mailer.DisclosureNothing, Data: mailer.DisclosureNothingData{RequestID: in.RequestID},
			IdempotencyKey: in.IdempotencyKey, Attachments: []mailer.Attachment{
				{Name: name, ContentType: "application/json", Data: pkg.JSON},
				{Name: name + ".p7s", ContentType: "application/pkcs7-signature", Data: pkg.SignatureDER},
			}},
	})
}

// DisclosureDeliveryInput records that the answer reached the requester.
type DisclosureDeliveryInput struct {
	RequestID   string
	WorkflowID  string
	Method      string   // electronic or paper
	PersonRefs  []string // subscriber ids disclosed about (none: nothing held)
	DataItems   []string
	DeliveredAt time.Time
	StaffID     string // paper: who printed and mailed it
	Reason      string // state reason, no personal data
}

// RecordDisclosureDelivery writes the disclosure into the provision ledger
// (one record per person disclosed about: recipient the data subject, legal
// basis APPI Art. 33), logs staff access for a paper delivery (staff read
// the data to print it, O8) and marks the request delivered. Idempotent.
func (a *Activities) RecordDisclosureDelivery(ctx context.Context, in DisclosureDeliveryInput) error {
	for _, person := range in.PersonRefs {
		if len(in.DataItems) == 0 {
			break
		}
		if err := a.Store.RecordProvision(ctx, store.Provision{
			ID: in.WorkflowID + "/provision/" + person, ProvidedAt: in.DeliveredAt, RecipientKind: "requester",
			RecipientRef: "data-subject (disclosure " + in.RequestID + ")", PersonRef: person, DataItems: in.DataItems,
			LegalBasis: DisclosureProvisionNote, ContextRef: in.WorkflowID,
		}); err != nil {
			return storeErr(err, "provision record")
		}
		if in.StaffID != "" {
			if err := a.Store.RecordStaffAccess(ctx, store.StaffAccess{
				EventKey: in.WorkflowID + "/paper/" + person, StaffID: in.StaffID, PersonRef: person,
				Purpose: "print and mail disclosure " + in.RequestID, Channel: "paper delivery", AccessedAt: in.DeliveredAt,
			}); err != nil {
				return err
			}
		}
	}
	if err := a.Store.SetDisclosureState(ctx, in.RequestID, store.DisclosureDelivered, in.Reason); err != nil {
		return storeErr(err, "disclosure request "+in.RequestID)
	}
	actor := "system"
	if in.StaffID != "" {
		actor = "staff:" + in.StaffID
	}
	return a.audit(ctx, actor, "disclosure.delivered", "disclosure:"+in.RequestID,
		map[string]any{"method": in.Method, "persons": len(in.PersonRefs), "items": in.DataItems})
}

// DigestOf is the hex SHA-256 the signer checks the draft against.
func DigestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// NewLinkToken draws a download-link token (256 random bits, URL-safe).
// Workflows call it inside SideEffect, as with one-time codes; only its
// hash (LinkTokenHash) is stored.
func NewLinkToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// LinkTokenHash is what the store keeps for a link token.
func LinkTokenHash(token string) string { return store.HashLinkToken(token) }
