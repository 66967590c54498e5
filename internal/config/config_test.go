package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	c, err := LoadFrom(env(map[string]string{"DATABASE_URL": "postgres://u@h/db", "CERTDESK_PII_KEYS": "k1:x", "CERTDESK_BLIND_INDEX_KEY": "y"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.TemporalAddress != "127.0.0.1:7233" || c.SMTPPort != 1025 || c.SMTPTimeout != 15*time.Second || c.SMTPTLSPolicy != "opportunistic" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	cases := []struct {
		name, value, want string
	}{
		{"DATABASE_URL", "", "DATABASE_URL is not set"},
		{"DATABASE_URL", "mysql://x", "DATABASE_URL"},
		{"CERTDESK_SMTP_PORT", "abc", "CERTDESK_SMTP_PORT"},
		{"CERTDESK_SMTP_PORT", "70000", "CERTDESK_SMTP_PORT"},
		{"CERTDESK_SMTP_TLS", "sometimes", "CERTDESK_SMTP_TLS"},
		{"CERTDESK_TEMPORAL_ADDRESS", "nohostport", "CERTDESK_TEMPORAL_ADDRESS"},
		{"CERTDESK_SMTP_TIMEOUT", "-1s", "CERTDESK_SMTP_TIMEOUT"},
		{"CERTDESK_PUBLIC_BASE_URL", "ftp://x", "CERTDESK_PUBLIC_BASE_URL"},
		{"CERTDESK_LOG_LEVEL", "loud", "CERTDESK_LOG_LEVEL"},
		{"CERTDESK_CT_POLICY", "firefox", "CERTDESK_CT_POLICY"},
		{"CERTDESK_WEAK_KEYS_DIR", "/nonexistent-weak-keys", "CERTDESK_WEAK_KEYS_DIR"},
		{"CERTDESK_WEAK_KEYS_DIR", ".", "no file named blacklist.RSA"},
		{"CERTDESK_TRUSTED_PROXIES", "10.0.0.0/8,proxy.example", "CERTDESK_TRUSTED_PROXIES"},
		{"CERTDESK_TRUSTED_PROXIES", "10.0.0.1", "CERTDESK_TRUSTED_PROXIES"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			m := map[string]string{"DATABASE_URL": "postgres://u@h/db", "CERTDESK_PII_KEYS": "k1:x", "CERTDESK_BLIND_INDEX_KEY": "y"}
			m[tc.name] = tc.value
			_, err := LoadFrom(env(m))
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line naming %s", err, tc.want)
			}
		})
	}
}

func TestWeakKeysDir(t *testing.T) {
	dir := "../pki/goodkey/testdata/weakkeys"
	c, err := LoadFrom(env(map[string]string{"DATABASE_URL": "postgres://u@h/db", "CERTDESK_PII_KEYS": "k1:x", "CERTDESK_BLIND_INDEX_KEY": "y", "CERTDESK_WEAK_KEYS_DIR": dir}))
	if err != nil {
		t.Fatal(err)
	}
	if c.WeakKeysDir != dir {
		t.Fatalf("WeakKeysDir = %q", c.WeakKeysDir)
	}
}

func TestSecretsAreNotEchoed(t *testing.T) {
	if got := redact("CERTDESK_SMTP_PASSWORD", "hunter2"); got == "hunter2" {
		t.Fatal("password echoed in an error")
	}
}

func TestMarkdownListsEveryVariable(t *testing.T) {
	md := Markdown()
	for _, v := range Vars() {
		if !strings.Contains(md, "`"+v.Name+"`") {
			t.Errorf("%s missing from the README table", v.Name)
		}
	}
}

// TestTrustedProxies: empty by default (no proxy trusted), else the listed
// CIDR ranges.
func TestTrustedProxies(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://u@h/db", "CERTDESK_PII_KEYS": "k1:x", "CERTDESK_BLIND_INDEX_KEY": "y"}
	c, err := LoadFrom(env(base))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedProxies) != 0 {
		t.Fatalf("default trusts %v, want no proxy", c.TrustedProxies)
	}
	base["CERTDESK_TRUSTED_PROXIES"] = " 10.0.0.0/8, fd00::1/8 "
	c, err = LoadFrom(env(base))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[0].String() != "10.0.0.0/8" || c.TrustedProxies[1].String() != "fd00::/8" {
		t.Fatalf("TrustedProxies %v", c.TrustedProxies)
	}
}

// TestCTDisabledOnlyOnADevelopmentStack: CERTDESK_CT_DISABLED is refused
// unless CERTDESK_DCV_DEV_NETWORKS marks a development stack.
func TestCTDisabledOnlyOnADevelopmentStack(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://u@h/db", "CERTDESK_PII_KEYS": "k1:x", "CERTDESK_BLIND_INDEX_KEY": "y",
		"CERTDESK_CT_DISABLED": "true"}
	if _, err := LoadFrom(env(base)); err == nil || !strings.Contains(err.Error(), "CERTDESK_DCV_DEV_NETWORKS") {
		t.Fatalf("CT disabled in production: err = %v, want a refusal naming CERTDESK_DCV_DEV_NETWORKS", err)
	}
	base["CERTDESK_DCV_DEV_NETWORKS"] = "127.0.0.0/8"
	c, err := LoadFrom(env(base))
	if err != nil || !c.CTDisabled {
		t.Fatalf("CT disabled on a development stack: %v, CTDisabled=%v", err, c != nil && c.CTDisabled)
	}
	delete(base, "CERTDESK_CT_DISABLED")
	if c, err := LoadFrom(env(base)); err != nil || c.CTDisabled {
		t.Fatalf("default: %v, CTDisabled=%v; want CT on", err, c != nil && c.CTDisabled)
	}
}

// TestACMEListener: the ACME listener defaults to 127.0.0.1:8443 with no
// certificate (off); an address or certificate file that cannot work is
// refused naming the variable.
func TestACMEListener(t *testing.T) {
	base := func() map[string]string {
		return map[string]string{"DATABASE_URL": "postgres://u@h/db", "CERTDESK_PII_KEYS": "k1:x", "CERTDESK_BLIND_INDEX_KEY": "y"}
	}
	c, err := LoadFrom(env(base()))
	if err != nil {
		t.Fatal(err)
	}
	if c.ACMEAddr != "127.0.0.1:8443" || c.ACMETLSCert != "" || c.ACMETLSKey != "" {
		t.Fatalf("defaults: %q %q %q", c.ACMEAddr, c.ACMETLSCert, c.ACMETLSKey)
	}
	m := base()
	m["CERTDESK_ACME_ADDR"], m["CERTDESK_ACME_TLS_CERT"], m["CERTDESK_ACME_TLS_KEY"] = "0.0.0.0:9443", "config.go", "config_test.go"
	if c, err = LoadFrom(env(m)); err != nil || c.ACMEAddr != "0.0.0.0:9443" || c.ACMETLSCert != "config.go" || c.ACMETLSKey != "config_test.go" {
		t.Fatalf("set: %+v %v", c, err)
	}
	for k, v := range map[string]string{"CERTDESK_ACME_ADDR": "8443", "CERTDESK_ACME_TLS_CERT": "/nonexistent/acme.pem", "CERTDESK_ACME_TLS_KEY": "/nonexistent/key.pem"} {
		m := base()
		m[k] = v
		if _, err := LoadFrom(env(m)); err == nil || !strings.Contains(err.Error(), k) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%s: got %v, want one line naming it", k, v, err)
		}
	}
}
