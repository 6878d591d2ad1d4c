package nsqtest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var metricsClient = &http.Client{Timeout: 10 * time.Second}

// ScrapeMetrics GETs base+"/metrics" (base like "http://127.0.0.1:4151")
// and parses it with the Prometheus text parser, by metric name. Anything
// but a 200 text answer fails the test.
func ScrapeMetrics(t testing.TB, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := metricsClient.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}
