// Package mpic holds the rules of Multi-Perspective Issuance Corroboration
// (BR §3.2.2.9): how many remote network perspectives a domain validation or
// CAA check must be repeated from on a given date, how many of them may fail
// to corroborate the primary perspective, and the Regional Internet Registry
// spread the corroborating ones must have. The workflows call Corroborate
// with every perspective's determination; nothing here does I/O.
package mpic

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Perspective is one network vantage point. Name is its task queue suffix
// (certdesk-perspective-<name>); RIR the Regional Internet Registry whose
// service region it sits in (ARIN, RIPE, APNIC, LACNIC, AFRINIC).
type Perspective struct {
	Name string
	RIR  string
}

// RIRs are the Regional Internet Registries.
var RIRs = []string{"AFRINIC", "APNIC", "ARIN", "LACNIC", "RIPE"}

// ValidRIR reports whether s names a Regional Internet Registry.
func ValidRIR(s string) bool {
	for _, r := range RIRs {
		if r == s {
			return true
		}
	}
	return false
}

// Requirement is what §3.2.2.9 demands on one date.
type Requirement struct {
	Since     time.Time // when this phase took effect
	MinRemote int       // remote perspectives the CA must use
	Enforce   bool      // false: issuance may proceed over a failed quorum
	MinRIRs   int       // distinct RIRs among the corroborating remotes (0: no rule)
}

// phases is the Phased Implementation Timeline of §3.2.2.9.
var phases = []Requirement{
	{Since: date(2025, 3, 15), MinRemote: 2, Enforce: false},
	{Since: date(2025, 9, 15), MinRemote: 2, Enforce: true},
	{Since: date(2026, 3, 15), MinRemote: 3, Enforce: true, MinRIRs: 2},
	{Since: date(2026, 6, 15), MinRemote: 4, Enforce: true, MinRIRs: 2},
	{Since: date(2026, 12, 15), MinRemote: 5, Enforce: true, MinRIRs: 2},
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// RequirementAt is the phase in force at t. Before the first mandatory
// phase CertDesk applies it anyway: corroboration is never optional here.
func RequirementAt(t time.Time) Requirement {
	r := phases[0]
	for _, p := range phases {
		if !t.Before(p.Since) {
			r = p
		}
	}
	return r
}

// AllowedNonCorroborations is the Quorum Requirements table: 1 for 2–5
// distinct remote perspectives used, 2 for 6 or more.
func AllowedNonCorroborations(remoteUsed int) int {
	switch {
	case remoteUsed < 2:
		return 0
	case remoteUsed < 6:
		return 1
	}
	return 2
}

// Determination is one perspective's answer. For domain validation it is
// "valid" when the random value was found; for CAA "permit" when issuance
// is allowed. Anything else ("invalid", "forbid", "error: …") does not
// corroborate a positive primary determination.
type Determination struct {
	Perspective string    `json:"perspective"`
	RIR         string    `json:"rir"`
	Outcome     string    `json:"outcome"`
	Detail      string    `json:"detail,omitempty"` // what was seen: the record, the error
	At          time.Time `json:"at"`
}

// Decision is the corroboration verdict with its arithmetic, for the
// stored evidence and for staff.
type Decision struct {
	OK               bool     `json:"ok"`
	Required         int      `json:"required_remote"`
	Used             int      `json:"remote_used"`
	Corroborating    []string `json:"corroborating"`
	NonCorroborating []string `json:"non_corroborating"`
	Allowed          int      `json:"allowed_non_corroborations"`
	RIRs             []string `json:"corroborating_rirs"`
	Reason           string   `json:"reason"`
}

// Corroborate judges the remote determinations against the primary one at
// time at. Remotes are counted once per perspective name (a perspective
// answering twice is one perspective); a remote that did not answer at all
// should be passed with an "error: …" outcome so it counts as used and not
// corroborating.
func Corroborate(primary Determination, remotes []Determination, at time.Time) Decision {
	req := RequirementAt(at)
	d := Decision{Required: req.MinRemote}
	seen := map[string]bool{}
	rirs := map[string]bool{}
	for _, r := range remotes {
		if seen[r.Perspective] || r.Perspective == primary.Perspective {
			continue
		}
		seen[r.Perspective] = true
		d.Used++
		if r.Outcome == primary.Outcome {
			d.Corroborating = append(d.Corroborating, r.Perspective)
			rirs[r.RIR] = true
		} else {
			d.NonCorroborating = append(d.NonCorroborating, r.Perspective+" ("+r.Outcome+")")
		}
	}
	for r := range rirs {
		d.RIRs = append(d.RIRs, r)
	}
	sort.Strings(d.RIRs)
	d.Allowed = AllowedNonCorroborations(d.Used)
	switch {
	case d.Used < req.MinRemote:
		d.Reason = fmt.Sprintf("BR §3.2.2.9: %d remote perspectives answered, %d required since %s", d.Used, req.MinRemote, req.Since.Format("2006-01-02"))
	case len(d.NonCorroborating) > d.Allowed:
		d.Reason = fmt.Sprintf("BR §3.2.2.9: %d of %d remote perspectives do not corroborate the primary's %q (at most %d allowed): %s",
			len(d.NonCorroborating), d.Used, primary.Outcome, d.Allowed, strings.Join(d.NonCorroborating, ", "))
	case req.MinRIRs > 0 && len(d.RIRs) < req.MinRIRs:
		d.Reason = fmt.Sprintf("BR §3.2.2.9: the corroborating perspectives lie in %d Regional Internet Registry region(s) (%s); at least %d required",
			len(d.RIRs), strings.Join(d.RIRs, ", "), req.MinRIRs)
	default:
		d.OK = true
		d.Reason = fmt.Sprintf("corroborated by %d of %d remote perspectives in %s", len(d.Corroborating), d.Used, strings.Join(d.RIRs, ", "))
		return d
	}
	if !req.Enforce {
		// The 2025-03-15 phase let issuance proceed over a failed quorum;
		// CertDesk records the failure but never relies on that phase.
		d.Reason += " (recorded; not enforced in this phase)"
	}
	return d
}

// Development is the perspective set of the local stacks (make run, the
// tests, the benchmarks): five remote perspectives in three RIR regions, as
// many as §3.2.2.9 asks from 2026-12-15. Locally they share one machine;
// the RIR is where a real deployment would place each one.
var Development = []Perspective{
	{Name: "us-east", RIR: "ARIN"}, {Name: "eu-west", RIR: "RIPE"}, {Name: "ap-northeast", RIR: "APNIC"},
	{Name: "us-west", RIR: "ARIN"}, {Name: "eu-central", RIR: "RIPE"},
}

// Format writes ps as CERTDESK_PERSPECTIVES takes them: name:RIR,….
func Format(ps []Perspective) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Name + ":" + p.RIR
	}
	return strings.Join(s, ",")
}
