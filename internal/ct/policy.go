package ct

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rules is one root program's requirement on embedded SCTs.
type Rules struct {
	Name string
	// SCTs required from distinct logs, for a lifetime of at most 180 days
	// (Short) and beyond (Long).
	ShortSCTs, LongSCTs int
	// MaxPerOperatorShort/Long cap how many SCTs of one operator count
	// towards that number; 0: no cap.
	MaxPerOperatorShort, MaxPerOperatorLong int
	// MinOperators: distinct log operators among the counted SCTs.
	MinOperators int
	// RFC6962Required: at least one counted SCT from an RFC 6962 log, for
	// certificates whose notBefore is before RFC6962Until (zero: always).
	RFC6962Required bool
	RFC6962Until    time.Time
}

// Chrome is the Chrome CT Policy for embedded SCTs
// (https://googlechrome.github.io/CertificateTransparency/ct_policy.html):
// SCTs from at least 2 distinct logs for a lifetime ≤ 180 days, 3 beyond,
// from logs Qualified, Usable, ReadOnly or Retired at check (CertDesk only
// submits to Qualified or Usable ones); among them at least 2 distinct log
// operators; and, only before 15 April 2026, one SCT from an RFC 6962 log.
var Chrome = Rules{
	Name: "Chrome", ShortSCTs: 2, LongSCTs: 3, MinOperators: 2,
	RFC6962Required: true, RFC6962Until: time.Date(2026, 4, 15, 0, 0, 0, 0, time.UTC),
}

// Apple is Apple's CT policy (https://support.apple.com/103214): SCTs from
// 2 distinct logs for a lifetime of 180 days or less with at most 1 per
// operator counting, 3 for 181 to 398 days with at most 2 per operator
// counting; at least one SCT from a log compliant with RFC 6962.
var Apple = Rules{
	Name: "Apple", ShortSCTs: 2, LongSCTs: 3, MaxPerOperatorShort: 1, MaxPerOperatorLong: 2, MinOperators: 2,
	RFC6962Required: true,
}

// Policy is the set of root programs' rules a certificate must satisfy, all
// at once.
type Policy []Rules

// Default is what CertDesk's TLS certificates must satisfy: Chrome and Apple.
var Default = Policy{Chrome, Apple}

// ParsePolicy reads a comma-separated list of rule names ("chrome,apple"),
// for configuration; "chrome-static,apple-static" drop the RFC 6962-log
// requirement (a deployment whose logs are all Static CT API logs, like the
// local development logs, cannot satisfy it; such certificates then fail
// Apple's policy and Chrome's for a notBefore before 15 April 2026).
func ParsePolicy(s string) (Policy, error) {
	var p Policy
	for _, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		base, static := strings.CutSuffix(name, "-static")
		var r Rules
		switch base {
		case "chrome":
			r = Chrome
		case "apple":
			r = Apple
		default:
			return nil, fmt.Errorf("CT policy %q: want a comma-separated list of chrome, apple, chrome-static, apple-static", s)
		}
		if static {
			r.Name += " (static logs allowed)"
			r.RFC6962Required = false
		}
		p = append(p, r)
	}
	return p, nil
}

// longLifetime: more than 180 days, the lifetime measured as RFC 5280 and
// Apple do (notBefore through notAfter inclusive, so one second more than
// the difference; any part of a day counts as a day). It is also the
// stricter reading of Chrome's "<= 180 days".
func longLifetime(notBefore, notAfter time.Time) bool {
	return notAfter.Sub(notBefore)+time.Second > 180*24*time.Hour
}

// Required returns how many SCTs from distinct logs the policy needs for a
// certificate valid from notBefore to notAfter.
func (p Policy) Required(notBefore, notAfter time.Time) int {
	n := 0
	for _, r := range p {
		n = max(n, r.required(notBefore, notAfter))
	}
	return n
}

func (r Rules) required(notBefore, notAfter time.Time) int {
	if longLifetime(notBefore, notAfter) {
		return r.LongSCTs
	}
	return r.ShortSCTs
}

func (r Rules) perOperatorCap(notBefore, notAfter time.Time) int {
	if longLifetime(notBefore, notAfter) {
		return r.MaxPerOperatorLong
	}
	return r.MaxPerOperatorShort
}

func (r Rules) needsRFC6962(notBefore time.Time) bool {
	return r.RFC6962Required && (r.RFC6962Until.IsZero() || notBefore.Before(r.RFC6962Until))
}

// ErrPolicy is wrapped by Satisfied's and Candidates' refusals.
var ErrPolicy = errors.New("CT policy not satisfied")

// Candidates returns the logs of the list a precertificate valid from
// notBefore to notAfter may be submitted to at now (Usable or Qualified, its
// temporal shard containing notAfter), ordered so that taking them from the
// front satisfies the policy as early as possible: an RFC 6962 log first when
// one is required, then operators in turn. It refuses when even all of them
// could not satisfy the policy.
func (p Policy) Candidates(list *LogList, notBefore, notAfter, now time.Time) ([]*Log, error) {
	var eligible []*Log
	for _, l := range list.Logs {
		if l.UsableAt(now) && l.AcceptsNotAfter(notAfter) {
			eligible = append(eligible, l)
		}
	}
	// Round-robin over operators (in list order), RFC 6962 logs first within
	// each operator, so that the first Required() logs span operators.
	var ops []string
	byOp := map[string][]*Log{}
	for _, l := range eligible {
		if _, ok := byOp[l.Operator]; !ok {
			ops = append(ops, l.Operator)
		}
		byOp[l.Operator] = append(byOp[l.Operator], l)
	}
	for _, op := range ops {
		slices.SortStableFunc(byOp[op], func(a, b *Log) int { return kindRank(a) - kindRank(b) })
	}
	var out []*Log
	for i := 0; len(out) < len(eligible); i++ {
		for _, op := range ops {
			if i < len(byOp[op]) {
				out = append(out, byOp[op][i])
			}
		}
	}
	if i := slices.IndexFunc(out, func(l *Log) bool { return l.Kind == RFC6962 }); i > 0 {
		l := out[i]
		out = slices.Insert(slices.Delete(out, i, i+1), 0, l)
	}
	// Would SCTs from every candidate be enough?
	all := make([]*Log, len(out))
	copy(all, out)
	if err := p.check(all, notBefore, notAfter); err != nil {
		return nil, fmt.Errorf("%w: the log list cannot satisfy it for a certificate expiring %s: %v (%d usable logs whose shard covers it, of %d listed)",
			ErrPolicy, notAfter.UTC().Format(time.RFC3339), err, len(eligible), len(list.Logs))
	}
	return out, nil
}

func kindRank(l *Log) int {
	if l.Kind == RFC6962 {
		return 0
	}
	return 1
}

// Satisfied checks that the SCTs, each from a log of the list that was Usable
// or Qualified when it signed it and whose shard covers notAfter, satisfy
// every rule of the policy; otherwise it says which and why. It does not
// check signatures (Submit does, before an SCT is kept).
func (p Policy) Satisfied(list *LogList, scts []SCT, notBefore, notAfter time.Time) error {
	var logs []*Log
	seen := map[*Log]bool{}
	var skipped []string
	for _, s := range scts {
		l := list.ByID(s.LogID)
		switch {
		case l == nil:
			skipped = append(skipped, fmt.Sprintf("an SCT from log %x, not in the list", s.LogID[:8]))
		case seen[l]:
			skipped = append(skipped, fmt.Sprintf("a second SCT from %q", l.Description))
		case !l.UsableAt(s.Time()):
			skipped = append(skipped, fmt.Sprintf("the SCT from %q (%s since %s, SCT of %s)", l.Description, l.State, l.StateSince.Format(time.RFC3339), s.Time().Format(time.RFC3339)))
		case !l.AcceptsNotAfter(notAfter):
			skipped = append(skipped, fmt.Sprintf("the SCT from %q (its shard does not cover notAfter)", l.Description))
		default:
			seen[l] = true
			logs = append(logs, l)
		}
	}
	if err := p.check(logs, notBefore, notAfter); err != nil {
		note := ""
		if len(skipped) > 0 {
			note = "; not counted: " + strings.Join(skipped, ", ")
		}
		return fmt.Errorf("%w: %v%s", ErrPolicy, err, note)
	}
	return nil
}

// check applies every rule to SCTs from the given distinct logs.
func (p Policy) check(logs []*Log, notBefore, notAfter time.Time) error {
	if len(p) == 0 {
		return errors.New("no CT policy configured")
	}
	for _, r := range p {
		if err := r.check(logs, notBefore, notAfter); err != nil {
			return fmt.Errorf("%s: %w", r.Name, err)
		}
	}
	return nil
}

func (r Rules) check(logs []*Log, notBefore, notAfter time.Time) error {
	want := r.required(notBefore, notAfter)
	limit := r.perOperatorCap(notBefore, notAfter)
	perOp := map[string]int{}
	counted, rfc := 0, 0
	for _, l := range logs {
		if limit > 0 && perOp[l.Operator] >= limit {
			continue
		}
		perOp[l.Operator]++
		counted++
		if l.Kind == RFC6962 {
			rfc++
		}
	}
	days := "at most 180 days"
	if longLifetime(notBefore, notAfter) {
		days = "over 180 days"
	}
	switch {
	case counted < want:
		capNote := ""
		if limit > 0 {
			capNote = fmt.Sprintf(", counting at most %d per operator", limit)
		}
		return fmt.Errorf("%d SCTs from distinct logs%s, need %d for a lifetime of %s", counted, capNote, want, days)
	case len(perOp) < r.MinOperators:
		return fmt.Errorf("SCTs from %d log operator(s), need %d distinct operators", len(perOp), r.MinOperators)
	case r.needsRFC6962(notBefore) && rfc == 0:
		return errors.New("no SCT from an RFC 6962 log (Static CT API logs alone do not satisfy it)")
	}
	return nil
}
