package mailer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"certdesk/internal/product"
	"certdesk/internal/revocation"
	"certdesk/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// memLog is an in-memory SendLog (the real one lives in internal/store).
type memLog struct {
	mu      sync.Mutex
	entries map[string]*logEntry
	// failMarkSent makes MarkEmailSent fail (the crash-after-send window).
	failMarkSent bool
}

type logEntry struct {
	notice, recipientRef string
	sent                 bool
	messageID            string
	reserves             int
	failures             []string
}

func newMemLog() *memLog { return &memLog{entries: map[string]*logEntry{}} }

func (l *memLog) ReserveEmail(_ context.Context, key, notice, recipientRef string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[key]
	if e == nil {
		e = &logEntry{notice: notice, recipientRef: recipientRef}
		l.entries[key] = e
	}
	e.reserves++
	return e.sent, nil
}

func (l *memLog) MarkEmailSent(_ context.Context, key, messageID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failMarkSent {
		return errors.New("database is down")
	}
	e := l.entries[key]
	if e == nil {
		return errors.New("not reserved")
	}
	e.sent, e.messageID = true, messageID
	return nil
}

func (l *memLog) MarkEmailFailed(_ context.Context, key, errText string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[key]
	if e == nil {
		return errors.New("not reserved")
	}
	e.failures = append(e.failures, errText)
	return nil
}

func (l *memLog) get(key string) logEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[key]; e != nil {
		return *e
	}
	return logEntry{}
}

// uniq returns a string unique to this test run.
func uniq() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// addr returns a recipient address unique to the test.
func addr(t testing.TB, label string) string {
	name := strings.NewReplacer("/", "-", "_", "-", " ", "-").Replace(strings.ToLower(t.Name()))
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return strings.Trim(name, "-") + "-" + label + "-" + uniq() + "@example.test"
}

func testOptions(host string, port int) Options {
	return Options{
		Host:           host,
		Port:           port,
		TLS:            TLSNone,
		From:           "CertDesk <noreply@certdesk.example>",
		ReplyTo:        "support@certdesk.example",
		DialTimeout:    5 * time.Second,
		CommandTimeout: 10 * time.Second,
	}
}

func mailDevSender(t testing.TB, md *testenv.MailDev) *Sender {
	t.Helper()
	s, err := NewSender(testOptions(md.SMTPHost(), md.SMTPPort))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	testPEMOnce sync.Once
	testPEM     []byte
)

// certPEM is a throwaway self-signed certificate.
func certPEM(t testing.TB) []byte {
	testPEMOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(0x0A1B2C3D),
			Subject:      pkix.Name{CommonName: "www.example.test"},
			NotBefore:    time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC),
			NotAfter:     time.Date(2027, 10, 31, 14, 59, 59, 0, time.UTC),
			DNSNames:     []string{"www.example.test"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		testPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	})
	return testPEM
}

var t0 = time.Date(2026, 10, 5, 5, 3, 0, 0, time.UTC) // 14:03 JST, a Monday

// samples has valid data for every notice, and a Japanese sentence and an
// English sentence that the rendered text and HTML must both contain.
func samples(t testing.TB) map[Notice]struct {
	data   any
	ja, en string
} {
	type s = struct {
		data   any
		ja, en string
	}
	staff := StaffCaseData{CaseType: "revocation", CaseID: "0A1B2C3D", WorkflowID: "revocation/0A1B2C3D",
		DueAt: t0.Add(24 * time.Hour), TemporalUIURL: "http://127.0.0.1:8233", Namespace: "default", Note: "waiting for authorisation"}
	return map[Notice]s{
		ApplicationReceived: {ApplicationReceivedData{Organization: "株式会社サンプル", ApplicationID: "APP-1001", Product: product.ServerOV, ReceivedAt: t0},
			"証明書のお申し込みを、以下のとおり受け付けました。", "We have received your certificate application as follows."},
		VerificationCode: {VerificationCodeData{Code: "042917", ExpiryMinutes: 10, MaxAttempts: 5},
			"ご本人様確認のための確認コードをお知らせいたします。", "Here is your verification code for identity verification."},
		ReviewIssued: {ReviewIssuedData{Organization: "株式会社サンプル", ApplicationID: "APP-1001", Product: product.ServerOV, Serial: "0A1B2C3D",
			NotBefore: t0, NotAfter: t0.AddDate(1, 0, 0), CertificatePEM: certPEM(t)},
			"お申し込みいただいた証明書の審査が完了し、証明書を発行いたしました。", "The review of your application is complete and your certificate has been issued."},
		ReviewRejected: {ReviewRejectedData{Organization: "株式会社サンプル", ApplicationID: "APP-1002", Reason: "登記事項証明書の組織名と申請の組織名が一致しません。"},
			"慎重に審査いたしました結果、誠に恐れ入りますが、今回のお申し込みについては証明書を発行いたしかねることとなりました。",
			"After careful review, we regret that we are unable to issue a certificate for this application."},
		CorrectionApplied: {CorrectionAppliedData{Organization: "株式会社サンプル", CorrectionID: "COR-7", Serial: "0A1B2C3D",
			ChangedFields: []string{"contact_email", "contact_phone"}, AppliedAt: t0},
			"指定事業者を通じてご請求いただいた登録情報の訂正を、以下のとおり反映いたしました。",
			"None of these fields is printed in the certificate, so the certificate remains valid and in use."},
		CorrectionReissue: {CorrectionReissueData{Organization: "株式会社サンプル", CorrectionID: "COR-8", OldSerial: "0A1B2C3D", RevokedAt: t0,
			NewApplicationID: "APP-1003", ChangedFields: []string{"organization_name"}},
			"証明書の記載事項は発行後に変更することができないため、以下のとおり対応いたしました。",
			"Because a certificate cannot be changed after issuance, we have done the following."},
		RevocationAccepted: {RevocationAcceptedData{Organization: "株式会社サンプル", RequestID: "REV-3", Serial: "0A1B2C3D", Reason: revocation.KeyCompromise,
			ReceivedAt: t0, Deadline: t0.Add(24 * time.Hour)},
			"証明書の取消のご請求を受け付けました。本メールは、ご請求に対する最初のご報告です。",
			"This message is our first report on the request."},
		RevocationDone: {RevocationDoneData{Organization: "株式会社サンプル", Serial: "0A1B2C3D", Reason: revocation.Superseded, RevokedAt: t0},
			"以下の証明書の取消が完了しましたので、お知らせいたします。", "The following certificate has been revoked."},
		DisclosureReady: {DisclosureReadyData{RequestID: "DIS-5", DownloadURL: "https://certdesk.example/v1/disclosures/tok_abc", ExpiresAt: t0.Add(7 * 24 * time.Hour)},
			"保有個人データの開示のご請求につきまして、開示資料のご用意ができましたのでお知らせいたします。",
			"The package answering your request for disclosure of retained personal data is ready."},
		DisclosureRefused: {DisclosureRefusedData{RequestID: "DIS-6", Ground: GroundViolationOfOtherLaw},
			"本件についてご不明な点やご意見がございましたら、受付番号を添えてお問い合わせください。",
			"If you have any questions or objections, please contact us quoting the request ID."},
		DisclosureNothing: {DisclosureNothingData{RequestID: "DIS-7"},
			"当局はご請求者様ご本人に関する保有個人データを保有しておりませんでしたので、お知らせいたします。",
			"we hold no retained personal data about you."},
		DisclosureDocuments: {DisclosureDocumentsData{RequestID: "DIS-8", Reason: "運転免許証の写し"},
			"ご本人確認のため、以下のとおり書類のご提出をお願いいたします。",
			"please send us the documents below."},
		DisclosureClosed: {DisclosureClosedData{RequestID: "DIS-9"},
			"所定の期間内にご本人確認を完了することができなかったため、手続きを終了いたしました。",
			"because your identity could not be verified within the time allowed."},
		SystemCheck: {SystemCheckData{CheckID: "chk-1", WorkflowID: "system-check/chk-1"},
			"システムチェック chk-1 は正常に完了しました。", "System check chk-1 passed."},
		StaffReminder: {staff,
			"以下の案件の対応期限が近づいています。期限までに対応をお願いいたします。",
			"The following case is due soon. Please deal with it before the deadline."},
		StaffEscalation: {staff,
			"以下の案件が対応期限に達しましたが、まだ完了していません。至急ご対応をお願いいたします。",
			"The following case has reached its deadline and is still open. Please deal with it urgently."},
		PolicyRevision: {PolicyRevisionData{Version: "2.0", EffectiveDate: t0.AddDate(0, 1, 0), URL: "https://certdesk.example/repository/handling-2.0.html"},
			"お手数ですが、改定後の内容をご確認くださいますようお願いいたします。", "Please take a moment to read the revised text."},
		InquiryAcknowledged: {InquiryAcknowledgedData{InquiryID: "INQ-9", ReceivedAt: t0, AnswerBy: t0.AddDate(0, 0, 7)},
			"お問い合わせいただき、誠にありがとうございます。以下のとおり受け付けました。",
			"Thank you for contacting us. We have received your inquiry as follows."},
		InquiryAnswered: {InquiryAnsweredData{InquiryID: "INQ-9", Answer: "第三者提供の停止のご請求を承りました。\n本日以降、提供を停止いたします。"},
			"ご回答の内容についてご不明な点がございましたら、受付番号を添えてお問い合わせください。",
			"If anything in the answer is unclear, please contact us quoting the reference."},
	}
}
