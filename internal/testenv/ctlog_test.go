//go:build integration

package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	ctclient "github.com/google/certificate-transparency-go/client"
	"github.com/google/certificate-transparency-go/jsonclient"

	"certdesk/internal/ct"
)

func TestCTLogsListAndRestart(t *testing.T) {
	logs := NewCTLogs(t, 2, nil)
	b, err := os.ReadFile(logs.ListPath)
	if err != nil {
		t.Fatal(err)
	}
	list, err := ct.ParseLogList(b)
	if err != nil {
		t.Fatalf("the harness's log list does not validate: %v\n%s", err, b)
	}
	if len(list.Logs) != 2 || list.Logs[0].Operator == list.Logs[1].Operator || list.Logs[0].ID == list.Logs[1].ID {
		t.Fatalf("want 2 logs of distinct operators and keys: %+v", list.Logs)
	}
	for i, l := range logs.Logs {
		got := list.Logs[i]
		if got.ID != l.ID || got.SubmissionURL != l.SubmissionURL() || got.MonitoringURL != l.MonitoringURL() || got.Kind != ct.StaticCT || !got.UsableAt(time.Now()) {
			t.Errorf("list entry %d = %+v, log %s at %s", i, got, l.Name, l.SubmissionURL())
		}
		// Warmed up: the harness's own entry is in the checkpoint.
		if size, err := l.TreeSize(); err != nil || size < 1 {
			t.Errorf("%s: tree size %d, %v", l.Name, size, err)
		}
		// The log accepts the harness root.
		lc, err := ctclient.New(l.SubmissionURL(), http.DefaultClient, jsonclient.Options{Logger: ctQuiet{}})
		if err != nil {
			t.Fatal(err)
		}
		roots, err := lc.GetAcceptedRoots(context.Background())
		if err != nil || len(roots) != 1 || !bytes.Equal(roots[0].Data, logs.Root.Raw) {
			t.Errorf("%s: accepted roots %d, %v", l.Name, len(roots), err)
		}
	}
	// The private state is not served.
	resp, err := http.Get(logs.Logs[0].MonitoringURL() + "/.state/treeState")
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("/.state served: %v %v", resp.Status, err)
	}
	resp.Body.Close()

	// Down and back: same key, port and tree.
	a := logs.Logs[0]
	before, _ := a.TreeSize()
	a.Stop()
	if resp, err := http.Get(a.SubmissionURL() + "/ct/v1/get-roots"); err == nil {
		resp.Body.Close()
		t.Fatal("the stopped log still answers")
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	after, err := a.TreeSize()
	if err != nil || after < before {
		t.Errorf("tree size after restart %d (before %d), %v", after, before, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil || raw["operators"] == nil {
		t.Errorf("not a v3 list: %v", err)
	}
}
