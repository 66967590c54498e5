// Package config reads CertDesk's configuration from environment variables.
//
// Every variable has a documented default except the few that must be chosen
// deliberately (the database URL, secrets). A missing or malformed value is
// reported as one error naming the variable, so a process can print it on one
// line and exit non-zero instead of starting half-configured.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"certdesk/internal/ct"
	"certdesk/internal/mpic"
	"certdesk/internal/pki/goodkey"
)

// Config is the whole configuration shared by the worker and the starter.
type Config struct {
	DatabaseURL string

	TemporalAddress   string
	TemporalNamespace string
	TemporalUIURL     string

	HTTPAddr      string
	PublicBaseURL string
	// ACMEAddr is the starter's HTTPS listener for the ACME server
	// (https://<addr>/acme/directory); it serves only with ACMETLSCert and
	// ACMETLSKey set.
	ACMEAddr    string
	ACMETLSCert string
	ACMETLSKey  string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For the
	// starter believes for the client address; empty trusts none.
	TrustedProxies []netip.Prefix

	SMTPHost      string
	SMTPPort      int
	SMTPTLSPolicy string // mandatory, opportunistic or none
	SMTPUsername  string
	SMTPPassword  string
	SMTPTimeout   time.Duration
	MailFrom      string
	MailReplyTo   string
	StaffEmail    string

	LogLevel slog.Level

	PIIKeys       string // key ring "id:base64key,…", newest last (internal/pii)
	BlindIndexKey string // base64 HMAC key for lookups (internal/pii)

	CADir        string
	CAPassphrase string
	PKCS11Module string
	PKCS11Token  string
	PKCS11PIN    string
	DCVHTTPPort  int
	DCVResolver  string
	// DCVDevNetworks are special-purpose address ranges domain validation
	// may reach: development and tests only (loopback); empty in production.
	DCVDevNetworks []netip.Prefix
	// Perspectives are the remote network perspectives every domain
	// validation is corroborated from (BR §3.2.2.9), each a worker on its own
	// task queue.
	Perspectives []mpic.Perspective
	// CTLogList is the path of the Certificate Transparency log list (v3
	// log_list.json); empty: TLS certificates cannot be issued. CTPolicy
	// names the root programs' CT rules every TLS certificate must meet.
	CTLogList string
	CTPolicy  ct.Policy
	// CTDisabled issues TLS certificates without Certificate Transparency
	// (no precertificate, no SCTs: no browser accepts them). Benchmark
	// comparison only: refused unless CERTDESK_DCV_DEV_NETWORKS marks a
	// development stack.
	CTDisabled bool
	// CAADomains are the issuer domain names by which CAA records authorize
	// this CA (its CP/CPS lists them).
	CAADomains   []string
	RegistryFile string
	// WeakKeysDir holds the Debian weak-key lists (BR §6.1.1.3); package
	// goodkey reads the same variable itself, once, on the first RSA check.
	WeakKeysDir string
	BulkRate    float64
	CRLRefresh  time.Duration

	CodecKey   string // Temporal payload codec key (ring) for internal/codec
	StaffToken string // bearer token of the starter's /codec endpoints
}

// Var documents one environment variable.
type Var struct {
	Name     string
	Default  string
	Required bool
	Help     string
	parse    func(c *Config, v string) error
}

// Vars lists every variable CertDesk reads, in the order the README shows them.
func Vars() []Var {
	return []Var{
		{Name: "DATABASE_URL", Required: true, Help: "PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/certdesk?sslmode=disable",
			parse: func(c *Config, v string) error {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
					return errors.New("must be a postgres:// URL")
				}
				c.DatabaseURL = v
				return nil
			}},
		{Name: "CERTDESK_TEMPORAL_ADDRESS", Default: "127.0.0.1:7233", Help: "Temporal frontend host:port",
			parse: func(c *Config, v string) error { return hostPort(v, &c.TemporalAddress) }},
		{Name: "CERTDESK_TEMPORAL_NAMESPACE", Default: "default", Help: "Temporal namespace",
			parse: func(c *Config, v string) error { return nonEmpty(v, &c.TemporalNamespace) }},
		{Name: "CERTDESK_TEMPORAL_UI_URL", Default: "http://127.0.0.1:8233", Help: "Temporal Web UI base URL, used in staff emails",
			parse: func(c *Config, v string) error { return httpURL(v, &c.TemporalUIURL) }},
		{Name: "CERTDESK_HTTP_ADDR", Default: "127.0.0.1:8080", Help: "starter listen address",
			parse: func(c *Config, v string) error { return hostPort(v, &c.HTTPAddr) }},
		{Name: "CERTDESK_ACME_ADDR", Default: "127.0.0.1:8443", Help: "the starter's HTTPS listen address for the ACME server (RFC 8555); its directory is https://<addr>/acme/directory",
			parse: func(c *Config, v string) error { return hostPort(v, &c.ACMEAddr) }},
		{Name: "CERTDESK_ACME_TLS_CERT", Help: "PEM certificate chain (leaf first) of the ACME listener; with CERTDESK_ACME_TLS_KEY, else the ACME listener is off (make run makes one from the development CA: worker listener-cert)",
			parse: func(c *Config, v string) error { return readableFile(v, &c.ACMETLSCert) }},
		{Name: "CERTDESK_ACME_TLS_KEY", Help: "PEM private key of the ACME listener's certificate",
			parse: func(c *Config, v string) error { return readableFile(v, &c.ACMETLSKey) }},
		{Name: "CERTDESK_PUBLIC_BASE_URL", Default: "http://127.0.0.1:8080", Help: "public base URL printed in certificates (CRL, OCSP, CA issuers) and emails",
			parse: func(c *Config, v string) error { return httpURL(v, &c.PublicBaseURL) }},
		{Name: "CERTDESK_TRUSTED_PROXIES", Help: "CIDR ranges of the reverse proxies in front of the starter, comma-separated, e.g. 10.0.0.0/8,fd00::/8: from them the client address (rate limits, Idempotency-Key scope) is the right-most X-Forwarded-For entry outside these ranges; empty: no proxy is trusted and the header is ignored",
			parse: func(c *Config, v string) error { return prefixes(v, &c.TrustedProxies) }},
		{Name: "CERTDESK_SMTP_HOST", Default: "127.0.0.1", Help: "SMTP server host",
			parse: func(c *Config, v string) error { return nonEmpty(v, &c.SMTPHost) }},
		{Name: "CERTDESK_SMTP_PORT", Default: "1025", Help: "SMTP server port",
			parse: func(c *Config, v string) error { return port(v, &c.SMTPPort) }},
		{Name: "CERTDESK_SMTP_TLS", Default: "opportunistic", Help: "SMTP TLS policy: mandatory, opportunistic or none",
			parse: func(c *Config, v string) error {
				switch v {
				case "mandatory", "opportunistic", "none":
					c.SMTPTLSPolicy = v
					return nil
				}
				return errors.New("must be mandatory, opportunistic or none")
			}},
		{Name: "CERTDESK_SMTP_USERNAME", Help: "SMTP AUTH user (empty: no auth)",
			parse: func(c *Config, v string) error { c.SMTPUsername = v; return nil }},
		{Name: "CERTDESK_SMTP_PASSWORD", Help: "SMTP AUTH password",
			parse: func(c *Config, v string) error { c.SMTPPassword = v; return nil }},
		{Name: "CERTDESK_SMTP_TIMEOUT", Default: "15s", Help: "SMTP dial and command timeout",
			parse: func(c *Config, v string) error { return duration(v, &c.SMTPTimeout) }},
		{Name: "CERTDESK_MAIL_FROM", Default: "CertDesk <noreply@certdesk.example>", Help: "From address of every notice",
			parse: func(c *Config, v string) error { return nonEmpty(v, &c.MailFrom) }},
		{Name: "CERTDESK_MAIL_REPLY_TO", Default: "support@certdesk.example", Help: "Reply-To address of every notice",
			parse: func(c *Config, v string) error { c.MailReplyTo = v; return nil }},
		{Name: "CERTDESK_STAFF_EMAIL", Default: "staff@certdesk.example", Help: "where staff reminders, escalations and system checks go",
			parse: func(c *Config, v string) error { return nonEmpty(v, &c.StaffEmail) }},
		{Name: "CERTDESK_PII_KEYS", Required: true, Help: "personal-data key ring `id:base64(32 bytes),…`, newest last; make a key with `openssl rand -base64 32`",
			parse: func(c *Config, v string) error { c.PIIKeys = v; return nil }},
		{Name: "CERTDESK_BLIND_INDEX_KEY", Required: true, Help: "base64 32-byte HMAC key for email/phone lookups (never rotate without re-indexing)",
			parse: func(c *Config, v string) error { c.BlindIndexKey = v; return nil }},
		{Name: "CERTDESK_CA_DIR", Default: ".run/ca", Help: "CA certificates and manifest (the starter reads certificates only) and, in file mode, the encrypted keys (signer only)",
			parse: func(c *Config, v string) error { c.CADir = v; return nil }},
		{Name: "CERTDESK_CA_PASSPHRASE", Help: "passphrase of the encrypted PKCS#8 CA key files (file mode; signer only)",
			parse: func(c *Config, v string) error { c.CAPassphrase = v; return nil }},
		{Name: "CERTDESK_PKCS11_MODULE", Help: "PKCS#11 module path; set to keep CA keys in an HSM (e.g. /usr/lib/softhsm/libsofthsm2.so)",
			parse: func(c *Config, v string) error { c.PKCS11Module = v; return nil }},
		{Name: "CERTDESK_PKCS11_TOKEN", Help: "PKCS#11 token label",
			parse: func(c *Config, v string) error { c.PKCS11Token = v; return nil }},
		{Name: "CERTDESK_PKCS11_PIN", Help: "PKCS#11 user PIN",
			parse: func(c *Config, v string) error { c.PKCS11PIN = v; return nil }},
		{Name: "CERTDESK_DCV_HTTP_PORT", Default: "80", Help: "port of the HTTP domain validation request: 80 or 443 (BR Authorized Ports); another port only with CERTDESK_DCV_DEV_NETWORKS",
			parse: func(c *Config, v string) error { return port(v, &c.DCVHTTPPort) }},
		{Name: "CERTDESK_DCV_RESOLVER", Default: "127.0.0.1:53", Help: "the CA's DNSSEC-validating resolver host:port for every domain validation lookup",
			parse: func(c *Config, v string) error { return hostPort(v, &c.DCVResolver) }},
		{Name: "CERTDESK_DCV_DEV_NETWORKS", Help: "development only: special-purpose CIDR ranges domain validation may connect to, e.g. 127.0.0.0/8,::1/128 (empty: none, as in production)",
			parse: func(c *Config, v string) error { return prefixes(v, &c.DCVDevNetworks) }},
		{Name: "CERTDESK_PERSPECTIVES", Help: "remote network perspectives for multi-perspective corroboration (BR §3.2.2.9), `name:RIR,…` (RIR one of ARIN, RIPE, APNIC, LACNIC, AFRINIC); each runs `worker -role perspective -name NAME -rir RIR`; TLS issuance needs at least the number the BR requires at the issuance date (5 from 2026-12-15)",
			parse: func(c *Config, v string) error { return perspectives(v, &c.Perspectives) }},
		{Name: "CERTDESK_CT_LOG_LIST", Help: "path of the Certificate Transparency log list in Chrome's v3 log_list.json format; TLS certificates are issued only through these logs (precertificate, SCTs, final certificate), so without it TLS issuance is refused",
			parse: func(c *Config, v string) error { c.CTLogList = v; return nil }},
		{Name: "CERTDESK_CT_POLICY", Default: "chrome,apple", Help: "the CT policies every TLS certificate's SCTs must satisfy, comma-separated: chrome, apple; chrome-static and apple-static drop the RFC 6962-log rule (a development stack whose logs are all Static CT API logs)",
			parse: func(c *Config, v string) (err error) { c.CTPolicy, err = ct.ParsePolicy(v); return err }},
		{Name: "CERTDESK_CT_DISABLED", Default: "false", Help: "benchmark comparison only: `true` issues TLS certificates without precertificates or SCTs, which no browser accepts; refused unless CERTDESK_DCV_DEV_NETWORKS is set (a development stack)",
			parse: func(c *Config, v string) (err error) { c.CTDisabled, err = strconv.ParseBool(v); return err }},
		{Name: "CERTDESK_CAA_DOMAINS", Default: "certdesk.example", Help: "the CA's issuer domain names for CAA (`issue`, `issuewild`, `issuemail` values that authorize it), comma-separated, as the CP/CPS lists them",
			parse: func(c *Config, v string) error {
				c.CAADomains = nil
				for _, d := range strings.Split(v, ",") {
					if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
						c.CAADomains = append(c.CAADomains, d)
					}
				}
				if len(c.CAADomains) == 0 {
					return errors.New("at least one issuer domain name")
				}
				return nil
			}},
		{Name: "CERTDESK_REGISTRY_FILE", Help: "JSON organisation registry for OV checks (a local data set in development)",
			parse: func(c *Config, v string) error { c.RegistryFile = v; return nil }},
		{Name: goodkey.WeakKeysDirEnv, Help: "directory of Debian weak-key lists (CVE-2008-0166; BR §6.1.1.3) in the openssl-blacklist format, files `blacklist.RSA-<bits>` or `<arch>/blocklist-<bits>.db` (subdirectories are read); every RSA key in a CSR is checked against them; empty: no Debian weak-key check (set it in production)",
			parse: func(c *Config, v string) error {
				// Loaded here only to refuse to start on a bad directory;
				// the CSR checks load their own copy on first use.
				if v != "" {
					if _, err := goodkey.LoadWeakKeys(v); err != nil {
						return err
					}
				}
				c.WeakKeysDir = v
				return nil
			}},
		{Name: "CERTDESK_BULK_RATE", Default: "200", Help: "bulk notices per second",
			parse: func(c *Config, v string) error {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f <= 0 {
					return errors.New("must be a positive number")
				}
				c.BulkRate = f
				return nil
			}},
		{Name: "CERTDESK_CRL_REFRESH", Default: "12h", Help: "how often the schedule republishes every CRL shard (BR: at least every 4 days) and refreshes OCSP answers past half their validity",
			parse: func(c *Config, v string) error { return duration(v, &c.CRLRefresh) }},
		{Name: "CERTDESK_LOG_LEVEL", Default: "info", Help: "debug, info, warn or error",
			parse: func(c *Config, v string) error {
				return c.LogLevel.UnmarshalText([]byte(v))
			}},
		{Name: "CERTDESK_CODEC_KEY", Help: "Temporal payload encryption key (AES-256-GCM): base64 of 32 bytes (`openssl rand -base64 32`), or a ring `id:base64,…` newest last; required by every process that talks to Temporal",
			parse: func(c *Config, v string) error { c.CodecKey = v; return nil }},
		{Name: "CERTDESK_STAFF_TOKEN", Help: "bearer token staff tools (Temporal UI, `temporal --codec-auth`) present to the starter's /codec endpoints; at least 16 characters (`openssl rand -hex 24`); empty disables them",
			parse: func(c *Config, v string) error { c.StaffToken = v; return nil }},
	}
}

// Load reads the configuration from the process environment.
func Load() (*Config, error) { return LoadFrom(os.LookupEnv) }

// LoadPerspective reads the configuration of a remote network perspective
// worker: it talks to Temporal and resolves names, and holds no database,
// personal-data or mail credentials, so the variables every other process
// requires are optional here.
func LoadPerspective() (*Config, error) { return loadFrom(os.LookupEnv, false) }

// LoadFrom reads the configuration through lookup, so tests need not touch the
// process environment.
func LoadFrom(lookup func(string) (string, bool)) (*Config, error) { return loadFrom(lookup, true) }

func loadFrom(lookup func(string) (string, bool), enforceRequired bool) (*Config, error) {
	c := &Config{}
	for _, v := range Vars() {
		val, ok := lookup(v.Name)
		val = strings.TrimSpace(val)
		if !ok || val == "" {
			if v.Required && enforceRequired {
				return nil, fmt.Errorf("config: %s is not set (%s)", v.Name, v.Help)
			}
			if v.Required {
				continue
			}
			val = v.Default
		}
		if err := v.parse(c, val); err != nil {
			return nil, fmt.Errorf("config: %s=%q: %v", v.Name, redact(v.Name, val), err)
		}
	}
	if c.CTDisabled && len(c.DCVDevNetworks) == 0 {
		return nil, errors.New("config: CERTDESK_CT_DISABLED=true is for benchmarks on a development stack only (set CERTDESK_DCV_DEV_NETWORKS) and never for certificates anyone relies on: unset it")
	}
	return c, nil
}

// Markdown renders the variable table for the README.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	vars := Vars()
	sort.SliceStable(vars, func(i, j int) bool { return vars[i].Required && !vars[j].Required })
	for _, v := range vars {
		def := "`" + v.Default + "`"
		if v.Required {
			def = "**required**"
		} else if v.Default == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, v.Help)
	}
	return b.String()
}

func redact(name, v string) string {
	if strings.Contains(name, "PASSWORD") || strings.Contains(name, "KEY") || strings.Contains(name, "SECRET") || strings.Contains(name, "PIN") || strings.Contains(name, "PASSPHRASE") {
		return "…"
	}
	return v
}

func nonEmpty(v string, dst *string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	*dst = v
	return nil
}

func perspectives(v string, dst *[]mpic.Perspective) error {
	*dst = nil
	seen := map[string]bool{}
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		name, rir, ok := strings.Cut(f, ":")
		if !ok || !perspectiveName.MatchString(name) || !mpic.ValidRIR(rir) {
			return fmt.Errorf("%q: want name:RIR, name of a-z, 0-9 and -, RIR one of %s", f, strings.Join(mpic.RIRs, ", "))
		}
		if seen[name] {
			return fmt.Errorf("perspective %q is listed twice", name)
		}
		seen[name] = true
		*dst = append(*dst, mpic.Perspective{Name: name, RIR: rir})
	}
	return nil
}

var perspectiveName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

func prefixes(v string, dst *[]netip.Prefix) error {
	*dst = nil
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR prefix (e.g. 127.0.0.0/8)", f)
		}
		*dst = append(*dst, p.Masked())
	}
	return nil
}

// readableFile accepts a path to a file that can be opened.
func readableFile(v string, dst *string) error {
	if v == "" {
		*dst = ""
		return nil
	}
	f, err := os.Open(v)
	if err != nil {
		return fmt.Errorf("cannot read the file: %v", err)
	}
	_ = f.Close()
	*dst = v
	return nil
}

func hostPort(v string, dst *string) error {
	_, p, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("must be host:port")
	}
	var n int
	if err := port(p, &n); err != nil {
		return err
	}
	*dst = v
	return nil
}

func port(v string, dst *int) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("must be a port number 1-65535")
	}
	*dst = n
	return nil
}

func httpURL(v string, dst *string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an http(s) URL")
	}
	*dst = strings.TrimRight(v, "/")
	return nil
}

func duration(v string, dst *time.Duration) error {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return errors.New("must be a positive duration such as 15s")
	}
	*dst = d
	return nil
}
