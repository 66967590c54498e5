package disclosure

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"sort"
	"strings"
	"time"
)

//go:embed templates/*.tmpl
var templateFiles embed.FS

// jst is the zone the summary shows times in: the requester reads Japanese
// local time, as in every notice.
var jst = time.FixedZone("JST", 9*60*60)

func jstTime(t time.Time) string { return t.In(jst).Format("2006-01-02 15:04 MST") }

var summary = template.Must(template.New("package.html.tmpl").Funcs(template.FuncMap{
	"t": jstTime,
	"tp": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return jstTime(*t)
	},
	"join": func(v []string) string { return strings.Join(v, ", ") },
	"kv": func(m map[string]string) string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + m[k]
		}
		return strings.Join(parts, " / ")
	},
}).ParseFS(templateFiles, "templates/package.html.tmpl"))

// Marshal is the package's JSON form: indented, HTML characters not
// escaped, a final newline. These bytes are what the CA signs.
func Marshal(p *Package) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// RenderHTML is the readable summary of a package (Japanese first, English
// too), delivered next to the signed JSON.
func RenderHTML(p *Package) ([]byte, error) {
	var b bytes.Buffer
	if err := summary.Execute(&b, p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// DigestOf is the hex SHA-256 of a package's JSON: what the workflow holds
// and the signer checks the draft against.
func DigestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
