package nsqlookupd

import (
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// scrape GETs /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	return nsqtest.ScrapeMetrics(t, "http://"+s.HTTPAddr().String())
}

// gauges reads the nsqlookupd gauges of one scrape as name or
// name{topic="t"} → value, checking each family is a gauge with help.
func gauges(t *testing.T, s *Server) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for name, fam := range scrape(t, s) {
		if !strings.HasPrefix(name, "nsqlookupd_") {
			continue
		}
		if fam.GetType() != dto.MetricType_GAUGE || fam.GetHelp() == "" {
			t.Errorf("%s: type %v, help %q; want a gauge with help", name, fam.GetType(), fam.GetHelp())
		}
		for _, m := range fam.Metric {
			key := name
			for _, l := range m.Label {
				key += `{` + l.GetName() + `="` + l.GetValue() + `"}`
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

func checkGauges(t *testing.T, what string, got, want map[string]float64) {
	t.Helper()
	for k, w := range want {
		if v, ok := got[k]; !ok || v != w {
			t.Errorf("%s: %s = %v (found %v), want %v", what, k, v, ok, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected series %s = %v", what, k, got[k])
		}
	}
}

// TestMetricsRegistry drives the registry over protocol V1 and HTTP, with
// a fake clock for tombstones and inactive producers, and checks each
// gauge after each step.
func TestMetricsRegistry(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(t)
	cfg.TombstoneLifetime = time.Minute
	cfg.InactiveProducerTimeout = 5 * time.Minute
	s := startServer(t, cfg, clock)

	checkGauges(t, "empty", gauges(t, s), map[string]float64{
		"nsqlookupd_producers": 0, "nsqlookupd_topics": 0, "nsqlookupd_channels": 0,
		"nsqlookupd_tombstones": 0, "nsqlookupd_connections": 0,
	})

	a := identified(t, s, "a", 1)
	a.roundTrip("REGISTER orders work\n", "OK")
	a.roundTrip("REGISTER orders audit\n", "OK")
	b := identified(t, s, "b", 2)
	b.roundTrip("REGISTER orders\n", "OK")
	b.roundTrip("REGISTER billing\n", "OK")
	post(t, s, "/topic/create?topic=empty")
	post(t, s, "/channel/create?topic=empty&channel=later")
	want := map[string]float64{
		"nsqlookupd_producers": 2, "nsqlookupd_topics": 3, "nsqlookupd_channels": 3,
		"nsqlookupd_tombstones": 0, "nsqlookupd_connections": 2,
		`nsqlookupd_topic_producers{topic="orders"}`:  2,
		`nsqlookupd_topic_producers{topic="billing"}`: 1,
		`nsqlookupd_topic_producers{topic="empty"}`:   0,
	}
	checkGauges(t, "registered", gauges(t, s), want)

	post(t, s, "/topic/tombstone?topic=orders&node=b:2")
	want["nsqlookupd_tombstones"] = 1
	want[`nsqlookupd_topic_producers{topic="orders"}`] = 1
	checkGauges(t, "tombstoned", gauges(t, s), want)

	clock.Advance(2 * time.Minute) // the tombstone expires
	want["nsqlookupd_tombstones"] = 0
	want[`nsqlookupd_topic_producers{topic="orders"}`] = 2
	checkGauges(t, "tombstone expired", gauges(t, s), want)

	clock.Advance(5 * time.Minute) // neither peer has pinged
	want["nsqlookupd_producers"] = 0
	want[`nsqlookupd_topic_producers{topic="orders"}`] = 0
	want[`nsqlookupd_topic_producers{topic="billing"}`] = 0
	checkGauges(t, "inactive", gauges(t, s), want)

	a.conn.Close()
	waitFor(t, "the closed connection to be dropped", func() bool {
		return gauges(t, s)["nsqlookupd_connections"] == 1
	})
	post(t, s, "/topic/delete?topic=empty")
	g := gauges(t, s)
	if g["nsqlookupd_topics"] != 2 || g["nsqlookupd_channels"] != 2 {
		t.Errorf("after closing a and deleting empty: topics %v, channels %v; want 2, 2 (a's channels stay registered, as in NSQ)", g["nsqlookupd_topics"], g["nsqlookupd_channels"])
	}

	for _, name := range []string{"go_goroutines", "go_build_info", "process_start_time_seconds"} {
		if _, ok := scrape(t, s)[name]; !ok {
			t.Errorf("runtime metric %s missing", name)
		}
	}
	if r := do(t, s, "POST", "/metrics"); r.code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d, want 405", r.code)
	}
}

// TestMetricsWithNSQD registers a real nsqd and checks what a scraper
// sees.
func TestMetricsWithNSQD(t *testing.T) {
	s := startServer(t, nil, nil)
	n := nsqtest.StartNSQD(t, func(c *nsqd.Config) { c.LookupdTCPAddrs = []string{s.TCPAddr().String()} })
	client := &http.Client{Timeout: testTimeout}
	for _, path := range []string{"/topic/create?topic=t1", "/channel/create?topic=t1&channel=c1", "/topic/create?topic=t2"} {
		res, err := client.Post("http://"+n.HTTPAddr+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	waitFor(t, "nsqd's registrations", func() bool {
		g := gauges(t, s)
		return g["nsqlookupd_producers"] == 1 && g["nsqlookupd_topics"] == 2 && g["nsqlookupd_channels"] == 1 &&
			g[`nsqlookupd_topic_producers{topic="t1"}`] == 1 && g[`nsqlookupd_topic_producers{topic="t2"}`] == 1 &&
			g["nsqlookupd_connections"] == 1
	})
	n.Stop(t)
	waitFor(t, "the stopped nsqd to go", func() bool {
		g := gauges(t, s)
		return g["nsqlookupd_producers"] == 0 && g["nsqlookupd_connections"] == 0
	})
}

// TestMetricsDashboard checks that every nsqlookupd metric the Grafana
// dashboard in contrib/grafana queries is one nsqlookupd exports.
func TestMetricsDashboard(t *testing.T) {
	b, err := os.ReadFile("../contrib/grafana/nsqx.json")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, nil, nil)
	post(t, s, "/topic/create?topic=t")
	exported := scrape(t, s)
	names := regexp.MustCompile(`\bnsqlookupd_[a-z0-9_]+`).FindAllString(string(b), -1)
	if len(names) < 5 {
		t.Fatalf("the dashboard queries only %v", names)
	}
	for _, name := range names {
		if _, ok := exported[name]; !ok {
			t.Errorf("the dashboard queries %s, which nsqlookupd does not export", name)
		}
	}
}
