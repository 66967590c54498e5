package sdkmetrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMixedTagSetsGatherCleanly(t *testing.T) {
	c := New("certdesk_")
	h := c.Handler().WithTags(map[string]string{"namespace": "default"})
	h.WithTags(map[string]string{"task_queue": "certdesk"}).Counter("temporal_request").Inc(2)
	h.Counter("temporal_request").Inc(1) // same family, fewer tags
	h.WithTags(map[string]string{"activity_type": "Notify"}).Timer("temporal_activity_execution_latency").Record(30 * time.Millisecond)
	h.WithTags(map[string]string{"activity_type": "Notify"}).Timer("temporal_activity_execution_latency").Record(2 * time.Minute)
	h.Gauge("temporal_sticky_cache_size").Update(7)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	if len(fams) != 3 {
		t.Fatalf("%d families", len(fams))
	}
	want := `
# HELP certdesk_temporal_request Temporal SDK metric temporal_request
# TYPE certdesk_temporal_request counter
certdesk_temporal_request{namespace="default",task_queue=""} 1
certdesk_temporal_request{namespace="default",task_queue="certdesk"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "certdesk_temporal_request"); err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "certdesk_temporal_activity_execution_latency" {
			h := f.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != 2 || h.GetBucket()[len(h.GetBucket())-1].GetCumulativeCount() != 1 {
				t.Fatalf("histogram %v", h)
			}
		}
	}
}
