package revocation

import "testing"

func TestParseRoundTrip(t *testing.T) {
	for _, r := range All() {
		got, err := Parse(r.String())
		if err != nil || got != r {
			t.Fatalf("Parse(%q) = %v, %v", r.String(), got, err)
		}
		if r.Japanese() == "" || r.English() == "" {
			t.Fatalf("%v has no notice wording", r)
		}
	}
	if _, err := Parse("certificateHold"); err == nil {
		t.Fatal("certificateHold accepted (BR §7.2.2 forbids it)")
	}
	if Reason(2).Valid() || Reason(6).Valid() {
		t.Fatal("cACompromise or certificateHold counted as valid")
	}
}

func TestResellerSet(t *testing.T) {
	if _, err := ParseFrom("privilegeWithdrawn", ResellerAllowed()); err == nil {
		t.Fatal("a reseller may not give privilegeWithdrawn")
	}
	if r, err := ParseFrom("keyCompromise", ResellerAllowed()); err != nil || r != KeyCompromise {
		t.Fatalf("keyCompromise: %v %v", r, err)
	}
	if !In(PrivilegeWithdrawn, StaffAllowed()) {
		t.Fatal("staff may give privilegeWithdrawn")
	}
	if NameOf(2) != "2" || NameOf(4) != "superseded" {
		t.Fatalf("NameOf: %q %q", NameOf(2), NameOf(4))
	}
}
