package nsqadmin

// Prometheus /metrics: scraped over HTTP, parsed with the Prometheus text
// parser, values checked against the traffic each test made.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/nsqx/nsqx/internal/clusterinfo"
	"github.com/nsqx/nsqx/internal/nsqtest"
)

// TestMetrics: /metrics serves Prometheus text with the Go runtime's
// metrics, under the base path like every route.
func TestMetrics(t *testing.T) {
	for _, base := range []string{"", "/admin"} {
		cfg := testConfig(t)
		cfg.NSQDHTTPAddresses = []string{"127.0.0.1:1"}
		cfg.BasePath = base
		_, url := startAdmin(t, cfg)
		status, body := request(t, "GET", strings.TrimSuffix(url, "/")+"/metrics", nil, nil, nil)
		if status != 200 {
			t.Fatalf("GET %s/metrics = %d, want 200", url, status)
		}
		for _, want := range []string{"# TYPE go_goroutines gauge", "go_build_info", "# TYPE nsqadmin_upstream_requests_total counter"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("GET %s/metrics lacks %q", url, want)
			}
		}
	}
}

// families is one scrape, by metric name.
type families map[string]*dto.MetricFamily

// scrape GETs base/metrics and parses it as Prometheus text.
func scrape(t *testing.T, base string) families { return nsqtest.ScrapeMetrics(t, base) }

// value is the sample of name with exactly labels (name, value pairs): a
// counter's or gauge's value, a histogram's count of observations.
func (f families) value(name string, labels ...string) (float64, bool) {
	fam, ok := f[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range fam.Metric {
		if len(m.Label) != len(labels)/2 {
			continue
		}
		for i, lp := range m.Label { // sorted by name, as are the pairs given
			if lp.GetName() != labels[2*i] || lp.GetValue() != labels[2*i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// sample is a wanted value of one series.
type sample struct {
	name   string
	labels []string // name, value pairs, sorted by name
	want   float64
}

// check compares the scrape with samples.
func (f families) check(t *testing.T, what string, samples []sample) {
	t.Helper()
	for _, s := range samples {
		v, ok := f.value(s.name, s.labels...)
		if !ok || v != s.want {
			t.Errorf("%s: %s%v = %v (present %v), want %v", what, s.name, s.labels, v, ok, s.want)
		}
	}
}

// metricTypes are the types of nsqadmin's own metrics.
var metricTypes = map[string]dto.MetricType{
	"nsqadmin_http_requests_total":               dto.MetricType_COUNTER,
	"nsqadmin_http_request_duration_seconds":     dto.MetricType_HISTOGRAM,
	"nsqadmin_upstream_requests_total":           dto.MetricType_COUNTER,
	"nsqadmin_upstream_request_duration_seconds": dto.MetricType_HISTOGRAM,
	"nsqadmin_actions_total":                     dto.MetricType_COUNTER,
	"nsqadmin_notifications_total":               dto.MetricType_COUNTER,
	"nsqadmin_nodes":                             dto.MetricType_GAUGE,
}

// upstream is the samples of ok and failed requests to nodes of kind.
func upstream(kind string, ok, failed float64) []sample {
	return []sample{
		{"nsqadmin_upstream_requests_total", []string{"kind", kind, "result", "ok"}, ok},
		{"nsqadmin_upstream_requests_total", []string{"kind", kind, "result", "error"}, failed},
		{"nsqadmin_upstream_request_duration_seconds", []string{"kind", kind}, ok + failed},
	}
}

// nodes is the samples of nsqadmin_nodes for kind.
func nodes(kind string, up, down float64) []sample {
	return []sample{
		{"nsqadmin_nodes", []string{"kind", kind, "state", "up"}, up},
		{"nsqadmin_nodes", []string{"kind", kind, "state", "down"}, down},
	}
}

// served is the samples of n requests answered by route with code.
func served(route, code string, n float64) []sample {
	return []sample{
		{"nsqadmin_http_requests_total", []string{"code", code, "route", route}, n},
		{"nsqadmin_http_request_duration_seconds", []string{"route", route}, n},
	}
}

func action(name, result string, n float64) sample {
	return sample{"nsqadmin_actions_total", []string{"action", name, "result", result}, n}
}

func notifications(result string, n float64) sample {
	return sample{"nsqadmin_notifications_total", []string{"result", result}, n}
}

// waitFor scrapes base until s has its value, for at most testTimeout.
func waitFor(t *testing.T, base string, s sample) {
	t.Helper()
	nsqtest.Eventually(t, testTimeout, fmt.Sprintf("%s%v = %v", s.name, s.labels, s.want), func() bool {
		v, _ := scrape(t, base).value(s.name, s.labels...)
		return v == s.want
	})
}

// TestMetricsTraffic drives nsqadmins over a real lookupd and nsqd, and
// over nodes that are down, and checks that each of nsqadmin's metrics
// counts exactly the requests made, the requests they caused to the
// nodes, the actions and notifications, and the nodes found up or down.
func TestMetricsTraffic(t *testing.T) {
	c := startCluster(t, 1)
	n := c.nsqds[0]
	createChannel(t, n.HTTPAddr, "orders", "billing")
	c.waitRegistered(t, "orders", "billing", 1)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(sink.Close)
	const nsqd, lookupd = clusterinfo.KindNSQD, clusterinfo.KindLookupd

	t.Run("lookupd", func(t *testing.T) {
		_, base := c.admin(t, func(cfg *Config) {
			cfg.BasePath = "/admin"
			cfg.NotificationHTTPEndpoint = sink.URL + "/hook"
		})
		f := scrape(t, base)
		var want []sample
		want = append(want, upstream(nsqd, 0, 0)...)
		want = append(want, upstream(lookupd, 0, 0)...)
		want = append(want, nodes(nsqd, 0, 0)...)
		want = append(want, nodes(lookupd, 0, 0)...)
		want = append(want, action("pause", "ok", 0), notifications("ok", 0), notifications("dropped", 0))
		f.check(t, "before any traffic", want)

		getJSON(t, base+"/api/topics", nil)        // lookupd /topics
		getJSON(t, base+"/api/topics/orders", nil) // lookupd /lookup, nsqd /stats
		getJSON(t, base+"/api/nodes", nil)         // lookupd /nodes
		getJSON(t, base+"/api/overview", nil)      // lookupd /topics and /nodes, nsqd /stats
		for _, a := range []string{"pause", "unpause"} {
			// lookupd /lookup, nsqd /channel/<a>, a notification
			act(t, "POST", base+"/api/topics/orders/billing", map[string]string{"action": a})
		}
		for _, r := range []struct {
			method, path string
			body         any
			code         int
		}{
			{"POST", "/api/topics/orders", map[string]string{"action": "explode"}, 400},
			{"PUT", "/api/topics", nil, 405},
			{"GET", "/no/such/page", nil, 404},
			{"POST", "/api/topics", `{"topic":"x"}`, 403}, // refused as cross-origin below
		} {
			var hdr []string
			if r.code == 403 {
				hdr = []string{"Sec-Fetch-Site: cross-site"}
			}
			if code, b := request(t, r.method, base+r.path, r.body, hdr, nil); code != r.code {
				t.Fatalf("%s %s = %d %s, want %d", r.method, r.path, code, b, r.code)
			}
		}
		waitFor(t, base, notifications("ok", 2)) // sent from the notifier's goroutine

		want = nil
		want = append(want, upstream(lookupd, 7, 0)...)
		want = append(want, upstream(nsqd, 4, 0)...)
		want = append(want, nodes(lookupd, 1, 0)...)
		want = append(want, nodes(nsqd, 1, 0)...)
		for _, route := range []string{"GET /api/topics", "GET /api/topics/{topic}", "GET /api/nodes", "GET /api/overview"} {
			want = append(want, served(route, "200", 1)...)
		}
		want = append(want, served("POST /api/topics/{topic}/{channel}", "200", 2)...)
		want = append(want, served("POST /api/topics/{topic}", "400", 1)...)
		want = append(want, served("/api/topics", "405", 1)...)
		want = append(want,
			sample{"nsqadmin_http_requests_total", []string{"code", "404", "route", "none"}, 1},
			sample{"nsqadmin_http_requests_total", []string{"code", "403", "route", "none"}, 1},
			sample{"nsqadmin_http_request_duration_seconds", []string{"route", "none"}, 2})
		want = append(want,
			action("pause", "ok", 1), action("unpause", "ok", 1), action("pause", "partial", 0), action("create", "ok", 0),
			notifications("ok", 2), notifications("error", 0))
		f = scrape(t, base)
		for name, typ := range metricTypes {
			if fam, ok := f[name]; !ok || fam.GetType() != typ {
				t.Errorf("%s missing or not a %v", name, typ)
			}
		}
		f.check(t, "after traffic", want)
		// Every scrape but the one being answered is counted.
		if v, _ := f.value("nsqadmin_http_requests_total", "code", "200", "route", "GET /metrics"); v < 2 {
			t.Errorf(`nsqadmin_http_requests_total{route="GET /metrics"} = %v, want the scrapes before`, v)
		}
	})

	t.Run("nsqd down", func(t *testing.T) {
		dead := deadAddr(t)
		cfg := testConfig(t)
		cfg.NSQDHTTPAddresses = []string{n.HTTPAddr, dead}
		cfg.NotificationHTTPEndpoint = "http://" + deadAddr(t) + "/hook"
		_, base := startAdmin(t, cfg)

		getJSON(t, base+"/api/topics", nil) // /stats of each
		getJSON(t, base+"/api/nodes", nil)  // /info and /stats of the live one, /info of the dead one
		// /stats and /info of the live one, /stats of the dead one, then
		// /topic/pause on the live one: partial.
		code, b := request(t, "POST", base+"/api/topics/orders", map[string]string{"action": "pause"}, nil, nil)
		if code != http.StatusOK || !strings.Contains(string(b), dead) {
			t.Fatalf("pause with a node down = %d %s, want 200 and a warning", code, b)
		}
		waitFor(t, base, notifications("error", 1))

		var want []sample
		want = append(want, upstream(nsqd, 6, 3)...)
		want = append(want, upstream(lookupd, 0, 0)...)
		want = append(want, nodes(nsqd, 1, 1)...)
		want = append(want, nodes(lookupd, 0, 0)...)
		want = append(want, served("POST /api/topics/{topic}", "200", 1)...)
		want = append(want, action("pause", "partial", 1), action("pause", "ok", 0), notifications("ok", 0))
		scrape(t, base).check(t, "nsqd down", want)
		nsqdPOST(t, n.HTTPAddr, "/topic/unpause?topic=orders")
	})

	t.Run("lookupd down", func(t *testing.T) {
		_, base := c.admin(t, func(cfg *Config) { cfg.LookupdHTTPAddresses = []string{deadAddr(t)} })
		// Each asks the lookupd once (/lookup, /nodes) and fails.
		if code, b := request(t, "POST", base+"/api/topics/orders", map[string]string{"action": "empty"}, nil, nil); code != http.StatusBadGateway {
			t.Fatalf("empty with every lookupd down = %d %s, want 502", code, b)
		}
		if code, b := request(t, "GET", base+"/api/nodes", nil, nil, nil); code != http.StatusBadGateway {
			t.Fatalf("GET /api/nodes with every lookupd down = %d %s, want 502", code, b)
		}
		var want []sample
		want = append(want, upstream(lookupd, 0, 2)...)
		want = append(want, upstream(nsqd, 0, 0)...)
		want = append(want, nodes(lookupd, 0, 1)...)
		want = append(want, nodes(nsqd, 0, 0)...)
		want = append(want, served("POST /api/topics/{topic}", "502", 1)...)
		want = append(want, served("GET /api/nodes", "502", 1)...)
		want = append(want, action("empty", "error", 1))
		scrape(t, base).check(t, "lookupd down", want)
		if _, ok := scrape(t, base).value("nsqadmin_notifications_total", "result", "ok"); ok {
			t.Errorf("nsqadmin_notifications_total present without --notification-http-endpoint")
		}
	})
}
