package contact

import (
	"strings"
	"testing"
)

func TestFields(t *testing.T) {
	good := map[string]func(string) error{
		"+81 3-1234-5678": CheckPhone, "03 (1234) 5678": CheckPhone,
		"JP": CheckCountry, "a@example.jp": CheckEmail, "株式会社テスト": func(s string) error { return CheckText(s, 64) },
	}
	for v, f := range good {
		if err := f(v); err != nil {
			t.Errorf("%q refused: %v", v, err)
		}
	}
	bad := map[string]func(string) error{
		"12345": CheckPhone, "+81 3-1234-5678 ext. 9": CheckPhone, "jp": CheckCountry, "JPN": CheckCountry,
		"Taro <a@example.jp>": CheckEmail, "no-at-sign": CheckEmail, strings.Repeat("a", 250) + "@x.jp": CheckEmail,
		"line\nbreak": func(s string) error { return CheckText(s, 64) }, strings.Repeat("あ", 65): func(s string) error { return CheckText(s, 64) },
	}
	for v, f := range bad {
		if f(v) == nil {
			t.Errorf("%q accepted", v)
		}
	}
}
