package nsqd_test

// Prometheus /metrics: scraped over HTTP, parsed with the Prometheus text
// parser, types and values checked against the traffic the test made.

import (
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// families is one scrape, by metric name.
type families map[string]*dto.MetricFamily

// scrapeMetrics GETs base/metrics and parses it as Prometheus text.
func scrapeMetrics(t *testing.T, base string) families { return nsqtest.ScrapeMetrics(t, base) }

// value is the sample of a counter, gauge or untyped family whose labels
// include labels (name, value pairs).
func (f families) value(name string, labels ...string) (float64, bool) {
	fam, ok := f[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range fam.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// check compares named samples with their wanted values and types.
func (f families) check(t *testing.T, typ dto.MetricType, want map[string]float64) {
	t.Helper()
	for key, w := range want {
		name, labels := parseKey(key)
		fam, ok := f[name]
		if !ok {
			t.Errorf("%s missing from /metrics", name)
			continue
		}
		if fam.GetType() != typ {
			t.Errorf("%s is a %v, want a %v", name, fam.GetType(), typ)
		}
		if fam.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
		if got, ok := f.value(name, labels...); !ok || got != w {
			t.Errorf("%s = %v (found: %v), want %v", key, got, ok, w)
		}
	}
}

// parseKey splits `name{a="x",b="y"}` into the name and label pairs.
func parseKey(key string) (string, []string) {
	name, rest, ok := strings.Cut(key, "{")
	if !ok {
		return key, nil
	}
	var labels []string
	for kv := range strings.SplitSeq(strings.TrimSuffix(rest, "}"), ",") {
		k, v, _ := strings.Cut(kv, "=")
		labels = append(labels, k, strings.Trim(v, `"`))
	}
	return name, labels
}

func TestMetricsUnderTraffic(t *testing.T) {
	n := nsqtest.StartNSQD(t, trafficConfig(t))
	tr := runTraffic(t, n)
	f := scrapeMetrics(t, tr.base)

	orders, audit := float64(tr.ordersMsgs), float64(tr.auditMsgs)
	fins := float64(tr.workFins)
	f.check(t, dto.MetricType_GAUGE, map[string]float64{
		`nsqd_topic_depth{topic="orders"}`:                                           0,
		`nsqd_topic_backend_depth{topic="orders"}`:                                   0,
		`nsqd_topic_paused{topic="orders"}`:                                          0,
		`nsqd_topic_channels{topic="orders"}`:                                        3,
		`nsqd_topic_channels{topic="audit"}`:                                         1,
		`nsqd_channel_depth{topic="orders",channel="idle"}`:                          fins,
		`nsqd_channel_backend_depth{topic="orders",channel="idle"}`:                  0,
		`nsqd_channel_deferred{topic="orders",channel="idle"}`:                       float64(tr.deferred),
		`nsqd_channel_deferred{topic="orders",channel="work"}`:                       float64(tr.deferred),
		`nsqd_channel_in_flight{topic="orders",channel="work"}`:                      0,
		`nsqd_channel_consumers{topic="orders",channel="work"}`:                      1,
		`nsqd_channel_consumers{topic="orders",channel="idle"}`:                      0,
		`nsqd_channel_consumers{topic="audit",channel="ch"}`:                         1,
		`nsqd_channel_paused{topic="orders",channel="idle"}`:                         0,
		`nsqd_channel_e2e_processing_latency_samples{topic="orders",channel="work"}`: fins,
		`nsqd_topic_e2e_processing_latency_samples{topic="orders"}`:                  2 * fins,
		`nsqd_connections`: 4, // three consumers, one producer
		`nsqd_healthy`:     1,
	})
	f.check(t, dto.MetricType_COUNTER, map[string]float64{
		`nsqd_topic_messages_total{topic="orders"}`:                   orders,
		`nsqd_topic_messages_total{topic="audit"}`:                    audit,
		`nsqd_topic_message_bytes_total{topic="orders"}`:              float64(tr.ordersBytes),
		`nsqd_channel_messages_total{topic="orders",channel="idle"}`:  orders,
		`nsqd_channel_requeued_total{topic="orders",channel="work"}`:  float64(tr.requeued),
		`nsqd_channel_timed_out_total{topic="orders",channel="slow"}`: float64(tr.timedOut),
		`nsqd_channel_timed_out_total{topic="orders",channel="work"}`: 0,
		`nsqd_published_messages_total`:                               orders + audit,
		`nsqd_published_bytes_total`:                                  float64(tr.ordersBytes + tr.auditBytes),
		`nsqd_delivered_messages_total`:                               (fins + 2) + (fins + 1) + audit, // work: 2 redeliveries after REQ; slow: 1 after the timeout
		`nsqd_finished_messages_total`:                                2*fins + audit,
		`nsqd_requeued_messages_total`:                                float64(tr.requeued),
		`nsqd_corrupt_records_total`:                                  0,
	})
	if v, ok := f.value("nsqd_connections_accepted_total"); !ok || v < 4 {
		t.Errorf("nsqd_connections_accepted_total = %v, want at least 4", v)
	}
	for _, q := range []string{"1", "0.99", "0.5"} {
		for _, m := range []struct{ name, ch string }{
			{"nsqd_channel_e2e_processing_latency_seconds", "work"},
			{"nsqd_topic_e2e_processing_latency_seconds", ""},
		} {
			labels := []string{"topic", "orders", "quantile", q}
			if m.ch != "" {
				labels = append(labels, "channel", m.ch)
			}
			if v, ok := f.value(m.name, labels...); !ok || v <= 0 || v > 60 {
				t.Errorf("%s %v = %v (found %v), want a latency in seconds", m.name, labels, v, ok)
			}
		}
	}
	if v, ok := f.value("nsqd_log_memory_bytes"); !ok || v <= 0 {
		t.Errorf("nsqd_log_memory_bytes = %v (found %v), want the resident segments", v, ok)
	}
	if _, ok := f.value("nsqd_log_disk_bytes"); !ok {
		t.Errorf("nsqd_log_disk_bytes missing")
	}
	if fam := f["nsqd_fsync_duration_seconds"]; fam.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("nsqd_fsync_duration_seconds is a %v, want a histogram", fam.GetType())
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_gc_duration_seconds", "go_build_info", "process_start_time_seconds"} {
		if _, ok := f[name]; !ok {
			t.Errorf("runtime metric %s missing", name)
		}
	}
	// Names follow Prometheus conventions: counters end in _total, only
	// they do, and every nsqd metric has help text.
	for name, fam := range f {
		if !strings.HasPrefix(name, "nsqd_") {
			continue
		}
		if isCounter := fam.GetType() == dto.MetricType_COUNTER; isCounter != strings.HasSuffix(name, "_total") {
			t.Errorf("%s is a %v: counters, and only they, end in _total", name, fam.GetType())
		}
	}

	// Totals survive what they were summed from: delete a topic (its
	// consumer is closed with it) and stop the producer.
	httpOK(t, "POST", tr.base+"/topic/delete?topic=audit", nil)
	nsqtest.Eventually(t, 5*time.Second, "the audit consumer to go", func() bool {
		v, _ := scrapeMetrics(t, tr.base).value("nsqd_connections")
		return v == 3
	})
	f = scrapeMetrics(t, tr.base)
	f.check(t, dto.MetricType_COUNTER, map[string]float64{
		`nsqd_published_messages_total`: orders + audit,
		`nsqd_published_bytes_total`:    float64(tr.ordersBytes + tr.auditBytes),
		`nsqd_delivered_messages_total`: (fins + 2) + (fins + 1) + audit,
		`nsqd_finished_messages_total`:  2*fins + audit,
	})
	if _, ok := f.value("nsqd_topic_depth", "topic", "audit"); ok {
		t.Errorf("deleted topic audit still has series")
	}
}

// TestMetricsDurable checks the disk figures with --mem-queue-size=0 and
// --sync-every=1: every publish is fsynced (the histogram counts them)
// and the log's bytes are on disk.
func TestMetricsDurable(t *testing.T) {
	n := nsqtest.StartNSQD(t, func(c *nsqd.Config) {
		c.MemQueueSize = 0
		c.SyncEvery = 1
	})
	base := "http://" + n.HTTPAddr
	before := scrapeMetrics(t, base)
	h0 := before["nsqd_fsync_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount()

	const msgs, size = 20, 1000
	p := newProducer(t, n.TCPAddr)
	for range msgs {
		if err := p.Publish("durable", []byte(strings.Repeat("d", size))); err != nil {
			t.Fatal(err)
		}
	}
	f := scrapeMetrics(t, base)
	h := f["nsqd_fsync_duration_seconds"].GetMetric()[0].GetHistogram()
	if got := h.GetSampleCount() - h0; got < msgs {
		t.Errorf("fsyncs counted during %d publishes with --sync-every=1: %d, want at least %d", msgs, got, msgs)
	}
	if h.GetSampleSum() <= 0 || len(h.GetBucket()) == 0 {
		t.Errorf("fsync histogram sum %v, %d buckets", h.GetSampleSum(), len(h.GetBucket()))
	}
	var last uint64
	for _, b := range h.GetBucket() {
		if b.GetCumulativeCount() < last {
			t.Errorf("bucket le=%v count %d below the previous %d", b.GetUpperBound(), b.GetCumulativeCount(), last)
		}
		last = b.GetCumulativeCount()
	}
	if v, _ := f.value("nsqd_log_disk_bytes"); v < msgs*size {
		t.Errorf("nsqd_log_disk_bytes = %v, want at least the %d bytes of bodies", v, msgs*size)
	}
	f.check(t, dto.MetricType_GAUGE, map[string]float64{
		`nsqd_topic_depth{topic="durable"}`:         msgs,
		`nsqd_topic_backend_depth{topic="durable"}`: msgs,
	})
	f.check(t, dto.MetricType_COUNTER, map[string]float64{
		`nsqd_published_messages_total`: msgs,
		`nsqd_published_bytes_total`:    msgs * size,
	})
}

// TestMetricsRoute checks /metrics behind the HTTP API's conventions: GET
// only, NSQ's header, and no metric for a topic once it is gone.
func TestMetricsRoute(t *testing.T) {
	_, base := httpStartNSQD(t, nil)
	r := httpRequest(t, "POST", base+"/metrics", nil)
	if r.status != http.StatusMethodNotAllowed || r.body != httpErr("METHOD_NOT_ALLOWED") {
		t.Errorf("POST /metrics = %d %q, want 405 METHOD_NOT_ALLOWED", r.status, r.body)
	}
	r = httpRequest(t, "GET", base+"/metrics", nil)
	if r.header.Get("X-Nsq-Content-Type") != "nsq; version=1.0" {
		t.Errorf("GET /metrics lacks X-NSQ-Content-Type")
	}
	if !strings.Contains(r.body, "# TYPE nsqd_published_messages_total counter\n") {
		t.Errorf("GET /metrics body lacks nsqd_published_messages_total:\n%s", r.body)
	}
	httpOK(t, "POST", base+"/topic/create?topic=t%23ephemeral", nil)
	if v, ok := scrapeMetrics(t, base).value("nsqd_topic_depth", "topic", "t#ephemeral"); !ok || v != 0 {
		t.Errorf(`nsqd_topic_depth{topic="t#ephemeral"} = %v, %v`, v, ok)
	}
}

// dashboardMetrics lists the metric names with prefix that the Grafana
// dashboard in contrib/grafana queries.
func dashboardMetrics(t *testing.T, prefix string) []string {
	t.Helper()
	b, err := os.ReadFile("../contrib/grafana/nsqx.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("contrib/grafana/nsqx.json: %v", err)
	}
	seen := map[string]bool{}
	re := regexp.MustCompile(`\b` + prefix + `[a-z0-9_]+`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range re.FindAllString(tg.Expr, -1) {
				seen[m] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// TestMetricsDashboard checks that every nsqd metric the Grafana dashboard
// queries is one nsqd exports.
func TestMetricsDashboard(t *testing.T) {
	_, base := httpStartNSQD(t, func(c *nsqd.Config) { c.E2EProcessingLatencyPercentiles = []float64{0.99} })
	httpOK(t, "POST", base+"/topic/create?topic=t", nil)
	httpOK(t, "POST", base+"/channel/create?topic=t&channel=c", nil)
	exported := map[string]bool{}
	for name, fam := range scrapeMetrics(t, base) {
		exported[name] = true
		if fam.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				exported[name+s] = true
			}
		}
	}
	names := dashboardMetrics(t, "nsqd_")
	if len(names) < 10 {
		t.Fatalf("the dashboard queries only %v", names)
	}
	for _, name := range names {
		if !exported[name] {
			t.Errorf("the dashboard queries %s, which nsqd does not export", name)
		}
	}
}
