package workflows

import (
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/worker"
)

// TestReplayRecordedHistories replays every history recorded from the real
// stack (testdata/histories, written by make record-histories) against the
// current workflow code: a change that would break running workflows fails
// here, in make test.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories: run make record-histories")
	}
	seen := map[string]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			Register(r)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
		seen[strings.SplitN(filepath.Base(f), "-", 2)[0]] = true
	}
	for _, want := range []string{"application", "verification", "revocation", "massrevocation", "disclosure", "correction", "policynotice"} {
		if !seen[want] {
			t.Errorf("no recorded history of %s", want)
		}
	}
}
