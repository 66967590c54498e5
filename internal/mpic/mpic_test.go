package mpic

import (
	"strings"
	"testing"
	"time"
)

func remotes(outcomes ...string) []Determination {
	rirs := []string{"ARIN", "RIPE", "APNIC", "LACNIC", "AFRINIC", "ARIN", "RIPE"}
	var out []Determination
	for i, o := range outcomes {
		out = append(out, Determination{Perspective: string(rune('a' + i)), RIR: rirs[i%len(rirs)], Outcome: o})
	}
	return out
}

func TestTimeline(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		min  int
		rirs int
	}{
		{date(2025, 9, 15), 2, 0}, {date(2026, 3, 15), 3, 2}, {date(2026, 12, 4), 4, 2},
		{date(2026, 12, 15), 5, 2}, {date(2030, 1, 1), 5, 2},
	} {
		r := RequirementAt(tc.at)
		if r.MinRemote != tc.min || r.MinRIRs != tc.rirs || !r.Enforce {
			t.Errorf("%s: %+v", tc.at.Format("2006-01-02"), r)
		}
	}
	for n, want := range map[int]int{1: 0, 2: 1, 5: 1, 6: 2, 9: 2} {
		if AllowedNonCorroborations(n) != want {
			t.Errorf("%d used: %d allowed, want %d", n, AllowedNonCorroborations(n), want)
		}
	}
}

func TestCorroborate(t *testing.T) {
	at := date(2026, 12, 15) // 5 remote perspectives, 1 may disagree
	primary := Determination{Perspective: "primary", Outcome: "valid"}
	if d := Corroborate(primary, remotes("valid", "valid", "valid", "valid", "valid"), at); !d.OK {
		t.Fatalf("all agree: %+v", d)
	}
	// One hijacked perspective sees another answer: within the quorum.
	if d := Corroborate(primary, remotes("valid", "invalid", "valid", "valid", "valid"), at); !d.OK || len(d.NonCorroborating) != 1 {
		t.Fatalf("one disagrees: %+v", d)
	}
	// Two disagree: refused, and the reason names them.
	d := Corroborate(primary, remotes("valid", "invalid", "error: timeout", "valid", "valid"), at)
	if d.OK || !strings.Contains(d.Reason, "2 of 5") || !strings.Contains(d.Reason, "b (invalid)") {
		t.Fatalf("two disagree: %+v", d)
	}
	// Too few perspectives answered.
	if d := Corroborate(primary, remotes("valid", "valid", "valid"), at); d.OK || !strings.Contains(d.Reason, "5 required") {
		t.Fatalf("too few: %+v", d)
	}
	// A perspective counted twice is one perspective.
	dup := append(remotes("valid", "valid", "valid", "valid"), Determination{Perspective: "a", RIR: "ARIN", Outcome: "valid"})
	if d := Corroborate(primary, dup, at); d.OK || d.Used != 4 {
		t.Fatalf("duplicate counted: %+v", d)
	}
	// Corroborating perspectives all in one RIR.
	one := []Determination{}
	for i := 0; i < 5; i++ {
		one = append(one, Determination{Perspective: string(rune('a' + i)), RIR: "APNIC", Outcome: "valid"})
	}
	if d := Corroborate(primary, one, at); d.OK || !strings.Contains(d.Reason, "Regional Internet Registry") {
		t.Fatalf("one RIR: %+v", d)
	}
	// Six or more: two may disagree.
	if d := Corroborate(primary, remotes("valid", "invalid", "invalid", "valid", "valid", "valid"), at); !d.OK || d.Allowed != 2 {
		t.Fatalf("six used: %+v", d)
	}
}
