package clusterinfo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeNode is an HTTP server answering fixed bodies per path (the query
// string ignored unless the key includes it) and recording requests.
type fakeNode struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   map[string]string // "GET /path" or "GET /path?query" → JSON
	requests []string          // "METHOD /path?query"
}

func newFakeNode(t *testing.T, bodies map[string]string) *fakeNode {
	t.Helper()
	f := &fakeNode{bodies: bodies}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
		body, ok := f.bodies[r.Method+" "+r.URL.RequestURI()]
		if !ok {
			body, ok = f.bodies[r.Method+" "+r.URL.Path]
		}
		f.mu.Unlock()
		w.Header().Set("X-NSQ-Content-Type", "nsq; version=1.0")
		if !ok {
			if r.Method == http.MethodPost {
				return // NSQ's admin POSTs answer 200 with an empty body
			}
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"message":"NOT_FOUND"}`)
			return
		}
		fmt.Fprint(w, body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeNode) addr() string { return strings.TrimPrefix(f.URL, "http://") }

func (f *fakeNode) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func testClient() *Client {
	return New(Config{ConnectTimeout: time.Second, RequestTimeout: 2 * time.Second})
}

func nodesBody(nodes ...string) string {
	return `{"producers":[` + strings.Join(nodes, ",") + `]}`
}

func lookupdNodeJSON(host string, tcp, http int, version string, topics []string, tomb []bool) string {
	t, _ := json.Marshal(topics)
	b, _ := json.Marshal(tomb)
	return fmt.Sprintf(`{"remote_address":"127.0.0.1:5%d","hostname":%q,"broadcast_address":"10.0.0.%d","tcp_port":%d,"http_port":%d,"version":%q,"topics":%s,"tombstones":%s}`,
		tcp%1000, host, tcp%100, tcp, http, version, t, b)
}

func TestLookupdProducersMerge(t *testing.T) {
	a := lookupdNodeJSON("alpha", 4150, 4151, "1.3.0", []string{"b", "a"}, []bool{false, true})
	b := lookupdNodeJSON("beta", 4250, 4251, "1.2.1", []string{"a"}, []bool{false})
	l1 := newFakeNode(t, map[string]string{"GET /nodes": nodesBody(a, b)})
	l2 := newFakeNode(t, map[string]string{"GET /nodes": nodesBody(b)})

	ps, err := testClient().LookupdProducers(context.Background(), []string{l1.addr(), l2.addr()})
	if err != nil {
		t.Fatalf("LookupdProducers = %v", err)
	}
	if len(ps) != 2 || ps[0].Hostname != "alpha" || ps[1].Hostname != "beta" {
		t.Fatalf("LookupdProducers = %+v, want alpha and beta", ps)
	}
	alpha, beta := ps[0], ps[1]
	if want := []ProducerTopic{{"a", true}, {"b", false}}; !reflect.DeepEqual(alpha.Topics, want) {
		t.Errorf("alpha topics = %v, want %v (sorted, tombstones kept)", alpha.Topics, want)
	}
	if len(alpha.RemoteAddresses) != 1 || len(beta.RemoteAddresses) != 2 {
		t.Errorf("remote addresses = %v, %v; want 1 and 2 entries", alpha.RemoteAddresses, beta.RemoteAddresses)
	}
	if !strings.HasPrefix(beta.RemoteAddresses[0], l1.addr()+"/") && !strings.HasPrefix(beta.RemoteAddresses[0], l2.addr()+"/") {
		t.Errorf("remote address %q does not name its lookupd", beta.RemoteAddresses[0])
	}
	if alpha.OutOfDate || !beta.OutOfDate {
		t.Errorf("out of date = %v, %v; want false, true", alpha.OutOfDate, beta.OutOfDate)
	}
	if !beta.Inconsistent(3) || beta.Inconsistent(2) {
		t.Errorf("Inconsistent wrong for %v", beta.RemoteAddresses)
	}
	if got := alpha.HTTPAddress(); got != "10.0.0.50:4151" {
		t.Errorf("HTTPAddress = %q", got)
	}
	if ps.Search("10.0.0.50:4251") != beta || ps.Search("nope:1") != nil {
		t.Errorf("Search did not find nodes by HTTP address")
	}
}

func TestPartialAndTotalFailure(t *testing.T) {
	live := newFakeNode(t, map[string]string{"GET /topics": `{"topics":["b","a"]}`})
	dead := deadAddr(t)
	c := testClient()

	topics, err := c.LookupdTopics(context.Background(), []string{live.addr(), dead})
	var pe *PartialError
	if !errors.As(err, &pe) || len(pe.Errs) != 1 || !strings.Contains(err.Error(), dead) {
		t.Fatalf("one lookupd down: err = %v, want a PartialError naming %s", err, dead)
	}
	if !reflect.DeepEqual(topics, []string{"a", "b"}) {
		t.Errorf("topics = %v, want [a b] from the live lookupd", topics)
	}

	_, err = c.LookupdTopics(context.Background(), []string{dead, deadAddr(t)})
	if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), "failed to query any nsqlookupd") {
		t.Fatalf("all lookupds down: err = %v, want a total failure", err)
	}
}

func TestRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	live := newFakeNode(t, map[string]string{"GET /topics": `{"topics":["x"]}`})

	c := New(Config{ConnectTimeout: time.Second, RequestTimeout: 200 * time.Millisecond})
	start := time.Now()
	topics, err := c.LookupdTopics(context.Background(), []string{live.addr(), strings.TrimPrefix(hang.URL, "http://")})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("query took %v with a 200ms request timeout", d)
	}
	var pe *PartialError
	if !errors.As(err, &pe) || !reflect.DeepEqual(topics, []string{"x"}) {
		t.Errorf("LookupdTopics = %v, %v; want [x] and a partial error", topics, err)
	}
}

func TestTLSRequiredRetry(t *testing.T) {
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"version":"1.3.0","broadcast_address":"h","hostname":"h","http_port":1,"tcp_port":2}`)
	}))
	t.Cleanup(secure.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(secure.URL, "https://"))
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"message":"TLS_REQUIRED","https_port":%s}`, port)
	}))
	t.Cleanup(plain.Close)

	c := New(Config{TLS: secure.Client().Transport.(*http.Transport).TLSClientConfig})
	var info nsqdInfo
	if err := c.getJSON(context.Background(), endpoint(strings.TrimPrefix(plain.URL, "http://"), "/info", nil), &info); err != nil {
		t.Fatalf("getJSON after TLS_REQUIRED = %v", err)
	}
	if info.Version != "1.3.0" {
		t.Errorf("info = %+v, want the HTTPS server's answer", info)
	}
}

func TestStatusError(t *testing.T) {
	f := newFakeNode(t, nil)
	err := testClient().getJSON(context.Background(), f.URL+"/stats", &struct{}{})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusNotFound || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Errorf("getJSON of a 404 = %v, want a StatusError with the body", err)
	}
}

func TestUnwrapLegacy(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"status_code":200,"status_txt":"OK","data":{"topics":["a"]}}`, `{"topics":["a"]}`},
		{`{"topics":["a"]}`, `{"topics":["a"]}`},
		{`{"status_code":1}`, `{"status_code":1}`},
	}
	for _, tc := range tests {
		if got := string(unwrapLegacy([]byte(tc.in))); got != tc.want {
			t.Errorf("unwrapLegacy(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct{ addr, path, want string }{
		{"127.0.0.1:4151", "/stats", "http://127.0.0.1:4151/stats"},
		{"https://n1:4152/", "/info", "https://n1:4152/info"},
		{"http://n1:4151", "/info", "http://n1:4151/info"},
	}
	for _, tc := range tests {
		if got := endpoint(tc.addr, tc.path, nil); got != tc.want {
			t.Errorf("endpoint(%q, %q) = %q, want %q", tc.addr, tc.path, got, tc.want)
		}
	}
	if got := endpoint("h:1", "/lookup", url.Values{"topic": {"a#ephemeral"}}); got != "http://h:1/lookup?topic=a%23ephemeral" {
		t.Errorf("endpoint with query = %q", got)
	}
}

// statsBody is an nsqd /stats answer with one topic and one channel.
func statsBody(topic, channel string, depth, msgs int64, p99 float64, count int, clients string) string {
	return fmt.Sprintf(`{"version":"1.3.0","health":"OK","start_time":1,"topics":[{"topic_name":%q,"depth":%d,"backend_depth":1,"message_count":%d,"message_bytes":0,"paused":false,
"e2e_processing_latency":{"count":%d,"percentiles":[{"quantile":0.99,"value":%g}]},
"channels":[{"channel_name":%q,"depth":%d,"backend_depth":0,"in_flight_count":2,"deferred_count":1,"message_count":%d,"requeue_count":3,"timeout_count":4,"client_count":1,"paused":true,
"e2e_processing_latency":{"count":%d,"percentiles":[{"quantile":0.99,"value":%g}]},"clients":%s}]}],"producers":[]}`,
		topic, depth, msgs, count, p99, channel, depth*2, msgs, count, p99, clients)
}

func TestNSQDStatsAggregate(t *testing.T) {
	client := `[{"client_id":"c1","hostname":"h1","version":"V2","remote_address":"1.2.3.4:5","user_agent":"go-nsq/1.1.0","connect_ts":%d,"in_flight_count":2,"ready_count":5}]`
	n1 := newFakeNode(t, map[string]string{"GET /stats": statsBody("orders", "billing", 10, 100, 2e6, 10, fmt.Sprintf(client, time.Now().Add(-time.Minute).Unix()))})
	n2 := newFakeNode(t, map[string]string{"GET /stats": statsBody("orders", "billing", 5, 50, 8e6, 30, "[]")})
	producers := Producers{hostProducer(t, n1, "b-host"), hostProducer(t, n2, "a-host")}

	topics, channels, err := testClient().NSQDStats(context.Background(), producers, "orders", "", true)
	if err != nil {
		t.Fatalf("NSQDStats = %v", err)
	}
	if len(topics) != 2 || topics[0].Hostname != "a-host" || topics[0].Node != n2.addr() {
		t.Fatalf("topics = %+v, want one per node sorted by hostname", topics)
	}
	if topics[1].MemoryDepth != 9 || topics[1].BackendDepth != 1 {
		t.Errorf("memory depth = %d, want depth - backend depth = 9", topics[1].MemoryDepth)
	}
	agg := AggregateTopics(topics)
	if len(agg) != 1 {
		t.Fatalf("AggregateTopics = %d topics, want 1", len(agg))
	}
	a := agg[0]
	if a.Node != "*" || a.Depth != 15 || a.MessageCount != 150 || len(a.NodeStats) != 2 || len(a.Channels) != 1 {
		t.Errorf("aggregate = node %q depth %d messages %d nodes %d channels %d; want *, 15, 150, 2, 1",
			a.Node, a.Depth, a.MessageCount, len(a.NodeStats), len(a.Channels))
	}
	if a.InFlightCount() != 4 || a.ChannelDepth() != 30 || a.ClientCount() != 2 {
		t.Errorf("in flight %d, channel depth %d, clients %d; want 4, 30, 2", a.InFlightCount(), a.ChannelDepth(), a.ClientCount())
	}

	c := channels["billing"]
	if c == nil {
		t.Fatalf("channels = %v, want key billing", channels)
	}
	if c.Depth != 30 || c.InFlightCount != 4 || c.DeferredCount != 2 || c.RequeueCount != 6 || c.TimeoutCount != 8 || c.MessageCount != 150 || c.ClientCount != 2 || !c.Paused {
		t.Errorf("channel aggregate = %+v", c)
	}
	if len(c.Clients) != 1 || c.Clients[0].Node != n1.addr() || c.Clients[0].Connected < 59*time.Second {
		t.Errorf("clients = %+v, want one from %s connected about a minute", c.Clients, n1.addr())
	}
	want := Percentile{Quantile: 0.99, Min: 2e6, Max: 8e6, Average: (2e6*10 + 8e6*30) / 40, Count: 40}
	if c.E2E == nil || c.E2E.Count != 40 || c.E2E.Addr != "*" || len(c.E2E.Percentiles) != 1 || c.E2E.Percentiles[0] != want {
		t.Errorf("E2E = %+v, want %+v over 40 samples", c.E2E, want)
	}

	_, all, err := testClient().NSQDStats(context.Background(), producers, "", "", false)
	if err != nil || all["orders:billing"] == nil {
		t.Errorf("NSQDStats for all topics keys = %v, %v; want orders:billing", keys(all), err)
	}
	for _, n := range []*fakeNode{n1, n2} {
		reqs := n.got()
		if last := reqs[len(reqs)-1]; !strings.Contains(last, "include_clients=false") || !strings.Contains(last, "format=json") {
			t.Errorf("last request %q, want format=json&include_clients=false", last)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func hostProducer(t *testing.T, n *fakeNode, host string) *Producer {
	h, p, _ := net.SplitHostPort(n.addr())
	port, _ := strconv.Atoi(p)
	return &Producer{Hostname: host, BroadcastAddress: h, HTTPPort: port}
}

func TestE2EAdd(t *testing.T) {
	e := &E2E{}
	e.add(&E2E{Count: 1, Percentiles: []Percentile{{Quantile: 0.5, Min: 5, Max: 5, Average: 5, Count: 1}}})
	e.add(&E2E{Count: 3, Percentiles: []Percentile{{Quantile: 0.5, Min: 1, Max: 1, Average: 1, Count: 3}, {Quantile: 0.9, Min: 7, Max: 7, Average: 7, Count: 3}}})
	e.add(nil)
	want := []Percentile{{Quantile: 0.5, Min: 1, Max: 5, Average: 2, Count: 4}, {Quantile: 0.9, Min: 7, Max: 7, Average: 7, Count: 3}}
	if e.Count != 4 || !reflect.DeepEqual(e.Percentiles, want) {
		t.Errorf("merged E2E = %+v, want count 4 and %+v", e, want)
	}
}

func TestParseSemver(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.3.0", "1.2.1", 1},
		{"1.2.1", "1.3.0", -1},
		{"v1.3.0", "1.3.0", 0},
		{"1.3.0-alpha", "1.3.0", -1},
		{"1.3.0+build", "1.3.0", 0},
		{"1.10.0", "1.9.9", 1},
		{"junk", "0.0.0", 0},
		{"1.2", "0.0.0", 0},
	}
	for _, tc := range tests {
		if got := parseSemver(tc.a).compare(parseSemver(tc.b)); got != tc.want {
			t.Errorf("compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestLookupdTopicProducersNotFound(t *testing.T) {
	has := newFakeNode(t, map[string]string{"GET /lookup": nodesBody(lookupdNodeJSON("n", 4150, 4151, "1.3.0", nil, nil))})
	hasNot := newFakeNode(t, nil) // answers 404 TOPIC_NOT_FOUND-like
	ps, err := testClient().LookupdTopicProducers(context.Background(), "t", []string{has.addr(), hasNot.addr()})
	if err != nil || len(ps) != 1 {
		t.Errorf("LookupdTopicProducers = %v, %v; want one producer and no error for a 404", ps, err)
	}
}

func TestNSQDProducers(t *testing.T) {
	info := `{"version":"1.3.0","broadcast_address":"127.0.0.1","hostname":"h","http_port":%s,"tcp_port":4150}`
	n := newFakeNode(t, nil)
	_, port, _ := net.SplitHostPort(n.addr())
	n.bodies = map[string]string{
		"GET /info":  fmt.Sprintf(info, port),
		"GET /stats": `{"topics":[{"topic_name":"a"},{"topic_name":"b"}]}`,
	}
	c := testClient()
	ps, err := c.NSQDProducers(context.Background(), []string{n.addr(), deadAddr(t)})
	var pe *PartialError
	if !errors.As(err, &pe) || len(ps) != 1 || ps[0].HTTPAddress() != n.addr() || len(ps[0].Topics) != 2 {
		t.Fatalf("NSQDProducers = %+v, %v; want the live node with 2 topics and a partial error", ps, err)
	}
	tp, err := c.NSQDTopicProducers(context.Background(), "zzz", []string{n.addr()})
	if err != nil {
		t.Fatal(err)
	}
	// The fake ignores the topic filter; a node whose answer lacks the
	// topic is not a producer of it.
	if len(tp) != 0 {
		t.Errorf("NSQDTopicProducers(zzz) = %v, want none", tp)
	}
	tp, _ = c.NSQDTopicProducers(context.Background(), "a", []string{n.addr()})
	if len(tp) != 1 {
		t.Errorf("NSQDTopicProducers(a) = %v, want the node", tp)
	}
}

func TestActions(t *testing.T) {
	nsqd := newFakeNode(t, nil)
	h, p, _ := net.SplitHostPort(nsqd.addr())
	port, _ := strconv.Atoi(p)
	lookupBody := fmt.Sprintf(`{"channels":[],"producers":[{"remote_address":"x","hostname":"n","broadcast_address":%q,"tcp_port":1,"http_port":%d,"version":"1.3.0"}]}`, h, port)
	l1 := newFakeNode(t, map[string]string{"GET /lookup": lookupBody})
	l2 := newFakeNode(t, map[string]string{"GET /lookup": lookupBody})
	lookupds := []string{l1.addr(), l2.addr()}
	c := testClient()
	ctx := context.Background()

	tests := []struct {
		name          string
		do            func() error
		wantNSQD      []string
		wantLookupdDo []string // POSTs each lookupd must see
	}{
		{"pause topic", func() error { return c.TopicAction(ctx, "pause", "t", lookupds, nil) },
			[]string{"POST /topic/pause?topic=t"}, nil},
		{"empty channel", func() error { return c.ChannelAction(ctx, "empty", "t", "c#ephemeral", lookupds, nil) },
			[]string{"POST /channel/empty?channel=c%23ephemeral&topic=t"}, nil},
		{"delete topic", func() error { return c.DeleteTopic(ctx, "t", lookupds, nil) },
			[]string{"POST /topic/delete?topic=t"}, []string{"POST /topic/delete?topic=t"}},
		{"delete channel", func() error { return c.DeleteChannel(ctx, "t", "c", lookupds, nil) },
			[]string{"POST /channel/delete?channel=c&topic=t"}, []string{"POST /channel/delete?channel=c&topic=t"}},
		{"create", func() error { return c.CreateTopicChannel(ctx, "t", "c", lookupds, nil) },
			[]string{"POST /channel/create?channel=c&topic=t"}, []string{"POST /topic/create?topic=t", "POST /channel/create?channel=c&topic=t"}},
		{"tombstone", func() error { return c.TombstoneNodeForTopic(ctx, "t", nsqd.addr(), lookupds) },
			[]string{"POST /topic/delete?topic=t"}, []string{"POST /topic/tombstone?node=" + url.QueryEscape(nsqd.addr()) + "&topic=t"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(nsqd.got())
			lBefore := len(l1.got())
			if err := tc.do(); err != nil {
				t.Fatalf("action = %v", err)
			}
			if got := nsqd.got()[before:]; !reflect.DeepEqual(got, tc.wantNSQD) {
				t.Errorf("nsqd got %q, want %q", got, tc.wantNSQD)
			}
			var posts []string
			for _, r := range l1.got()[lBefore:] {
				if strings.HasPrefix(r, "POST") {
					posts = append(posts, r)
				}
			}
			if !reflect.DeepEqual(posts, tc.wantLookupdDo) {
				t.Errorf("lookupd got POSTs %q, want %q", posts, tc.wantLookupdDo)
			}
		})
	}

	// Creating without lookupds (nsqd mode) creates on every nsqd.
	before := len(nsqd.got())
	if err := c.CreateTopicChannel(ctx, "t2", "c2", nil, []string{nsqd.addr()}); err != nil {
		t.Fatal(err)
	}
	if got, want := nsqd.got()[before:], []string{"POST /topic/create?topic=t2", "POST /channel/create?channel=c2&topic=t2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("nsqd-mode create: nsqd got %q, want %q", got, want)
	}

	// A node that fails an action is a partial failure, not an abort.
	dead := deadAddr(t)
	err := c.TombstoneNodeForTopic(ctx, "t", dead, lookupds)
	var pe *PartialError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), dead) {
		t.Errorf("tombstone of a dead node = %v, want a partial error naming it", err)
	}
}

// observed is one call of Config.Observe; outcome is "ok" (nil error),
// "status" (a *StatusError: the node answered) or "down" (no answer).
type observed struct {
	kind, addr, path, outcome string
}

func sortObserved(o []observed) {
	slices.SortFunc(o, func(a, b observed) int { return strings.Compare(a.addr+a.path, b.addr+b.path) })
}

// TestObserve checks that Config.Observe sees each request to a node once,
// with its kind, address, path and outcome, and nothing else.
func TestObserve(t *testing.T) {
	var (
		mu  sync.Mutex
		got []observed
	)
	c := New(Config{ConnectTimeout: time.Second, RequestTimeout: 2 * time.Second,
		Observe: func(kind, addr, path string, d time.Duration, err error) {
			if d < 0 {
				t.Errorf("Observe(%s %s) duration %v", addr, path, d)
			}
			var se *StatusError
			outcome := "down"
			switch {
			case err == nil:
				outcome = "ok"
			case errors.As(err, &se):
				outcome = "status"
			}
			mu.Lock()
			got = append(got, observed{kind, addr, path, outcome})
			mu.Unlock()
		}})
	check := func(what string, want ...observed) {
		t.Helper()
		mu.Lock()
		have := got
		got = nil
		mu.Unlock()
		sortObserved(have)
		sortObserved(want)
		if !reflect.DeepEqual(have, want) {
			t.Errorf("%s: observed %v, want %v", what, have, want)
		}
	}
	l := newFakeNode(t, map[string]string{"GET /topics": `{"topics":["a"]}`})
	n := newFakeNode(t, map[string]string{"GET /stats": `{"topics":[{"topic_name":"a"}]}`})
	dead := deadAddr(t)
	ctx := context.Background()

	c.LookupdTopics(ctx, []string{l.addr()})
	check("LookupdTopics", observed{KindLookupd, l.addr(), "/topics", "ok"})

	c.NSQDTopics(ctx, []string{n.addr(), dead})
	check("NSQDTopics", observed{KindNSQD, n.addr(), "/stats", "ok"}, observed{KindNSQD, dead, "/stats", "down"})

	// A lookupd's 404 to /lookup means no producers: not an error.
	c.LookupdTopicProducers(ctx, "nope", []string{l.addr()})
	check("LookupdTopicProducers", observed{KindLookupd, l.addr(), "/lookup", "ok"})

	// A 404 anywhere else is.
	c.NSQDProducers(ctx, []string{l.addr()})
	check("NSQDProducers of a lookupd", observed{KindNSQD, l.addr(), "/info", "status"})

	c.TombstoneNodeForTopic(ctx, "a", n.addr(), []string{l.addr()})
	check("TombstoneNodeForTopic",
		observed{KindLookupd, l.addr(), "/topic/tombstone", "ok"}, observed{KindNSQD, n.addr(), "/topic/delete", "ok"})

	// Requests to other servers are not node requests.
	c.PostJSON(ctx, n.URL+"/hook", []byte(`{}`))
	c.GetJSON(ctx, n.URL+"/stats", &struct{}{})
	check("PostJSON and GetJSON")
}
