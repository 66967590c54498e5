package mailer

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// Rendered is one notice rendered: a single-line subject, a plain-text body and
// an HTML body, each Japanese first and English second.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
}

// JST is Japan Standard Time. Japan has no daylight saving time, so a fixed
// zone is exact and needs no tzdata.
var JST = time.FixedZone("JST", 9*60*60)

type noticeTemplates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

var templates = mustParseTemplates()

func mustParseTemplates() map[Notice]noticeTemplates {
	out := make(map[Notice]noticeTemplates, len(dataTypes))
	for n := range dataTypes {
		base := "templates/" + string(n)
		subj, err := texttemplate.New(string(n)+".subject.tmpl").Funcs(funcs).Option("missingkey=error").
			ParseFS(templateFS, base+".subject.tmpl")
		if err != nil {
			panic(fmt.Sprintf("mailer: template %s: %v", n, err))
		}
		text, err := texttemplate.New(string(n)+".txt.tmpl").Funcs(funcs).Option("missingkey=error").
			ParseFS(templateFS, "templates/_common.txt.tmpl", base+".txt.tmpl")
		if err != nil {
			panic(fmt.Sprintf("mailer: template %s: %v", n, err))
		}
		html, err := htmltemplate.New(string(n)+".html.tmpl").Funcs(funcs).Option("missingkey=error").
			ParseFS(templateFS, "templates/_common.html.tmpl", base+".html.tmpl")
		if err != nil {
			panic(fmt.Sprintf("mailer: template %s: %v", n, err))
		}
		out[n] = noticeTemplates{subj, text, html}
	}
	return out
}

// Render renders a notice. data must be the notice's data type (see
// DataType), by value or pointer, and valid; otherwise the error wraps
// ErrBadData and names the expected type.
func Render(n Notice, data any) (Rendered, error) {
	d, err := checkData(n, data)
	if err != nil {
		return Rendered{}, err
	}
	t := templates[n]
	var b bytes.Buffer
	if err := t.subject.Execute(&b, d); err != nil {
		return Rendered{}, fmt.Errorf("mailer: render %s subject: %w", n, err)
	}
	subject := strings.Join(strings.Fields(b.String()), " ")
	b.Reset()
	if err := t.text.Execute(&b, d); err != nil {
		return Rendered{}, fmt.Errorf("mailer: render %s text: %w", n, err)
	}
	text := tidyText(b.String())
	b.Reset()
	if err := t.html.Execute(&b, d); err != nil {
		return Rendered{}, fmt.Errorf("mailer: render %s html: %w", n, err)
	}
	return Rendered{Subject: subject, Text: text, HTML: strings.TrimSpace(b.String()) + "\n"}, nil
}

// tidyText trims trailing spaces, collapses runs of blank lines left by
// conditional sections and ends the text with one newline.
func tidyText(s string) string {
	lines := strings.Split(s, "\n")
	out := make([]string, 0, len(lines))
	blank := true // drop leading blank lines
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n"
}

var jaWeekdays = [...]string{"日", "月", "火", "水", "木", "金", "土"}

// Template functions shared by the text and HTML templates.
var funcs = map[string]any{
	// div: whole hours from minutes in the code notices.
	"div": func(a, b int) int { return a / b },
	// jaTime: 2026年10月5日（月）14:03（日本時間）／2026-10-05 05:03 UTC
	"jaTime": func(t time.Time) string {
		j := t.In(JST)
		return fmt.Sprintf("%d年%d月%d日（%s）%02d:%02d（日本時間）／%s",
			j.Year(), int(j.Month()), j.Day(), jaWeekdays[j.Weekday()], j.Hour(), j.Minute(), t.UTC().Format("2006-01-02 15:04 UTC"))
	},
	// enTime: Mon 5 Oct 2026 14:03 JST (2026-10-05 05:03 UTC)
	"enTime": func(t time.Time) string {
		return t.In(JST).Format("Mon 2 Jan 2006 15:04 MST") + " (" + t.UTC().Format("2006-01-02 15:04 UTC") + ")"
	},
	// jaDate / enDate: a calendar date in Japan.
	"jaDate": func(t time.Time) string {
		j := t.In(JST)
		return fmt.Sprintf("%d年%d月%d日（%s）", j.Year(), int(j.Month()), j.Day(), jaWeekdays[j.Weekday()])
	},
	"enDate":    func(t time.Time) string { return t.In(JST).Format("Monday 2 January 2006") },
	"productJA": func(p string) string { return label(productLabels, p, 0) },
	"productEN": func(p string) string { return label(productLabels, p, 1) },
	"caseJA":    func(c string) string { return label(caseLabels, c, 0) },
	"caseEN":    func(c string) string { return label(caseLabels, c, 1) },
	"fieldJA":   func(f string) string { return label(FieldLabels, f, 0) },
	"fieldEN":   func(f string) string { return label(FieldLabels, f, 1) },
	"reasonJA":  func(r RevocationReason) string { return r.Japanese() },
	"reasonEN":  func(r RevocationReason) string { return r.English() },
	"groundJA":  func(g DisclosureGround) string { return groundLabels[g][0] },
	"groundEN":  func(g DisclosureGround) string { return groundLabels[g][1] },
	"lines": func(s string) []string {
		return strings.Split(strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n")), "\n")
	},
	"indent": func(prefix, s string) string {
		ls := strings.Split(strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n")), "\n")
		return prefix + strings.Join(ls, "\n"+prefix)
	},
	"defaultStr": func(def, s string) string {
		if strings.TrimSpace(s) == "" {
			return def
		}
		return s
	},
}

func label(m map[string][2]string, key string, i int) string {
	if l, ok := m[key]; ok {
		return l[i]
	}
	return key
}
