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

func TestKeys(t *testing.T) {
	if _, err := NewKeys(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte key accepted")
	}
	k1, _ := NewKeys([]byte("0123456789abcdef0123456789abcdef"))
	k2, _ := NewKeys([]byte("0123456789abcdef0123456789abcdeX"))
	// A retry derives the same value; another attempt, case or key another.
	c := k1.Value(KindCode, "ver-1", 1)
	if !IsCode(c) || c != k1.Value(KindCode, "ver-1", 1) {
		t.Fatalf("code %q", c)
	}
	m := k1.Value(KindMailbox, "ver-1", 1)
	if !IsMailboxValue(m) || m == k1.Value(KindMailbox, "ver-1", 2) || m == k1.Value(KindMailbox, "ver-2", 1) || m == k2.Value(KindMailbox, "ver-1", 1) {
		t.Fatalf("mailbox value %q not bound to case, attempt and key", m)
	}
	if l := k1.Value(KindLink, "dr_1", 1); len(l) != 43 {
		t.Fatalf("link token %q", l)
	}
	d := k1.Digest(KindCode, "ver-1", c)
	if !IsDigest(d) || !Equal(d, k1.Digest(KindCode, "ver-1", c)) || Equal(d, k2.Digest(KindCode, "ver-1", c)) ||
		Equal(d, k1.Digest(KindCode, "ver-2", c)) {
		t.Fatalf("digest %q not bound to case and key", d)
	}
	// Codes spread over the whole range.
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		seen[k1.Value(KindCode, "ver-x", i)[:1]] = true
	}
	if len(seen) < 9 {
		t.Fatalf("first digits %v", seen)
	}
}
