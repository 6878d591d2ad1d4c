package nsqadmin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
	"github.com/nsqx/nsqx/nsqlookupd"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

var httpClient = &http.Client{Timeout: testTimeout}

// startLookupd runs an nsqlookupd on loopback until the test ends.
func startLookupd(t testing.TB) *nsqlookupd.Server {
	t.Helper()
	cfg := nsqlookupd.DefaultConfig()
	cfg.TCPAddress = "127.0.0.1:0"
	cfg.HTTPAddress = "127.0.0.1:0"
	cfg.BroadcastAddress = "127.0.0.1"
	cfg.Logger = nsqtest.Logger(t)
	l, err := nsqlookupd.New(cfg)
	if err != nil {
		t.Fatalf("nsqlookupd.New: %v", err)
	}
	runUntilCleanup(t, "nsqlookupd", l.Run)
	return l
}

// runUntilCleanup runs run in a goroutine and, when the test ends, cancels
// it and waits for it to return.
func runUntilCleanup(t testing.TB, what string, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }() // stopped by the cleanup below
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s Run: %v", what, err)
			}
		case <-time.After(testTimeout):
			t.Errorf("%s did not stop", what)
		}
	})
}

// cluster is a real lookupd with nsqds registered to it.
type cluster struct {
	lookupd *nsqlookupd.Server
	nsqds   []*nsqtest.NSQD
}

// startCluster starts a lookupd and n nsqds registered with it, and waits
// until the lookupd lists them all.
func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	c := &cluster{lookupd: startLookupd(t)}
	for range n {
		c.nsqds = append(c.nsqds, nsqtest.StartNSQD(t, func(cfg *nsqd.Config) {
			cfg.LookupdTCPAddrs = []string{c.lookupd.TCPAddr().String()}
			cfg.E2EProcessingLatencyPercentiles = []float64{0.5, 0.99}
			cfg.HTTPSAddress = ""
		}))
	}
	nsqtest.Eventually(t, testTimeout, fmt.Sprintf("%d nsqd registered", n), func() bool {
		var r struct {
			Producers []json.RawMessage `json:"producers"`
		}
		getJSON(t, "http://"+c.lookupdHTTP()+"/nodes", &r)
		return len(r.Producers) == n
	})
	return c
}

func (c *cluster) lookupdHTTP() string { return c.lookupd.HTTPAddr().String() }

// waitRegistered waits until the lookupd knows topic (and channel, if
// given) on want nsqds.
func (c *cluster) waitRegistered(t testing.TB, topic, channel string, want int) {
	t.Helper()
	nsqtest.Eventually(t, testTimeout, "lookupd registration of "+topic, func() bool {
		var r struct {
			Channels  []string          `json:"channels"`
			Producers []json.RawMessage `json:"producers"`
		}
		code, _ := request(t, "GET", "http://"+c.lookupdHTTP()+"/lookup?topic="+topic, nil, nil, &r)
		if code != http.StatusOK || len(r.Producers) != want {
			return false
		}
		if channel == "" {
			return true
		}
		for _, ch := range r.Channels {
			if ch == channel {
				return true
			}
		}
		return false
	})
}

// waitChannelProducers waits until n nsqds have registered topic/channel
// with the lookupd (their REGISTER is asynchronous).
func (c *cluster) waitChannelProducers(t testing.TB, topic, channel string, n int) {
	t.Helper()
	nsqtest.Eventually(t, testTimeout, "registration of "+topic+"/"+channel, func() bool {
		var r map[string][]json.RawMessage
		request(t, "GET", "http://"+c.lookupdHTTP()+"/debug", nil, nil, &r)
		return len(r["channel:"+topic+":"+channel]) == n
	})
}

// testConfig is an nsqadmin config on a loopback port, logging to the test.
func testConfig(t testing.TB) *Config {
	cfg := DefaultConfig()
	cfg.HTTPAddress = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: cfg.LogLevel}))
	cfg.HTTPClientConnectTimeout = time.Second
	cfg.HTTPClientRequestTimeout = 3 * time.Second
	return cfg
}

// startAdmin runs an nsqadmin until the test ends and returns its base URL
// (with the base path).
func startAdmin(t testing.TB, cfg *Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("nsqadmin.New: %v", err)
	}
	runUntilCleanup(t, "nsqadmin", s.Run)
	return s, "http://" + s.HTTPAddr().String() + normalizeBasePath(cfg.BasePath)
}

// adminFor starts an nsqadmin over the cluster's lookupd.
func (c *cluster) admin(t testing.TB, mutate func(*Config)) (*Server, string) {
	cfg := testConfig(t)
	cfg.LookupdHTTPAddresses = []string{c.lookupdHTTP()}
	if mutate != nil {
		mutate(cfg)
	}
	return startAdmin(t, cfg)
}

// request sends a request with an optional JSON body and headers ("K: V")
// and decodes a JSON answer into out (if not nil). It returns the status
// and the raw body.
func request(t testing.TB, method, url string, body any, hdr []string, out any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
		}
	}
	return resp.StatusCode, b
}

// getJSON GETs url, expects 200 and decodes the answer into out.
func getJSON(t testing.TB, url string, out any) []byte {
	t.Helper()
	code, b := request(t, "GET", url, nil, nil, out)
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d %s, want 200", url, code, b)
	}
	return b
}

// post publishes one message with nsqd's HTTP API.
func publish(t testing.TB, nsqdHTTP, topic string, n int) {
	t.Helper()
	var body strings.Builder
	for i := range n {
		fmt.Fprintf(&body, "message %d\n", i)
	}
	code, b := request(t, "POST", "http://"+nsqdHTTP+"/mpub?topic="+topic, body.String(), nil, nil)
	if code != http.StatusOK {
		t.Fatalf("mpub %s = %d %s", topic, code, b)
	}
}

// nsqdPOST calls an admin endpoint of an nsqd.
func nsqdPOST(t testing.TB, nsqdHTTP, path string) {
	t.Helper()
	code, b := request(t, "POST", "http://"+nsqdHTTP+path, nil, nil, nil)
	if code != http.StatusOK {
		t.Fatalf("POST %s%s = %d %s", nsqdHTTP, path, code, b)
	}
}

// createChannel creates a topic and its channel on an nsqd.
func createChannel(t testing.TB, nsqdHTTP, topic, channel string) {
	t.Helper()
	nsqdPOST(t, nsqdHTTP, "/topic/create?topic="+topic)
	nsqdPOST(t, nsqdHTTP, "/channel/create?topic="+topic+"&channel="+channel)
}

// topicStats returns the nsqd's own stats of a topic, or nil.
func topicStats(n *nsqtest.NSQD, topic string) *nsqd.TopicStats {
	st := n.Stats(nsqd.StatsFilter{Topic: topic, IncludeClients: true})
	for i := range st.Topics {
		if st.Topics[i].TopicName == topic {
			return &st.Topics[i]
		}
	}
	return nil
}

// channelStats returns the nsqd's own stats of a channel, or nil.
func channelStats(n *nsqtest.NSQD, topic, channel string) *nsqd.ChannelStats {
	ts := topicStats(n, topic)
	if ts == nil {
		return nil
	}
	for i := range ts.Channels {
		if ts.Channels[i].ChannelName == channel {
			return &ts.Channels[i]
		}
	}
	return nil
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// gonsqLogger sends go-nsq's log lines to the test's output while the test
// runs and drops them afterwards (its goroutines can outlive the test).
type gonsqLogger struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func newGoNSQLogger(t testing.TB) *gonsqLogger {
	l := &gonsqLogger{w: t.Output()}
	t.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l *gonsqLogger) Output(_ int, s string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		fmt.Fprintln(l.w, s)
	}
	return nil
}

// consume connects a go-nsq consumer of topic/channel to every nsqd
// (directly, not through lookupd, so it is connected when this returns)
// and stops it when the test ends. handler may be nil (finish at once).
func consume(t testing.TB, nsqds []*nsqtest.NSQD, topic, channel string, maxInFlight int, handler nsq.HandlerFunc) *nsq.Consumer {
	t.Helper()
	cfg := nsq.NewConfig()
	cfg.MaxInFlight = maxInFlight
	c, err := nsq.NewConsumer(topic, channel, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(newGoNSQLogger(t), nsq.LogLevelWarning)
	if handler == nil {
		handler = func(*nsq.Message) error { return nil }
	}
	c.AddConcurrentHandlers(handler, maxInFlight)
	var addrs []string
	for _, n := range nsqds {
		addrs = append(addrs, n.TCPAddr)
	}
	if err := c.ConnectToNSQDs(addrs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		select {
		case <-c.StopChan:
		case <-time.After(testTimeout):
			t.Errorf("consumer did not stop")
		}
	})
	return c
}

// keysOf returns the keys of a JSON object.
func keysOf(t testing.TB, raw []byte) map[string]bool {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %s", raw)
	}
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}
