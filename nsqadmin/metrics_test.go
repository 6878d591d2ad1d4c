package nsqadmin

import (
	"strings"
	"testing"
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
		for _, want := range []string{"# TYPE go_goroutines gauge", "go_build_info"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("GET %s/metrics lacks %q", url, want)
			}
		}
	}
}
