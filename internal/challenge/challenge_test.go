package challenge

import "testing"

func TestValues(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		v := NewMailboxValue()
		if !IsMailboxValue(v) || IsCode(v) || seen[v] {
			t.Fatalf("mailbox value %q", v)
		}
		seen[v] = true
		if c := NewCode(); !IsCode(c) || IsMailboxValue(c) {
			t.Fatalf("code %q", c)
		}
	}
	if mailboxValueBytes*8 < 112 {
		t.Fatal("a mailbox Random Value needs at least 112 bits")
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdefghijklmnopqrstuvwxyz", "AAAAAAAAAAAAAAAAAAAAAAAAA1"} {
		if Valid(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
