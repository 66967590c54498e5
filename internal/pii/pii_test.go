package pii

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func mustRing(t *testing.T, s string) *KeyRing {
	t.Helper()
	r, err := ParseKeyRing(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func genKey(t *testing.T) string {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTripAndFormat(t *testing.T) {
	t.Parallel()
	r := mustRing(t, "k1:"+genKey(t)+", k2:"+genKey(t))
	if r.CurrentID() != "k2" {
		t.Fatalf("current %q, want the last key k2", r.CurrentID())
	}
	pt := []byte("山田太郎 <taro@example.jp>")
	aad := []byte("subscribers.name_enc|sb_1")
	ct, err := r.Encrypt(pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	if ct[0] != 0x01 || ct[1] != 2 || string(ct[2:4]) != "k2" {
		t.Fatalf("header % x, want 01 02 'k2'", ct[:4])
	}
	if len(ct) != 4+12+len(pt)+16 {
		t.Fatalf("length %d", len(ct))
	}
	if bytes.Contains(ct, pt) {
		t.Fatal("plaintext visible in ciphertext")
	}
	got, err := r.Decrypt(ct, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("decrypt: %q %v", got, err)
	}
	if id, _ := KeyID(ct); id != "k2" {
		t.Fatalf("KeyID %q", id)
	}
	ct2, _ := r.Encrypt(pt, aad)
	if bytes.Equal(ct, ct2) {
		t.Fatal("two encryptions of one value are equal: nonce reuse")
	}
}

func TestAADBindsColumnAndRow(t *testing.T) {
	t.Parallel()
	r := mustRing(t, "k1:"+genKey(t))
	ct, _ := r.Encrypt([]byte("x@example.com"), []byte("subscribers.email_enc|sb_1"))
	for _, aad := range []string{"subscribers.name_enc|sb_1", "subscribers.email_enc|sb_2", ""} {
		if _, err := r.Decrypt(ct, []byte(aad)); !errors.Is(err, ErrDecrypt) {
			t.Errorf("aad %q: err %v, want ErrDecrypt", aad, err)
		}
	}
	// The key id is authenticated too: relabelling a value fails.
	tampered := append([]byte(nil), ct...)
	tampered[len(tampered)-1] ^= 1
	if _, err := r.Decrypt(tampered, []byte("subscribers.email_enc|sb_1")); !errors.Is(err, ErrDecrypt) {
		t.Errorf("tampered tag: %v", err)
	}
}

func TestRotationAcrossRings(t *testing.T) {
	t.Parallel()
	k1, k2 := genKey(t), genKey(t)
	old := mustRing(t, "k1:"+k1)
	ct, _ := old.Encrypt([]byte("v"), nil)
	both := mustRing(t, "k1:"+k1+",k2:"+k2)
	if !both.NeedsRotation(ct) {
		t.Fatal("k1 value should need rotation under current k2")
	}
	if pt, err := both.Decrypt(ct, nil); err != nil || string(pt) != "v" {
		t.Fatalf("old value under new ring: %v", err)
	}
	onlyNew := mustRing(t, "k2:"+k2)
	_, err := onlyNew.Decrypt(ct, nil)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("missing old key: %v", err)
	}
}

func TestParseErrorsDoNotEchoKeys(t *testing.T) {
	t.Parallel()
	good := genKey(t)
	short := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	cases := map[string]string{
		"":                            "empty",
		"k1" + good:                   "no \":\"",
		"k 1:" + good:                 "key id",
		"k1:" + short:                 "16 bytes",
		"k1:not*base64!!":             "not valid base64",
		"k1:" + good + ",k1:" + good:  "appears twice",
		"k1:" + good + ",k2:":         "entry 2",
		"k1:" + good + ",k2:" + short: "entry 2 (id \"k2\")",
	}
	for in, want := range cases {
		_, err := ParseKeyRing(in)
		if err == nil {
			t.Errorf("%q: no error", in)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %q does not mention %q", in, err, want)
		}
		for _, secret := range []string{good, short, "not*base64"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error echoes key material: %q", err)
			}
		}
	}
	r := mustRing(t, "k1:"+good)
	for _, s := range []string{r.String(), fmt.Sprintf("%v %#v %+v", r, r, r)} {
		if strings.Contains(s, good) {
			t.Errorf("formatting leaks the key: %s", s)
		}
	}
	// URL base64 without padding is accepted: people paste keys by hand.
	raw, _ := base64.StdEncoding.DecodeString(good)
	if _, err := ParseKeyRing("k1:" + base64.RawURLEncoding.EncodeToString(raw)); err != nil {
		t.Errorf("raw URL base64: %v", err)
	}
}

func TestDecryptRejectsGarbage(t *testing.T) {
	t.Parallel()
	r := mustRing(t, "k1:"+genKey(t))
	for _, v := range [][]byte{nil, {1}, {2, 2, 'k', '1'}, {1, 2, 'k', '1', 0, 0}, []byte("plain text value")} {
		if _, err := r.Decrypt(v, nil); err == nil {
			t.Errorf("% x decrypted", v)
		}
	}
}

func TestNormalisation(t *testing.T) {
	t.Parallel()
	emails := map[string]string{
		"  Taro.Yamada@Example.JP ": "taro.yamada@example.jp",
		"ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ":           "taro@example.jp",
		"\u3000a@b.c\t":             "a@b.c",
	}
	for in, want := range emails {
		if got := NormalizeEmail(in); got != want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", in, got, want)
		}
	}
	phones := map[string]string{
		"+81 3-1234-5678":  "+81312345678",
		"03-1234-5678":     "0312345678",
		"(03) 1234 5678":   "0312345678",
		"０３－１２３４－５６７８":     "0312345678",
		" +1 (555) 010-99": "+155501099",
		"+":                "",
		"n/a":              "",
	}
	for in, want := range phones {
		if got := NormalizePhone(in); got != want {
			t.Errorf("NormalizePhone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBlindIndex(t *testing.T) {
	t.Parallel()
	b, err := ParseBlindIndexKey(genKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Email("Taro@Example.jp"), b.Email(" taro@example.JP ")) {
		t.Error("equivalent emails give different indexes")
	}
	if bytes.Equal(b.Email("a@b.c"), b.Email("a@b.d")) {
		t.Error("different emails give the same index")
	}
	if bytes.Equal(b.Sum(PurposeEmail, "0312345678"), b.Sum(PurposePhone, "0312345678")) {
		t.Error("purposes are not separated")
	}
	if b.Phone("") != nil || b.Email("  ") != nil {
		t.Error("empty values should have no index")
	}
	if len(b.Email("a@b.c")) != 32 {
		t.Error("index is not 32 bytes")
	}
	other, _ := ParseBlindIndexKey(genKey(t))
	if bytes.Equal(b.Email("a@b.c"), other.Email("a@b.c")) {
		t.Error("index does not depend on the key")
	}
	if _, err := ParseBlindIndexKey("c2hvcnQ="); err == nil || strings.Contains(err.Error(), "c2hvcnQ") {
		t.Errorf("short key: %v", err)
	}
}
