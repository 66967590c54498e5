package mailer

import (
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"certdesk/internal/challenge"
	"certdesk/internal/product"
	"certdesk/internal/revocation"
)

// Notice names one kind of email. Its value is also the template file stem
// (templates/<notice>.subject.tmpl, .txt.tmpl, .html.tmpl) and what the email
// log records.
type Notice string

// The notices CertDesk sends. Each has exactly one data type (see DataType).
const (
	ApplicationReceived Notice = "application_received"    // ApplicationReceivedData
	VerificationCode    Notice = "verification_code"       // VerificationCodeData
	ReviewIssued        Notice = "review_issued"           // ReviewIssuedData (certificate attached)
	ReviewRejected      Notice = "review_rejected"         // ReviewRejectedData
	CorrectionApplied   Notice = "correction_applied"      // CorrectionAppliedData
	CorrectionReissue   Notice = "correction_reissue"      // CorrectionReissueData
	RevocationAccepted  Notice = "revocation_accepted"     // RevocationAcceptedData (BR §4.9.5 first report)
	RevocationDone      Notice = "revocation_done"         // RevocationDoneData
	DisclosureReady     Notice = "disclosure_ready"        // DisclosureReadyData
	DisclosureRefused   Notice = "disclosure_refused"      // DisclosureRefusedData
	DisclosureNothing   Notice = "disclosure_nothing_held" // DisclosureNothingData
	DisclosureDocuments Notice = "disclosure_documents"    // DisclosureDocumentsData (documents asked for; the clock is paused)
	DisclosureClosed    Notice = "disclosure_closed"       // DisclosureClosedData (identity could not be verified)
	StaffReminder       Notice = "staff_reminder"          // StaffCaseData
	StaffEscalation     Notice = "staff_escalation"        // StaffCaseData
	PolicyRevision      Notice = "policy_revision"         // PolicyRevisionData
	InquiryAcknowledged Notice = "inquiry_acknowledged"    // InquiryAcknowledgedData
	InquiryAnswered     Notice = "inquiry_answered"        // InquiryAnsweredData
	SystemCheck         Notice = "system_check"            // SystemCheckData (to staff: the stack works end to end)
)

// dataTypes maps each notice to the one Go type its data must have.
var dataTypes = map[Notice]reflect.Type{
	ApplicationReceived: reflect.TypeFor[ApplicationReceivedData](),
	VerificationCode:    reflect.TypeFor[VerificationCodeData](),
	ReviewIssued:        reflect.TypeFor[ReviewIssuedData](),
	ReviewRejected:      reflect.TypeFor[ReviewRejectedData](),
	CorrectionApplied:   reflect.TypeFor[CorrectionAppliedData](),
	CorrectionReissue:   reflect.TypeFor[CorrectionReissueData](),
	RevocationAccepted:  reflect.TypeFor[RevocationAcceptedData](),
	RevocationDone:      reflect.TypeFor[RevocationDoneData](),
	DisclosureReady:     reflect.TypeFor[DisclosureReadyData](),
	DisclosureRefused:   reflect.TypeFor[DisclosureRefusedData](),
	DisclosureNothing:   reflect.TypeFor[DisclosureNothingData](),
	DisclosureDocuments: reflect.TypeFor[DisclosureDocumentsData](),
	DisclosureClosed:    reflect.TypeFor[DisclosureClosedData](),
	StaffReminder:       reflect.TypeFor[StaffCaseData](),
	StaffEscalation:     reflect.TypeFor[StaffCaseData](),
	PolicyRevision:      reflect.TypeFor[PolicyRevisionData](),
	InquiryAcknowledged: reflect.TypeFor[InquiryAcknowledgedData](),
	InquiryAnswered:     reflect.TypeFor[InquiryAnsweredData](),
	SystemCheck:         reflect.TypeFor[SystemCheckData](),
}

// Notices lists every notice, sorted.
func Notices() []Notice {
	out := make([]Notice, 0, len(dataTypes))
	for n := range dataTypes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// DataType is the type a notice's data must have (a struct, passed by value
// or by pointer).
func DataType(n Notice) (reflect.Type, bool) {
	t, ok := dataTypes[n]
	return t, ok
}

// NewData returns a pointer to a zero value of the notice's data type, for
// decoding (see Message.UnmarshalJSON).
func NewData(n Notice) (any, error) {
	t, ok := dataTypes[n]
	if !ok {
		return nil, fmt.Errorf("mailer: %w: unknown notice %q", ErrBadData, n)
	}
	return reflect.New(t).Interface(), nil
}

// checkData verifies that data has the notice's type and is valid, and
// returns it dereferenced.
func checkData(n Notice, data any) (any, error) {
	want, ok := dataTypes[n]
	if !ok {
		return nil, fmt.Errorf("mailer: %w: unknown notice %q", ErrBadData, n)
	}
	v := reflect.ValueOf(data)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if !v.IsValid() || v.Type() != want {
		got := "nil"
		if data != nil {
			got = reflect.TypeOf(data).String()
		}
		return nil, fmt.Errorf("mailer: %w: notice %q needs data of type %s, got %s", ErrBadData, n, want, got)
	}
	d := v.Interface()
	if val, ok := d.(interface{ validate() error }); ok {
		if err := val.validate(); err != nil {
			return nil, fmt.Errorf("mailer: %w: notice %q: %v", ErrBadData, n, err)
		}
	}
	return d, nil
}

// ApplicationReceivedData: an application from a reseller was recorded.
type ApplicationReceivedData struct {
	Organization  string    // greeting ("<org> ご担当者様"); empty: no name
	ApplicationID string    // required
	Product       string    // server-dv, server-ov or client-sign
	ReceivedAt    time.Time // required
}

func (d ApplicationReceivedData) validate() error {
	return all(required("ApplicationID", d.ApplicationID), knownProduct(d.Product), requiredTime("ReceivedAt", d.ReceivedAt))
}

// VerificationCodeData: a one-time code for identity verification. The
// address is the only personal item, and it is the recipient.
type VerificationCodeData struct {
	Code          string // a 6-digit code, or a mailbox Random Value (internal/challenge)
	ExpiryMinutes int    // > 0
	MaxAttempts   int    // 0: not mentioned
	// MailboxControl: Code is the Random Value proving control of the
	// mailbox for a client certificate (S/MIME BR §3.2.2.1).
	MailboxControl bool `json:",omitempty"`
}

func (d VerificationCodeData) validate() error {
	var errs []error
	if d.MailboxControl && !challenge.IsMailboxValue(d.Code) {
		errs = append(errs, errors.New("Code must be a mailbox Random Value (26 base32 characters)"))
	} else if !d.MailboxControl && !challenge.IsCode(d.Code) {
		errs = append(errs, errors.New("Code must be 6 digits"))
	}
	if d.ExpiryMinutes <= 0 {
		errs = append(errs, errors.New("ExpiryMinutes must be positive"))
	}
	if d.MaxAttempts < 0 {
		errs = append(errs, errors.New("MaxAttempts must not be negative"))
	}
	return all(errs...)
}

// ReviewIssuedData: the certificate was issued; it is attached as
// <Serial>.pem automatically.
type ReviewIssuedData struct {
	Organization   string
	ApplicationID  string
	Product        string
	Serial         string // hex
	NotBefore      time.Time
	NotAfter       time.Time // required
	CertificatePEM []byte    // required, one or more CERTIFICATE blocks
	// CTLogs are the Certificate Transparency logs whose SCTs the
	// certificate carries, each with where its entry can be read.
	CTLogs []CTLogEntry
}

// CTLogEntry is one log a certificate was logged in.
type CTLogEntry struct {
	Log, Operator string
	Timestamp     time.Time
	Link          string
	// Entry is the entry's index in a Static CT API log, if known.
	Entry *uint64
}

func (d ReviewIssuedData) validate() error {
	var pemErr error
	if b, _ := pem.Decode(d.CertificatePEM); b == nil || b.Type != "CERTIFICATE" {
		pemErr = errors.New("CertificatePEM must hold a PEM CERTIFICATE block")
	}
	return all(required("ApplicationID", d.ApplicationID), knownProduct(d.Product), hexSerial("Serial", d.Serial),
		requiredTime("NotAfter", d.NotAfter), pemErr)
}

// ReviewRejectedData: staff rejected the application. Reason is the
// reviewer's text, shown verbatim (escaped in HTML) in both sections.
type ReviewRejectedData struct {
	Organization  string
	ApplicationID string
	Reason        string
}

func (d ReviewRejectedData) validate() error {
	return all(required("ApplicationID", d.ApplicationID), required("Reason", d.Reason))
}

// CorrectionAppliedData: contact-only fields were corrected. Only the names
// of the changed fields are listed, never old or new values: the notice may
// go to an address that is not the owner of every changed field (e.g. the
// previous contact), and email is not a protected channel; the values can be
// read through the reseller. Known field keys get Japanese and English
// labels (see FieldLabels); others are shown as given.
type CorrectionAppliedData struct {
	Organization  string
	CorrectionID  string
	Serial        string // hex, the certificate whose information was corrected
	ChangedFields []string
	AppliedAt     time.Time
}

func (d CorrectionAppliedData) validate() error {
	var e error
	if len(d.ChangedFields) == 0 {
		e = errors.New("ChangedFields must not be empty")
	}
	return all(required("CorrectionID", d.CorrectionID), hexSerial("Serial", d.Serial), e, requiredTime("AppliedAt", d.AppliedAt))
}

// CorrectionReissueData: a correction touched information printed in the
// certificate: the old certificate is revoked (reason superseded) and a new
// application was opened with the corrected data.
type CorrectionReissueData struct {
	Organization     string
	CorrectionID     string
	OldSerial        string // hex
	RevokedAt        time.Time
	NewApplicationID string
	ChangedFields    []string // names only, as in CorrectionAppliedData
}

func (d CorrectionReissueData) validate() error {
	return all(required("CorrectionID", d.CorrectionID), hexSerial("OldSerial", d.OldSerial),
		requiredTime("RevokedAt", d.RevokedAt), required("NewApplicationID", d.NewApplicationID))
}

// RevocationReason is the CRLReason of revocation notices. It is the
// revocation vocabulary's Reason itself, so its codes, names and notice
// wording are defined once; in workflow payloads it stays a JSON number.
type RevocationReason = revocation.Reason

// RevocationAcceptedData: the first report to the requester (BR §4.9.5,
// within 24 hours of the request).
type RevocationAcceptedData struct {
	Organization string
	RequestID    string
	Serial       string // hex
	Reason       RevocationReason
	ReceivedAt   time.Time
	Deadline     time.Time // when the revocation will have happened at the latest
}

func (d RevocationAcceptedData) validate() error {
	return all(required("RequestID", d.RequestID), hexSerial("Serial", d.Serial), d.Reason.Validate(),
		requiredTime("ReceivedAt", d.ReceivedAt), requiredTime("Deadline", d.Deadline))
}

// RevocationDoneData: the certificate is revoked and published.
type RevocationDoneData struct {
	Organization string
	Serial       string // hex
	Reason       RevocationReason
	RevokedAt    time.Time
}

func (d RevocationDoneData) validate() error {
	return all(hexSerial("Serial", d.Serial), d.Reason.Validate(), requiredTime("RevokedAt", d.RevokedAt))
}

// DisclosureReadyData: the disclosure package can be downloaded until
// ExpiresAt. Sent to the data subject: no name, no greeting by name.
type DisclosureReadyData struct {
	RequestID   string
	DownloadURL string // http(s)
	ExpiresAt   time.Time
}

func (d DisclosureReadyData) validate() error {
	return all(required("RequestID", d.RequestID), httpURL("DownloadURL", d.DownloadURL), requiredTime("ExpiresAt", d.ExpiresAt))
}

// DisclosureGround is the item of APPI Article 33(2) on which disclosure is
// refused in whole or in part.
type DisclosureGround int

// The three grounds of APPI Art. 33(2).
const (
	GroundHarmToPerson        DisclosureGround = 1 // (i) harm to the life, body, property or other rights of the person or a third party
	GroundBusinessHindrance   DisclosureGround = 2 // (ii) serious hindrance to the proper conduct of the business
	GroundViolationOfOtherLaw DisclosureGround = 3 // (iii) violation of other laws and regulations
)

var groundLabels = map[DisclosureGround][2]string{
	GroundHarmToPerson: {
		"本人又は第三者の生命、身体、財産その他の権利利益を害するおそれがある場合（個人情報の保護に関する法律第33条第2項第1号）",
		"disclosure is likely to harm the life, body, property or other rights or interests of the person or a third party (Act on the Protection of Personal Information, Article 33(2)(i))"},
	GroundBusinessHindrance: {
		"当局の業務の適正な実施に著しい支障を及ぼすおそれがある場合（個人情報の保護に関する法律第33条第2項第2号）",
		"disclosure is likely to seriously interfere with the proper conduct of our business (Act on the Protection of Personal Information, Article 33(2)(ii))"},
	GroundViolationOfOtherLaw: {
		"他の法令に違反することとなる場合（個人情報の保護に関する法律第33条第2項第3号）",
		"disclosure would violate other laws and regulations (Act on the Protection of Personal Information, Article 33(2)(iii))"},
}

// DisclosureRefusedData: disclosure refused in whole or in part.
type DisclosureRefusedData struct {
	RequestID   string
	Ground      DisclosureGround
	Partial     bool   // true: the rest was disclosed separately
	Explanation string // optional further explanation (APPI Art. 36), no third party's data
}

func (d DisclosureRefusedData) validate() error {
	var e error
	if _, ok := groundLabels[d.Ground]; !ok {
		e = fmt.Errorf("Ground %d is not an item of APPI Art. 33(2) (1-3)", int(d.Ground))
	}
	return all(required("RequestID", d.RequestID), e)
}

// DisclosureNothingData: no retained personal data about the requester.
type DisclosureNothingData struct {
	RequestID string
}

func (d DisclosureNothingData) validate() error { return required("RequestID", d.RequestID) }

// DisclosureDocumentsData: staff ask the requester for identity documents
// before disclosing; the request waits (and its clock stops) until they
// arrive. Reason is the staff member's text: what to send and how.
type DisclosureDocumentsData struct {
	RequestID string
	Reason    string
}

func (d DisclosureDocumentsData) validate() error {
	return all(required("RequestID", d.RequestID), required("Reason", d.Reason))
}

// DisclosureClosedData: the request was closed because the requester's
// identity could not be verified (no code, or no documents). It says nothing
// about whether any data is held.
type DisclosureClosedData struct {
	RequestID string
}

func (d DisclosureClosedData) validate() error { return required("RequestID", d.RequestID) }

// StaffCaseData is the data of staff_reminder and staff_escalation. No
// personal data: case type, IDs, due time and a link to the workflow.
type StaffCaseData struct {
	CaseType      string    // application, verification, correction, disclosure, revocation, ...
	CaseID        string    // business id
	WorkflowID    string    // e.g. revocation/0A1B...
	DueAt         time.Time // the deadline
	TemporalUIURL string    // base URL of the Temporal Web UI, e.g. http://127.0.0.1:8233
	Namespace     string    // Temporal namespace
	Note          string    // optional, e.g. "waiting for review decision"; no personal data
}

func (d StaffCaseData) validate() error {
	return all(required("CaseType", d.CaseType), required("CaseID", d.CaseID), required("WorkflowID", d.WorkflowID),
		requiredTime("DueAt", d.DueAt), httpURL("TemporalUIURL", d.TemporalUIURL), required("Namespace", d.Namespace))
}

// URL is the workflow's page in the Temporal UI.
func (d StaffCaseData) URL() string { return WorkflowURL(d.TemporalUIURL, d.Namespace, d.WorkflowID) }

// WorkflowURL is {ui}/namespaces/{ns}/workflows/{workflowID}, with the
// namespace and workflow ID escaped as path segments ("/" becomes %2F, as
// the Temporal UI expects).
func WorkflowURL(ui, namespace, workflowID string) string {
	return strings.TrimRight(ui, "/") + "/namespaces/" + url.PathEscape(namespace) + "/workflows/" + url.PathEscape(workflowID)
}

// PolicyRevisionData: the handling rules (or CP/CPS) were revised (O10).
type PolicyRevisionData struct {
	Organization  string
	Document      string    // optional document title in Japanese; default 証明書情報等の取扱いについて
	DocumentEN    string    // optional English title; default "Handling of Certificate Information"
	Version       string    // required
	EffectiveDate time.Time // required (shown as a JST date)
	URL           string    // required http(s)
}

func (d PolicyRevisionData) validate() error {
	return all(required("Version", d.Version), requiredTime("EffectiveDate", d.EffectiveDate), httpURL("URL", d.URL))
}

// InquiryAcknowledgedData: an inquiry or complaint was received (O9).
type InquiryAcknowledgedData struct {
	InquiryID  string
	ReceivedAt time.Time
	AnswerBy   time.Time // optional target date for the answer
}

func (d InquiryAcknowledgedData) validate() error {
	return all(required("InquiryID", d.InquiryID), requiredTime("ReceivedAt", d.ReceivedAt))
}

// InquiryAnsweredData: the answer to an inquiry. Answer is staff's text,
// quoted once (in the Japanese section; the English section points to it).
type InquiryAnsweredData struct {
	InquiryID string
	Answer    string
}

func (d InquiryAnsweredData) validate() error {
	return all(required("InquiryID", d.InquiryID), required("Answer", d.Answer))
}

// SystemCheckData: an end-to-end system check passed (workflow, database,
// email). No personal data.
type SystemCheckData struct {
	CheckID    string
	WorkflowID string
}

func (d SystemCheckData) validate() error {
	return all(required("CheckID", d.CheckID), required("WorkflowID", d.WorkflowID))
}

// FieldLabels maps correction field keys to their Japanese and English labels.
var FieldLabels = map[string][2]string{
	"organization_name":   {"組織名", "organisation name"},
	"organizational_unit": {"部署名", "organisational unit"},
	"common_name":         {"コモンネーム", "common name"},
	"domains":             {"ドメイン名", "domain names"},
	"country":             {"国", "country"},
	"state_or_province":   {"都道府県", "state or province"},
	"locality":            {"市区町村", "locality"},
	"postal_address":      {"住所", "postal address"},
	"contact_name":        {"ご担当者氏名", "contact name"},
	"contact_email":       {"ご担当者メールアドレス", "contact email address"},
	"contact_phone":       {"ご担当者電話番号", "contact telephone number"},
	"subscriber_name":     {"加入者氏名", "subscriber name"},
	"subscriber_email":    {"加入者メールアドレス", "subscriber email address"},
}

var productLabels = map[string][2]string{
	product.ServerDV:   {"サーバー証明書（ドメイン認証）", "TLS server certificate (domain validated)"},
	product.ServerOV:   {"サーバー証明書（組織認証）", "TLS server certificate (organisation validated)"},
	product.ClientSign: {"電子署名用クライアント証明書", "e-signature client certificate"},
}

var caseLabels = map[string][2]string{
	"application":     {"申請審査", "application review"},
	"verification":    {"本人確認", "identity verification"},
	"correction":      {"訂正", "correction"},
	"disclosure":      {"開示請求", "disclosure request"},
	"revocation":      {"取消", "revocation"},
	"mass-revocation": {"一括取消", "mass revocation"},
	"inquiry":         {"お問い合わせ", "inquiry"},
	"policy-notice":   {"規程改定の通知", "policy notice"},
	"system-check":    {"システム確認", "system check"},
}

// all joins the validation errors on one line.
func all(errs ...error) error {
	var msgs []string
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

func required(name, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("%s is required", name)
	}
	return nil
}

func requiredTime(name string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("%s is required", name)
	}
	return nil
}

var hexRE = regexp.MustCompile(`^[0-9A-Fa-f]+$`)

func hexSerial(name, v string) error {
	if !hexRE.MatchString(v) {
		return fmt.Errorf("%s must be a hex serial number", name)
	}
	return nil
}

func knownProduct(p string) error {
	if !product.Valid(p) {
		return fmt.Errorf("Product %q is not one of %s", p, strings.Join(product.All(), ", "))
	}
	return nil
}

func httpURL(name, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s must be an http(s) URL", name)
	}
	return nil
}
