package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
	"github.com/nsqx/nsqx/nsqlookupd"
)

// waitTimeout bounds every poll in these tests; nothing should come close.
// (An nsqd notices at once that its lookupd went away; NSQ's nsqd learns
// it only at its next PING, up to 15 s later.)
const waitTimeout = 10 * time.Second

// Lookupd is a running nsqlookupd. It lives in this package, not in
// internal/nsqtest, because nsqlookupd's own tests import nsqtest: nsqtest
// importing nsqlookupd would be an import cycle.
type Lookupd struct {
	*nsqlookupd.Server
	Config   *nsqlookupd.Config
	TCPAddr  string
	HTTPAddr string
	cancel   context.CancelFunc
	done     chan error
}

// StartLookupd starts an nsqlookupd on 127.0.0.1:0 (broadcasting
// 127.0.0.1, logging to the test output) with its config changed by mutate
// (may be nil), and stops it when the test ends.
func StartLookupd(t testing.TB, mutate func(*nsqlookupd.Config)) *Lookupd {
	t.Helper()
	cfg := nsqlookupd.DefaultConfig()
	cfg.TCPAddress = "127.0.0.1:0"
	cfg.HTTPAddress = "127.0.0.1:0"
	cfg.BroadcastAddress = "127.0.0.1"
	cfg.Logger = nsqtest.Logger(t).With("daemon", "nsqlookupd")
	if mutate != nil {
		mutate(cfg)
	}
	return startLookupdConfig(t, cfg)
}

func startLookupdConfig(t testing.TB, cfg *nsqlookupd.Config) *Lookupd {
	t.Helper()
	srv, err := nsqlookupd.New(cfg)
	if err != nil {
		t.Fatalf("nsqlookupd.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Lookupd{Server: srv, Config: cfg, TCPAddr: srv.TCPAddr().String(), HTTPAddr: srv.HTTPAddr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { l.done <- srv.Run(ctx) }() // ended by Stop
	t.Cleanup(func() { l.Stop(t) })
	return l
}

// Stop stops the nsqlookupd and waits for Run to return (at most 10 s).
// Stopping twice is harmless.
func (l *Lookupd) Stop(t testing.TB) {
	t.Helper()
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.cancel = nil
	select {
	case err := <-l.done:
		if err != nil {
			t.Errorf("nsqlookupd Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("nsqlookupd did not stop within 10s")
	}
}

// Restart stops the nsqlookupd and starts a new one, with an empty
// registry, on the same TCP and HTTP addresses.
func (l *Lookupd) Restart(t testing.TB) *Lookupd {
	t.Helper()
	l.Stop(t)
	cfg := *l.Config
	cfg.TCPAddress = l.TCPAddr
	cfg.HTTPAddress = l.HTTPAddr
	return startLookupdConfig(t, &cfg)
}

// startNSQD starts an nsqd registering with lookupds.
func startNSQD(t *testing.T, lookupds ...*Lookupd) *nsqtest.NSQD {
	t.Helper()
	return nsqtest.StartNSQD(t, func(c *nsqd.Config) {
		c.LookupdTCPAddrs = tcpAddrs(lookupds...)
		c.Logger = c.Logger.With("daemon", "nsqd")
	})
}

func tcpAddrs(lookupds ...*Lookupd) []string {
	var out []string
	for _, l := range lookupds {
		out = append(out, l.TCPAddr)
	}
	return out
}

func httpAddrs(lookupds ...*Lookupd) []string {
	var out []string
	for _, l := range lookupds {
		out = append(out, l.HTTPAddr)
	}
	return out
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// request sends method to http://addr+path with body and returns the
// status and the response body.
func request(t testing.TB, method, addr, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s http://%s%s: %v", method, addr, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s http://%s%s: reading body: %v", method, addr, path, err)
	}
	return res.StatusCode, string(b)
}

// mustRequest is request that fails the test unless the status is 200.
func mustRequest(t testing.TB, method, addr, path, body string) string {
	t.Helper()
	code, b := request(t, method, addr, path, body)
	if code != http.StatusOK {
		t.Fatalf("%s http://%s%s = %d %s, want 200", method, addr, path, code, b)
	}
	return b
}

// getJSON GETs path from addr into v, reporting the status; v is only
// filled on 200.
func getJSON(t testing.TB, addr, path string, v any) int {
	t.Helper()
	code, body := request(t, "GET", addr, path, "")
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("GET http://%s%s: %v in %s", addr, path, err, body)
		}
	}
	return code
}

// producer is one producer in lookupd's /lookup and /nodes.
type producer struct {
	ID               string   `json:"id"` // /debug only
	RemoteAddress    string   `json:"remote_address"`
	BroadcastAddress string   `json:"broadcast_address"`
	TCPPort          int      `json:"tcp_port"`
	HTTPPort         int      `json:"http_port"`
	Version          string   `json:"version"`
	Tombstones       []bool   `json:"tombstones"` // /nodes only
	Topics           []string `json:"topics"`     // /nodes only
}

func (p producer) tcpAddr() string { return p.BroadcastAddress + ":" + strconv.Itoa(p.TCPPort) }

// lookup is a lookupd's /lookup?topic=topic: the channels and the TCP
// addresses of the producers, sorted; ok is false on 404.
func lookup(t testing.TB, l *Lookupd, topic string) (channels, producers []string, ok bool) {
	t.Helper()
	var r struct {
		Channels  []string   `json:"channels"`
		Producers []producer `json:"producers"`
	}
	switch code := getJSON(t, l.HTTPAddr, "/lookup?topic="+topic, &r); code {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, nil, false
	default:
		t.Fatalf("GET /lookup?topic=%s = %d", topic, code)
	}
	for _, p := range r.Producers {
		producers = append(producers, p.tcpAddr())
	}
	slices.Sort(producers)
	return r.Channels, producers, true
}

// nodes is a lookupd's /nodes, keyed by the producers' TCP addresses.
func nodes(t testing.TB, l *Lookupd) map[string]producer {
	t.Helper()
	var r struct {
		Producers []producer `json:"producers"`
	}
	if code := getJSON(t, l.HTTPAddr, "/nodes", &r); code != http.StatusOK {
		t.Fatalf("GET /nodes = %d", code)
	}
	out := map[string]producer{}
	for _, p := range r.Producers {
		out[p.tcpAddr()] = p
	}
	return out
}

// debugProducers is the TCP addresses of the producers a lookupd's /debug
// lists under key ("topic:t:", "channel:t:c", "client::"), sorted; /debug
// also lists producers that are inactive or tombstoned.
func debugProducers(t testing.TB, l *Lookupd, key string) []string {
	t.Helper()
	var out []string
	for _, p := range debugEntries(t, l, key) {
		out = append(out, p.tcpAddr())
	}
	slices.Sort(out)
	return out
}

// debugEntries is what a lookupd's /debug lists under key.
func debugEntries(t testing.TB, l *Lookupd, key string) []producer {
	t.Helper()
	var r map[string][]producer
	if code := getJSON(t, l.HTTPAddr, "/debug", &r); code != http.StatusOK {
		t.Fatalf("GET /debug = %d", code)
	}
	return r[key]
}

// producersAre reports whether l lists exactly the nsqds ns (none: the
// topic may be missing or have no producers) in /lookup?topic=topic.
func producersAre(t testing.TB, l *Lookupd, topic string, ns ...*nsqtest.NSQD) bool {
	t.Helper()
	_, got, ok := lookup(t, l, topic)
	want := nsqdAddrs(ns...)
	if !ok {
		return len(want) == 0
	}
	return slices.Equal(got, want)
}

func nsqdAddrs(ns ...*nsqtest.NSQD) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, n.TCPAddr)
	}
	slices.Sort(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// waitProducers waits until every lookupd in ls lists exactly ns as the
// producers of topic.
func waitProducers(t testing.TB, ls []*Lookupd, topic string, ns ...*nsqtest.NSQD) {
	t.Helper()
	for _, l := range ls {
		nsqtest.Eventually(t, waitTimeout, fmt.Sprintf("lookupd %s to list %v for topic %s", l.HTTPAddr, nsqdAddrs(ns...), topic), func() bool {
			return producersAre(t, l, topic, ns...)
		})
	}
}

// stats is an nsqd's /stats?format=json.
func stats(t testing.TB, n *nsqtest.NSQD) nsqd.Stats {
	t.Helper()
	var s nsqd.Stats
	if code := getJSON(t, n.HTTPAddr, "/stats?format=json", &s); code != http.StatusOK {
		t.Fatalf("GET /stats = %d", code)
	}
	return s
}

// channelStats returns one channel's stats from an nsqd, if it has it.
func channelStats(t testing.TB, n *nsqtest.NSQD, topic, channel string) (nsqd.ChannelStats, bool) {
	t.Helper()
	for _, ts := range stats(t, n).Topics {
		if ts.TopicName != topic {
			continue
		}
		for _, cs := range ts.Channels {
			if cs.ChannelName == channel {
				return cs, true
			}
		}
	}
	return nsqd.ChannelStats{}, false
}

// goNSQLogger sends go-nsq's logs to the test output until the test ends:
// go-nsq's Stop does not wait for all of its goroutines, which may log
// afterwards.
type goNSQLogger struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func newGoNSQLogger(t *testing.T) *goNSQLogger {
	l := &goNSQLogger{w: t.Output()}
	t.Cleanup(func() { // registered first, so it runs after go-nsq's Stop
		l.mu.Lock()
		defer l.mu.Unlock()
		l.done = true
	})
	return l
}

func (l *goNSQLogger) Output(_ int, s string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return nil
	}
	_, err := fmt.Fprintln(l.w, s)
	return err
}

// startConsumer starts a go-nsq consumer of topic/channel that finds its
// nsqds through lookupds, polling them every 200 ms, and stops it when
// the test ends.
func startConsumer(t *testing.T, logger *goNSQLogger, topic, channel string, h nsq.HandlerFunc, lookupds ...*Lookupd) *nsq.Consumer {
	t.Helper()
	cfg := nsq.NewConfig()
	cfg.LookupdPollInterval = 200 * time.Millisecond
	cfg.MaxInFlight = 100
	c, err := nsq.NewConsumer(topic, channel, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(logger, nsq.LogLevelWarning)
	c.AddHandler(h)
	t.Cleanup(func() {
		c.Stop()
		select {
		case <-c.StopChan:
		case <-time.After(10 * time.Second):
			t.Errorf("go-nsq consumer %s/%s did not stop", topic, channel)
		}
	})
	if err := c.ConnectToNSQLookupds(httpAddrs(lookupds...)); err != nil {
		t.Fatalf("ConnectToNSQLookupds: %v", err)
	}
	return c
}

// startProducer starts a go-nsq producer to n, stopped when the test ends.
func startProducer(t *testing.T, logger *goNSQLogger, n *nsqtest.NSQD) *nsq.Producer {
	t.Helper()
	p, err := nsq.NewProducer(n.TCPAddr, nsq.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	p.SetLogger(logger, nsq.LogLevelWarning)
	t.Cleanup(p.Stop)
	return p
}
