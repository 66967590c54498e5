package store

import (
	"bytes"
	"encoding/base64"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"certdesk/internal/pii"
)

// personal data planted across the tables; none may appear in clear.
var planted = []string{"山田太郎", "株式会社テスト", "東京都千代田区1-1", "Taro.Yamada@Example.JP", "taro.yamada@example.jp",
	"+81 3-1234-5678", "+81312345678", "ra@reseller-a.example", "佐藤花子", "hanako.sato@example.jp", "090-9999-0000",
	"鈴木一郎", "ichiro@example.jp", "大阪府大阪市2-2", "苦情の本文です", "回答です", "csr-der-app_1", "der-app_1",
	"06-7777-8888", "0677778888"}

func TestNoPersonalDataInClear(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	f := newFixture(t, s)
	must(t, s.UpsertSubscriber(bg, Subscriber{ID: "sb_2", ResellerID: "rs_a", Name: "佐藤花子", Email: "hanako.sato@example.jp", Phone: "090-9999-0000"}))
	cert := f.issue(t, "app_1", "tls-1", 0, time.Now().Add(-time.Hour))
	must(t, s.CreateCorrection(bg, Correction{ID: "co_1", Serial: cert.Serial, ResellerID: "rs_a",
		OldValues: map[string]string{"name": "山田太郎"}, NewValues: map[string]string{"name": "鈴木一郎"}, Classification: "printed"}))
	must(t, s.CreateDisclosureRequest(bg, DisclosureRequest{ID: "dr_1", Name: "鈴木一郎", Email: "ichiro@example.jp",
		Phone: "06-7777-8888", PostalAddress: "大阪府大阪市2-2", DeliveryMethod: "paper", DueAt: time.Now()}))
	// The phone number (the second disclosure matching factor) is sealed
	// and blind-indexed, and reads back.
	dr, err := s.GetDisclosureRequest(bg, "dr_1")
	must(t, err)
	var phoneIdx []byte
	must(t, s.db.Get(&phoneIdx, `SELECT phone_bidx FROM disclosure_requests WHERE id = 'dr_1'`))
	if dr.Phone != "06-7777-8888" || !bytes.Equal(phoneIdx, s.bidx.Phone("０６ ７７７７ ８８８８")) {
		t.Fatalf("disclosure request phone %q, index %x", dr.Phone, phoneIdx)
	}
	_, err = s.SaveDisclosurePackage(bg, DisclosurePackage{ID: "dp_1", RequestID: "dr_1", JSON: []byte(`{"name":"鈴木一郎"}`),
		HTML: []byte("<p>鈴木一郎</p>"), SignatureDER: []byte{0x30}})
	must(t, err)
	must(t, s.CreateInquiry(bg, Inquiry{ID: "iq_1", Kind: "complaint", Contact: "ichiro@example.jp", Body: "苦情の本文です", DueAt: time.Now()}))
	must(t, s.AnswerInquiry(bg, "iq_1", "回答です", time.Now()))
	_, err = s.ReserveEmail(bg, "k1", "issued", "sb_1")
	must(t, err)
	must(t, s.MarkEmailFailed(bg, "k1", "550 5.1.1 <Taro.Yamada@Example.JP>: mailbox unavailable"))

	var tables []string
	must(t, s.db.Select(&tables, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`))
	for _, table := range tables {
		var rows []string
		must(t, s.db.Select(&rows, `SELECT t::text FROM `+table+` t`))
		// bytea prints as hex, so a value stored unencrypted in a bytea
		// column would show as the hex of its UTF-8: check both forms.
		dump := strings.ToLower(strings.Join(rows, "\n"))
		for _, p := range planted {
			if strings.Contains(dump, strings.ToLower(p)) || strings.Contains(dump, hexOf(p)) {
				t.Errorf("table %s holds %q in clear", table, p)
			}
		}
	}
	// The raw bytes of every encrypted column, too.
	for _, col := range encryptedColumns() {
		table, column, _ := strings.Cut(col, ".")
		var vals [][]byte
		must(t, s.db.Select(&vals, `SELECT `+column+` FROM `+table+` WHERE `+column+` IS NOT NULL`))
		for _, v := range vals {
			for _, p := range planted {
				if bytes.Contains(v, []byte(p)) {
					t.Errorf("%s holds %q in clear", col, p)
				}
			}
		}
	}

	// Reads decrypt; lookups by email ignore case and surrounding space.
	for _, q := range []string{"taro.yamada@example.jp", "  TARO.YAMADA@EXAMPLE.JP\t", "ｔａｒｏ.ｙａｍａｄａ＠ｅｘａｍｐｌｅ.ｊｐ"} {
		got, err := s.FindSubscribersByEmail(bg, q)
		must(t, err)
		if len(got) != 1 || got[0].ID != "sb_1" || got[0].Name != "山田太郎" || got[0].Email != "Taro.Yamada@Example.JP" {
			t.Fatalf("FindSubscribersByEmail(%q) = %+v", q, got)
		}
	}
	got, err := s.FindSubscribersByPhone(bg, "+81-3-1234-5678")
	must(t, err)
	if len(got) != 1 || got[0].Phone != "+81 3-1234-5678" || got[0].Address != "東京都千代田区1-1" {
		t.Fatalf("by phone: %+v", got)
	}
	if got, _ := s.FindSubscribersByEmail(bg, "nobody@example.jp"); len(got) != 0 {
		t.Fatalf("unknown email found %+v", got)
	}
	iqs, err := s.ListInquiriesByEmail(bg, "Ichiro@Example.jp")
	must(t, err)
	if len(iqs) != 1 || iqs[0].Body != "苦情の本文です" || iqs[0].Answer != "回答です" {
		t.Fatalf("inquiries by email: %+v", iqs)
	}
	e, err := s.GetEmailLog(bg, "k1")
	must(t, err)
	if e.LastError != "550 5.1.1 <<address>>: mailbox unavailable" || e.Status != "failed" {
		t.Fatalf("email error not scrubbed: %+v", e)
	}
}

// A ciphertext copied into another row or column does not decrypt.
func TestCiphertextCannotBeMoved(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	newFixture(t, s)
	must(t, s.UpsertSubscriber(bg, Subscriber{ID: "sb_2", ResellerID: "rs_a", Name: "佐藤花子", Email: "hanako@example.jp"}))
	_, err := s.db.Exec(`UPDATE subscribers SET name_enc = (SELECT name_enc FROM subscribers WHERE id = 'sb_1') WHERE id = 'sb_2'`)
	must(t, err)
	if _, err := s.GetSubscriber(bg, "sb_2"); err == nil || !strings.Contains(err.Error(), "subscribers.name_enc of sb_2") {
		t.Fatalf("row swap not detected: %v", err)
	}
	_, err = s.db.Exec(`UPDATE subscribers SET name_enc = email_enc WHERE id = 'sb_1'`)
	must(t, err)
	if _, err := s.GetSubscriber(bg, "sb_1"); err == nil {
		t.Fatal("column swap not detected")
	}
}

func TestRotateKeys(t *testing.T) {
	t.Parallel()
	s, oldRing := newStore(t)
	f := newFixture(t, s)
	for _, id := range []string{"app_1", "app_2", "app_3"} {
		f.issue(t, id, "tls-1", 0, time.Now().Add(-time.Hour))
	}
	for i := 0; i < 1200; i++ { // more than two rotation batches
		must(t, s.UpsertSubscriber(bg, Subscriber{ID: "sb_bulk_" + itoa(i), ResellerID: "rs_a", Name: "名前" + itoa(i), Email: itoa(i) + "@example.jp"}))
	}
	must(t, s.CreateInquiry(bg, Inquiry{ID: "iq_1", Kind: "inquiry", Contact: "tel 03", Body: "本文", DueAt: time.Now()}))
	must(t, s.CreateDisclosureRequest(bg, DisclosureRequest{ID: "dr_1", Email: "d@example.jp", DueAt: time.Now()}))

	before, err := s.KeyIDCounts(bg)
	must(t, err)
	if len(before) != 1 || before["k1"] == 0 {
		t.Fatalf("before rotation: %v", before)
	}

	// New ring: the old key stays (to read), the new key is last (current).
	newKey := make([]byte, 32)
	copy(newKey, "0123456789abcdef0123456789abcdef")
	k1 := extractKey(t, oldRing)
	ring, err := pii.ParseKeyRing("k1:" + base64.StdEncoding.EncodeToString(k1) + ",k2:" + base64.StdEncoding.EncodeToString(newKey))
	must(t, err)
	rep, err := s.RotateKeys(bg, ring)
	must(t, err)
	if rep.Values != before["k1"] {
		t.Fatalf("rotated %d values, want %d (%+v)", rep.Values, before["k1"], rep.ByTable)
	}
	var old int
	must(t, s.db.Get(&old, `SELECT count(*) FROM subscribers WHERE pii_key_id(name_enc) <> 'k2' OR pii_key_id(email_enc) <> 'k2'`))
	if old != 0 {
		t.Fatalf("%d subscribers still under k1", old)
	}
	after, err := s.KeyIDCounts(bg)
	must(t, err)
	if len(after) != 1 || after["k2"] != before["k1"] {
		t.Fatalf("after rotation: %v", after)
	}
	again, err := s.RotateKeys(bg, ring)
	must(t, err)
	if again.Values != 0 {
		t.Fatalf("second rotation rewrote %d values", again.Values)
	}

	// Everything still decrypts, with only the new key.
	onlyNew, err := pii.NewKeyRing(pii.Key{ID: "k2", Secret: newKey})
	must(t, err)
	s2 := New(s.db, onlyNew, s.bidx)
	sub, err := s2.GetSubscriber(bg, "sb_1")
	must(t, err)
	if sub.Name != "山田太郎" || sub.Organization != "株式会社テスト" {
		t.Fatalf("after rotation: %+v", sub)
	}
	found, err := s2.FindSubscribersByEmail(bg, "599@example.jp")
	must(t, err)
	if len(found) != 1 || found[0].Name != "名前599" {
		t.Fatalf("bulk subscriber after rotation: %+v", found)
	}
	cs, err := s2.ListCertificatesBySubscriber(bg, "sb_1")
	must(t, err)
	for _, c := range cs {
		full, err := s2.GetCertificate(bg, c.Serial)
		must(t, err)
		if !strings.HasPrefix(string(full.DER), "der-app_") {
			t.Fatalf("DER after rotation: %q", full.DER)
		}
	}
	for _, id := range []string{"app_1", "app_2"} {
		a, err := s2.GetApplication(bg, id)
		must(t, err)
		if string(a.CSR) != "csr-der-"+id {
			t.Fatalf("CSR after rotation: %q", a.CSR)
		}
	}
	r, err := s2.GetReseller(bg, "rs_a")
	must(t, err)
	if r.ContactEmail != "ra@reseller-a.example" {
		t.Fatalf("reseller contact after rotation: %q", r.ContactEmail)
	}
}

// Every _enc column in the schema is known to RotateKeys.
func TestEncryptedColumnsCoverSchema(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	var cols []string
	must(t, s.db.Select(&cols, `SELECT table_name || '.' || column_name FROM information_schema.columns
		WHERE table_schema = 'public' AND column_name LIKE '%\_enc' ORDER BY 1`))
	sort.Strings(cols)
	if got := encryptedColumns(); strings.Join(got, ",") != strings.Join(cols, ",") {
		t.Fatalf("schema has encrypted columns\n%v\nRotateKeys knows\n%v", cols, got)
	}
}

// extractKey returns the current key of a ring made by newRing.
func extractKey(t *testing.T, r *pii.KeyRing) []byte {
	t.Helper()
	testKeysMu.Lock()
	defer testKeysMu.Unlock()
	k, ok := testKeys[r]
	if !ok {
		t.Fatal("ring not made by newRing")
	}
	return k[r.CurrentID()]
}

func itoa(i int) string { return strconv.Itoa(i) }

// encryptedColumns lists every column RotateKeys re-encrypts, as
// "table.column", sorted.
func encryptedColumns() []string {
	var out []string
	for _, t := range encryptedTables {
		for _, c := range t.columns {
			out = append(out, t.table+"."+c)
		}
	}
	sort.Strings(out)
	return out
}
