package store

import (
	"strings"
	"testing"
	"time"
)

func TestProvisionRecordsAreRetained(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	newFixture(t, s)
	must(t, s.RecordProvision(bg, Provision{ID: "pv_new", RecipientKind: "reseller", RecipientRef: "rs_a", PersonRef: "sb_1",
		DataItems: []string{"name", "email", "certificate"}, LegalBasis: "consent (subscriber agreement)", ContextRef: "GET /v1/certificates/1"}))
	must(t, s.RecordProvision(bg, Provision{ID: "pv_old", ProvidedAt: time.Now().AddDate(-4, 0, 0), RecipientKind: "authority",
		RecipientRef: "police", PersonRef: "sb_1", DataItems: []string{"name"}, LegalBasis: "APPI Art. 27(1)(i) laws and regulations"}))

	_, err := s.db.Exec(`DELETE FROM third_party_provisions WHERE id = 'pv_new'`)
	if err == nil || !strings.Contains(err.Error(), "at least 3 years") {
		t.Fatalf("deleting a young record: %v", err)
	}
	_, err = s.db.Exec(`UPDATE third_party_provisions SET legal_basis = 'x' WHERE id = 'pv_old'`)
	if err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("updating a record: %v", err)
	}
	_, err = s.db.Exec(`TRUNCATE third_party_provisions`)
	if err == nil || !strings.Contains(err.Error(), "cannot be truncated") {
		t.Fatalf("truncate: %v", err)
	}
	res, err := s.db.Exec(`DELETE FROM third_party_provisions WHERE id = 'pv_old'`)
	must(t, err)
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("old record: %d rows deleted", n)
	}
	got, err := s.ListProvisionsByPerson(bg, "sb_1")
	must(t, err)
	if len(got) != 1 || got[0].ID != "pv_new" || len(got[0].DataItems) != 3 || got[0].RecipientRef != "rs_a" {
		t.Fatalf("provisions: %+v", got)
	}
	if err := s.RecordProvision(bg, Provision{ID: "pv_bad", RecipientKind: "friend", RecipientRef: "x", PersonRef: "sb_1",
		DataItems: []string{"name"}, LegalBasis: "none"}); err == nil || !strings.Contains(err.Error(), "recipient kind") {
		t.Fatalf("bad recipient kind: %v", err)
	}

	// Staff access records follow the same rules.
	must(t, s.RecordStaffAccess(bg, StaffAccess{StaffID: "st_1", PersonRef: "sb_1", Purpose: "review application app_1", Channel: "temporal-ui codec decode"}))
	must(t, s.RecordStaffAccess(bg, StaffAccess{StaffID: "st_1", PersonRef: "sb_1", Purpose: "review application app_1", Channel: "temporal-ui codec decode"}))
	acc, err := s.ListStaffAccessByPerson(bg, "sb_1")
	must(t, err)
	if len(acc) != 2 || acc[0].Channel != "temporal-ui codec decode" || acc[0].EventKey != "" {
		t.Fatalf("staff access: %+v", acc)
	}
	if _, err := s.db.Exec(`DELETE FROM staff_access_log`); err == nil {
		t.Fatal("staff access log deleted")
	}
}
