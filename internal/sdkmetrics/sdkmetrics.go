// Package sdkmetrics exposes the Temporal SDK's worker and client metrics
// (task latencies, poll counts, activity failures, sticky cache, …) as
// Prometheus series. The SDK's tally reporter is not available here, so this
// is a small client.MetricsHandler over client_golang.
//
// The SDK attaches different tag sets to the same metric name from different
// call sites; Prometheus wants one label set per family, so each family is
// exported with the union of the tag keys it has seen (missing ones empty).
package sdkmetrics

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

type kind int

const (
	counter kind = iota
	gauge
	timer
)

// buckets for timers, in seconds: task latencies from 1 ms to a minute.
var buckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type series struct {
	tags   map[string]string
	value  float64  // counter or gauge
	counts []uint64 // timer buckets
	count  uint64
	sum    float64
}

type family struct {
	kind   kind
	keys   map[string]bool
	series map[string]*series
}

// Collector gathers the SDK's metrics; register it on a Prometheus registry
// and pass Handler() in client.Options.MetricsHandler.
type Collector struct {
	prefix string
	mu     sync.Mutex
	fams   map[string]*family
}

// New returns a Collector whose series are named prefix + the SDK name
// (e.g. "certdesk_" + "temporal_activity_execution_latency").
func New(prefix string) *Collector {
	return &Collector{prefix: prefix, fams: map[string]*family{}}
}

// Handler returns the SDK metrics handler feeding this collector.
func (c *Collector) Handler() client.MetricsHandler { return handler{c: c} }

func (c *Collector) series(name string, k kind, tags map[string]string) *series {
	f := c.fams[name]
	if f == nil {
		f = &family{kind: k, keys: map[string]bool{}, series: map[string]*series{}}
		c.fams[name] = f
	}
	keys := make([]string, 0, len(tags))
	for key := range tags {
		keys = append(keys, key)
		f.keys[key] = true
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, key := range keys {
		b.WriteString(key + "=" + tags[key] + "\x00")
	}
	id := b.String()
	s := f.series[id]
	if s == nil {
		s = &series{tags: tags}
		if k == timer {
			s.counts = make([]uint64, len(buckets))
		}
		f.series[id] = s
	}
	return s
}

// Describe sends nothing: the families are only known as the SDK reports
// them (an unchecked collector).
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect emits every series.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, f := range c.fams {
		keys := make([]string, 0, len(f.keys))
		for k := range f.keys {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		desc := prometheus.NewDesc(sanitize(c.prefix+name), "Temporal SDK metric "+name, keys, nil)
		for _, s := range f.series {
			vals := make([]string, len(keys))
			for i, k := range keys {
				vals[i] = s.tags[k]
			}
			switch f.kind {
			case counter:
				ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, s.value, vals...)
			case gauge:
				ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, s.value, vals...)
			case timer:
				cum := map[float64]uint64{}
				var run uint64
				for i, b := range buckets {
					run += s.counts[i]
					cum[b] = run
				}
				ch <- prometheus.MustNewConstHistogram(desc, s.count, s.sum, cum, vals...)
			}
		}
	}
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == ':' {
			return r
		}
		return '_'
	}, name)
}

type handler struct {
	c    *Collector
	tags map[string]string
}

func (h handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return handler{c: h.c, tags: merged}
}

func (h handler) Counter(name string) client.MetricsCounter { return metric{h: h, name: name} }
func (h handler) Gauge(name string) client.MetricsGauge     { return metric{h: h, name: name} }
func (h handler) Timer(name string) client.MetricsTimer     { return metric{h: h, name: name} }

type metric struct {
	h    handler
	name string
}

func (m metric) Inc(n int64) {
	m.h.c.mu.Lock()
	defer m.h.c.mu.Unlock()
	m.h.c.series(m.name, counter, m.h.tags).value += float64(n)
}

func (m metric) Update(v float64) {
	m.h.c.mu.Lock()
	defer m.h.c.mu.Unlock()
	m.h.c.series(m.name, gauge, m.h.tags).value = v
}

func (m metric) Record(d time.Duration) {
	m.h.c.mu.Lock()
	defer m.h.c.mu.Unlock()
	s := m.h.c.series(m.name, timer, m.h.tags)
	sec := d.Seconds()
	s.count++
	s.sum += sec
	for i, b := range buckets {
		if sec <= b {
			s.counts[i]++
			break
		}
	}
}
