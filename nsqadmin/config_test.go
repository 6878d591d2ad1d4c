package nsqadmin

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" for valid
	}{
		{"lookupd", func(c *Config) { c.LookupdHTTPAddresses = []string{"127.0.0.1:4161"} }, ""},
		{"nsqd", func(c *Config) { c.NSQDHTTPAddresses = []string{"n1:4151", "https://n2:4152"} }, ""},
		{"neither", func(c *Config) {}, "--nsqd-http-address or --lookupd-http-address required"},
		{"both", func(c *Config) {
			c.LookupdHTTPAddresses = []string{"l:4161"}
			c.NSQDHTTPAddresses = []string{"n:4151"}
		}, "not both"},
		{"bad address", func(c *Config) { c.NSQDHTTPAddresses = []string{"no-port"} }, "--nsqd-http-address"},
		{"cert without key", func(c *Config) { c.NSQDHTTPAddresses = []string{"n:1"}; c.HTTPClientTLSCert = "c.pem" }, "must be given together"},
		{"key without cert", func(c *Config) { c.NSQDHTTPAddresses = []string{"n:1"}; c.HTTPClientTLSKey = "k.pem" }, "must be given together"},
		{"bad cidr", func(c *Config) { c.NSQDHTTPAddresses = []string{"n:1"}; c.AllowConfigFromCIDR = "nope" }, "--allow-config-from-cidr"},
		{"empty cidr", func(c *Config) { c.NSQDHTTPAddresses = []string{"n:1"}; c.AllowConfigFromCIDR = "" }, ""},
		{"proxy without url", func(c *Config) { c.NSQDHTTPAddresses = []string{"n:1"}; c.ProxyGraphite = true }, "--proxy-graphite"},
		{"bad graphite", func(c *Config) { c.NSQDHTTPAddresses = []string{"n:1"}; c.GraphiteURL = "graphite" }, "--graphite-url"},
		{"bad endpoint", func(c *Config) { c.NSQDHTTPAddresses = []string{"n:1"}; c.NotificationHTTPEndpoint = "ftp://x" }, "--notification-http-endpoint"},
		{"zero timeout", func(c *Config) { c.NSQDHTTPAddresses = []string{"n:1"}; c.HTTPClientRequestTimeout = 0 }, "--http-client-request-timeout"},
		{"no http address", func(c *Config) { c.NSQDHTTPAddresses = []string{"n:1"}; c.HTTPAddress = "" }, "--http-address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestNormalizeBasePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""}, {"/", ""}, {"admin", "/admin"}, {"/admin/", "/admin"}, {"//a//b/", "/a/b"},
	}
	for _, tc := range tests {
		if got := normalizeBasePath(tc.in); got != tc.want {
			t.Errorf("normalizeBasePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestConfigEndpoint checks GET and PUT /config/:opt and its CIDR gate.
func TestConfigEndpoint(t *testing.T) {
	c := startCluster(t, 1)
	s, base := c.admin(t, nil)
	tests := []struct {
		method, opt, body string
		code              int
		want              string
	}{
		{"GET", "nsqlookupd_http_addresses", "", 200, fmt.Sprintf(`[%q]`, c.lookupdHTTP())},
		{"GET", "nsqd_http_addresses", "", 200, `[]`},
		{"GET", "admin_users", "", 200, `[]`},
		{"GET", "http_client_connect_timeout", "", 200, `1000000000`},
		{"GET", "acl_http_header", "", 200, `"X-Forwarded-User"`},
		{"GET", "allow_config_from_cidr", "", 200, `"127.0.0.1/8"`},
		{"GET", "statsd_interval", "", 200, `60000000000`},
		{"GET", "log_level", "", 200, `"info"`},
		{"GET", "nope", "", 400, `{"message":"INVALID_OPTION"}`},
		{"PUT", "log_level", "debug", 200, `"debug"`},
		{"PUT", "log_level", `"WARN"`, 200, `"warn"`},
		{"PUT", "log_level", "loud", 400, `{"message":"INVALID_VALUE"}`},
		{"PUT", "log_level", "", 413, `{"message":"INVALID_VALUE"}`},
		{"PUT", "http_address", `"x"`, 400, `{"message":"INVALID_OPTION"}`},
		{"PUT", "nsqlookupd_http_addresses", `"not a list"`, 400, `{"message":"INVALID_VALUE"}`},
		{"PUT", "nsqlookupd_http_addresses", `["no port"]`, 400, `{"message":"INVALID_VALUE"}`},
		{"PUT", "nsqlookupd_http_addresses", fmt.Sprintf(`[%q,"127.0.0.1:1"]`, c.lookupdHTTP()), 200, fmt.Sprintf(`[%q,"127.0.0.1:1"]`, c.lookupdHTTP())},
		{"GET", "nsqlookupd_http_addresses", "", 200, fmt.Sprintf(`[%q,"127.0.0.1:1"]`, c.lookupdHTTP())},
	}
	for _, tc := range tests {
		code, b := request(t, tc.method, base+"/config/"+tc.opt, tc.body, nil, nil)
		if code != tc.code || string(b) != tc.want {
			t.Errorf("%s /config/%s %q = %d %s, want %d %s", tc.method, tc.opt, tc.body, code, b, tc.code, tc.want)
		}
	}
	if got := s.cfg.LogLevel.Level(); got != slog.LevelWarn {
		t.Errorf("log level after PUT = %v, want WARN", got)
	}
	// The new lookupd list is in use: the added one is down.
	var topics struct {
		Message string `json:"message"`
	}
	getJSON(t, base+"/api/topics", &topics)
	if !strings.Contains(topics.Message, "127.0.0.1:1") {
		t.Errorf("after PUT nsqlookupd_http_addresses, message = %q, want a warning about 127.0.0.1:1", topics.Message)
	}

	_, other := c.admin(t, func(cfg *Config) { cfg.AllowConfigFromCIDR = "10.0.0.0/8" })
	for _, m := range []string{"GET", "PUT"} {
		code, b := request(t, m, other+"/config/log_level", "debug", nil, nil)
		if code != http.StatusForbidden || string(b) != `{"message":"FORBIDDEN"}` {
			t.Errorf("%s /config from outside --allow-config-from-cidr = %d %s, want 403 FORBIDDEN", m, code, b)
		}
	}
}

// TestBasePath serves everything under --base-path.
func TestBasePath(t *testing.T) {
	c := startCluster(t, 1)
	// A topic only the lookupd knows, with a name that must be escaped.
	nsqdPOST(t, c.lookupdHTTP(), "/topic/create?topic=orders%23ephemeral")
	s, base := c.admin(t, func(cfg *Config) { cfg.BasePath = "/tools/nsqadmin/" })
	root := "http://" + s.HTTPAddr().String()
	if base != root+"/tools/nsqadmin" {
		t.Fatalf("base = %q", base)
	}
	for _, p := range []string{"", "/", "/topics", "/nodes", "/counter", "/lookup", "/topics/orders%23ephemeral", "/ping", "/api/topics"} {
		if code, b := request(t, "GET", base+p, nil, nil, nil); code != 200 {
			t.Errorf("GET %s%s = %d %s", base, p, code, b)
		}
	}
	for _, p := range []string{"/", "/topics", "/api/topics", "/ping"} {
		if code, _ := request(t, "GET", root+p, nil, nil, nil); code != 404 {
			t.Errorf("GET %s outside the base path = %d, want 404", p, code)
		}
	}
	_, page := request(t, "GET", base+"/", nil, nil, nil)
	for _, want := range []string{
		`href="/tools/nsqadmin/topics/orders%23ephemeral"`,
		`<meta name="nsqadmin-base" content="/tools/nsqadmin">`,
		`src="/tools/nsqadmin/static/app.js?v=`,
		`data-source="/tools/nsqadmin/api/overview"`,
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("topics page lacks %s", want)
		}
	}
	resp, err := httpClient.Get(base + "/static/app.js?v=" + s.assetTag)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" ||
		!strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || !strings.Contains(string(b), "LiveCharts") {
		t.Errorf("static asset = %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
}

// TestGraphite checks /api/graphite and the /render proxy against a fake
// Graphite.
func TestGraphite(t *testing.T) {
	var mu sync.Mutex
	var seen []*http.Request
	graphite := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Clone(r.Context()))
		mu.Unlock()
		fmt.Fprint(w, `[{"target":"x","datapoints":[[120,1700000000]]}]`)
	}))
	t.Cleanup(graphite.Close)
	u, _ := url.Parse(graphite.URL)
	u.User = url.UserPassword("graph", "pw")
	cfg := testConfig(t)
	cfg.NSQDHTTPAddresses = []string{deadAddr(t)}
	cfg.GraphiteURL = u.String()
	cfg.ProxyGraphite = true
	cfg.StatsdInterval = 60 * time.Second
	_, base := startAdmin(t, cfg)

	code, b := request(t, "GET", base+"/api/graphite?metric=rate&target=sumSeries(x)", nil, nil, nil)
	if code != 200 || string(b) != `{"rate":"2.00"}` {
		t.Errorf("/api/graphite = %d %s, want {\"rate\":\"2.00\"}", code, b)
	}
	mu.Lock()
	q := seen[0].URL.Query()
	mu.Unlock()
	if q.Get("from") != "-120sec" || q.Get("until") != "-60sec" || q.Get("format") != "json" || q.Get("target") != "sumSeries(x)" {
		t.Errorf("graphite query = %v", q)
	}
	if code, b := request(t, "GET", base+"/api/graphite?metric=sum&target=x", nil, nil, nil); code != 400 || !strings.Contains(string(b), "INVALID_ARG_METRIC") {
		t.Errorf("bad metric = %d %s", code, b)
	}
	code, b = request(t, "GET", base+"/render?target=x&format=json", nil, nil, nil)
	if code != 200 || !strings.Contains(string(b), "datapoints") {
		t.Errorf("/render proxy = %d %s", code, b)
	}
	mu.Lock()
	last := seen[len(seen)-1]
	mu.Unlock()
	user, pass, ok := last.BasicAuth()
	if last.URL.Path != "/render" || last.URL.Query().Get("target") != "x" || !ok || user != "graph" || pass != "pw" {
		t.Errorf("proxied request = %s with auth %v %q %q", last.URL, ok, user, pass)
	}
}

func TestRates(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRateTracker(func() time.Time { return now })
	step := func(d time.Duration, count int64) (float64, bool) {
		now = now.Add(d)
		return r.observe("k", count)
	}
	if _, ok := step(0, 100); ok {
		t.Errorf("rate known after one sample")
	}
	if _, ok := step(500*time.Millisecond, 150); ok {
		t.Errorf("rate known after half a second")
	}
	if v, ok := step(1500*time.Millisecond, 300); !ok || v != 100 {
		t.Errorf("rate = %v, %v; want 100/s over 2s", v, ok)
	}
	for range 20 {
		step(5*time.Second, 300) // idle
	}
	if v, ok := step(5*time.Second, 300); !ok || v != 0 {
		t.Errorf("idle rate = %v, %v; want 0", v, ok)
	}
	if _, ok := step(time.Second, 10); ok {
		t.Errorf("rate known right after the counter went down")
	}
	if v, ok := step(2*time.Second, 30); !ok || v != 10 {
		t.Errorf("rate after a reset = %v, %v; want 10/s", v, ok)
	}
	now = now.Add(rateExpiry + time.Second)
	r.observe("other", 1)
	if _, ok := r.series["k"]; ok {
		t.Errorf("stale series not expired")
	}
}

func TestFormat(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct{ got, want string }{
		{formatNum(int64(0)), "0"},
		{formatNum(int64(1234567)), "1,234,567"},
		{formatNum(-1234), "-1,234"},
		{formatNum(uint64(999)), "999"},
		{formatRate(nil), "–"},
		{formatRate(f(0)), "0.00/s"},
		{formatRate(f(12.345)), "12.3/s"},
		{formatRate(f(12345.6)), "12,346/s"},
		{formatNanos(0), "0"},
		{formatNanos(950), "950ns"},
		{formatNanos(1500), "1.5µs"},
		{formatNanos(2.5e6), "2.5ms"},
		{formatNanos(3.25e9), "3.25s"},
		{formatQuantile(0.99), "p99"},
		{formatQuantile(0.999), "p99.9"},
		{formatQuantile(0.5), "p50"},
		{formatDuration(90*time.Second + 300*time.Millisecond), "1m30s"},
		{formatDuration(50 * time.Hour), "2d2h0m0s"},
		{jsonBody("action", "pause"), `{"action":"pause"}`},
	}
	for i, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("case %d = %q, want %q", i, tc.got, tc.want)
		}
	}
}
