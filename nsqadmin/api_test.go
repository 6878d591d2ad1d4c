package nsqadmin

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/clusterinfo"
	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// keys NSQ's nsqadmin puts in each object; ours may add, never drop.
var (
	topicKeys = []string{"node", "hostname", "topic_name", "depth", "memory_depth", "backend_depth",
		"message_count", "nodes", "channels", "paused", "e2e_processing_latency"}
	channelKeys = []string{"node", "hostname", "topic_name", "channel_name", "depth", "memory_depth",
		"backend_depth", "in_flight_count", "deferred_count", "requeue_count", "timeout_count",
		"message_count", "client_count", "nodes", "clients", "paused", "e2e_processing_latency"}
	clientKeys = []string{"node", "remote_address", "version", "client_id", "hostname", "user_agent",
		"connect_ts", "connected", "in_flight_count", "ready_count", "finish_count", "requeue_count",
		"message_count", "sample_rate", "deflate", "snappy", "authed", "auth_identity",
		"auth_identity_url", "tls", "tls_cipher_suite", "tls_version", "tls_negotiated_protocol",
		"tls_negotiated_protocol_is_mutual"}
	producerKeys = []string{"remote_addresses", "remote_address", "hostname", "broadcast_address",
		"tcp_port", "http_port", "version", "topics", "out_of_date"}
	e2eKeys = []string{"count", "percentiles", "topic", "channel", "host"}
)

func checkKeys(t *testing.T, what string, raw json.RawMessage, want []string) {
	t.Helper()
	got := keysOf(t, raw)
	for _, k := range want {
		if !got[k] {
			t.Errorf("%s lacks key %q: %s", what, k, raw)
		}
	}
}

// TestReadAPI checks every read route against a real lookupd and two
// nsqds, comparing the figures with what each nsqd reports itself.
func TestReadAPI(t *testing.T) {
	c := startCluster(t, 2)
	n0, n1 := c.nsqds[0], c.nsqds[1]
	publish(t, n0.HTTPAddr, "orders", 10)
	publish(t, n1.HTTPAddr, "orders", 5)
	nsqdPOST(t, n0.HTTPAddr, "/channel/create?topic=orders&channel=billing")
	nsqdPOST(t, n1.HTTPAddr, "/channel/create?topic=orders&channel=billing")
	nsqdPOST(t, n0.HTTPAddr, "/channel/create?topic=orders&channel=audit")
	publish(t, n0.HTTPAddr, "orders", 4)
	publish(t, n1.HTTPAddr, "events", 3)
	c.waitRegistered(t, "orders", "audit", 2)
	c.waitRegistered(t, "events", "", 1)
	_, base := c.admin(t, nil)

	t.Run("topics", func(t *testing.T) {
		code, b := request(t, "GET", base+"/api/topics", nil, nil, nil)
		if want := `{"topics":["events","orders"],"message":""}`; code != 200 || string(b) != want {
			t.Errorf("GET /api/topics = %d %s, want 200 %s", code, b, want)
		}
	})

	t.Run("topic", func(t *testing.T) {
		var raw json.RawMessage
		getJSON(t, base+"/api/topics/orders", &raw)
		checkKeys(t, "topic", raw, append(topicKeys, "message"))
		var got clusterinfo.TopicStats
		json.Unmarshal(raw, &got)
		s0, s1 := topicStats(n0, "orders"), topicStats(n1, "orders")
		if got.Node != "*" || got.TopicName != "orders" || got.Depth != s0.Depth+s1.Depth ||
			got.MessageCount != int64(s0.MessageCount+s1.MessageCount) || got.MessageCount != 19 {
			t.Errorf("topic = node %q depth %d messages %d; want *, %d, 19", got.Node, got.Depth, got.MessageCount, s0.Depth+s1.Depth)
		}
		nodes := []string{got.NodeStats[0].Node, got.NodeStats[1].Node}
		if len(got.NodeStats) != 2 || !slices.Contains(nodes, n0.HTTPAddr) || !slices.Contains(nodes, n1.HTTPAddr) {
			t.Errorf("nodes = %v, want %s and %s", nodes, n0.HTTPAddr, n1.HTTPAddr)
		}
		if len(got.Channels) != 2 || got.Channels[0].ChannelName != "audit" || got.Channels[1].ChannelName != "billing" {
			t.Fatalf("channels = %+v, want audit and billing", got.Channels)
		}
		// nsqd may also pre-create audit on n1 from the lookupd, so the
		// expected figures come from what each nsqd has.
		for _, ch := range got.Channels {
			var depth, msgs int64
			var nodes int
			for _, n := range c.nsqds {
				if cs := channelStats(n, "orders", ch.ChannelName); cs != nil {
					depth += cs.Depth
					msgs += int64(cs.MessageCount)
					nodes++
				}
			}
			if ch.Depth != depth || ch.MessageCount != msgs || len(ch.NodeStats) != nodes || ch.Node != "*" {
				t.Errorf("%s = node %q depth %d messages %d nodes %d; want *, %d, %d, %d", ch.ChannelName, ch.Node,
					ch.Depth, ch.MessageCount, len(ch.NodeStats), depth, msgs, nodes)
			}
		}
		var e2e struct {
			E2E json.RawMessage `json:"e2e_processing_latency"`
		}
		json.Unmarshal(raw, &e2e)
		checkKeys(t, "e2e_processing_latency", e2e.E2E, e2eKeys)
		if got.E2E.Addr != "*" || len(got.E2E.Percentiles) != 2 {
			t.Errorf("topic E2E = %+v, want host * and 2 percentiles", got.E2E)
		}
	})

	t.Run("channel", func(t *testing.T) {
		var raw json.RawMessage
		getJSON(t, base+"/api/topics/orders/billing", &raw)
		checkKeys(t, "channel", raw, append(channelKeys, "message"))
		var got clusterinfo.ChannelStats
		json.Unmarshal(raw, &got)
		cb0, cb1 := channelStats(n0, "orders", "billing"), channelStats(n1, "orders", "billing")
		if got.Node != "*" || got.ChannelName != "billing" || got.Depth != cb0.Depth+cb1.Depth || len(got.NodeStats) != 2 || len(got.Clients) != 0 {
			t.Errorf("channel = %+v, want depth %d over 2 nodes and no clients", got, cb0.Depth+cb1.Depth)
		}
		var missing clusterinfo.ChannelStats
		getJSON(t, base+"/api/topics/orders/nope", &missing)
		if missing.ChannelName != "nope" || missing.Depth != 0 || len(missing.NodeStats) != 0 {
			t.Errorf("unknown channel = %+v, want an empty channel", missing)
		}
	})

	t.Run("nodes", func(t *testing.T) {
		var r struct {
			Nodes   []json.RawMessage `json:"nodes"`
			Message string            `json:"message"`
		}
		getJSON(t, base+"/api/nodes", &r)
		if len(r.Nodes) != 2 || r.Message != "" {
			t.Fatalf("nodes = %d, message %q; want 2 and none", len(r.Nodes), r.Message)
		}
		for _, raw := range r.Nodes {
			checkKeys(t, "node", raw, producerKeys)
			var p clusterinfo.Producer
			json.Unmarshal(raw, &p)
			if p.Version != "1.3.0" || p.OutOfDate || len(p.RemoteAddresses) != 1 ||
				!strings.HasPrefix(p.RemoteAddresses[0], c.lookupdHTTP()+"/") {
				t.Errorf("node = %+v", p)
			}
			want := []clusterinfo.ProducerTopic{{Topic: "orders"}}
			if p.HTTPAddress() == n1.HTTPAddr {
				want = []clusterinfo.ProducerTopic{{Topic: "events"}, {Topic: "orders"}}
			}
			if !reflect.DeepEqual(p.Topics, want) {
				t.Errorf("node %s topics = %v, want %v", p.HTTPAddress(), p.Topics, want)
			}
		}
	})

	t.Run("node", func(t *testing.T) {
		var raw json.RawMessage
		getJSON(t, base+"/api/nodes/"+n0.HTTPAddr, &raw)
		checkKeys(t, "node", raw, []string{"node", "topics", "total_messages", "total_clients", "message"})
		var v nodeView
		json.Unmarshal(raw, &v)
		if v.Node != n0.HTTPAddr || len(v.TopicStats) != 1 || v.TopicStats[0].TopicName != "orders" ||
			v.TotalMessages != 14 || v.TotalClients != 0 || len(v.TopicStats[0].Channels) != 2 {
			t.Errorf("node = %+v", v)
		}
		code, b := request(t, "GET", base+"/api/nodes/10.9.9.9:1", nil, nil, nil)
		if code != http.StatusNotFound || string(b) != `{"message":"NODE_NOT_FOUND"}` {
			t.Errorf("unknown node = %d %s, want 404 NODE_NOT_FOUND", code, b)
		}
	})

	t.Run("counter", func(t *testing.T) {
		var r struct {
			Stats map[string]counterStats `json:"stats"`
		}
		getJSON(t, base+"/api/counter", &r)
		want := map[string]counterStats{}
		for _, n := range c.nsqds {
			for _, ts := range n.Stats(nsqd.StatsFilter{}).Topics {
				for _, cs := range ts.Channels {
					want[ts.TopicName+":"+cs.ChannelName+":"+n.HTTPAddr] = counterStats{n.HTTPAddr, ts.TopicName, cs.ChannelName, int64(cs.MessageCount)}
				}
			}
		}
		if !reflect.DeepEqual(r.Stats, want) {
			t.Errorf("counter = %v, want %v", r.Stats, want)
		}
	})

	t.Run("overview", func(t *testing.T) {
		var o overview
		getJSON(t, base+"/api/overview", &o)
		if o.Totals.Topics != 2 || o.Totals.Nodes != 2 || o.Totals.MessageCount != 22 || o.Totals.Channels != 2 || len(o.Topics) != 2 {
			t.Errorf("overview totals = %+v", o.Totals)
		}
	})

	t.Run("inactive", func(t *testing.T) {
		nsqdPOST(t, c.lookupdHTTP(), "/channel/create?topic=lonely&channel=c1")
		code, b := request(t, "GET", base+"/api/topics?inactive=true", nil, nil, nil)
		if want := `{"topics":{"lonely":["c1"]},"message":""}`; code != 200 || string(b) != want {
			t.Errorf("GET /api/topics?inactive=true = %d %s, want %s", code, b, want)
		}
	})

	t.Run("conventions", func(t *testing.T) {
		resp, err := httpClient.Get(base + "/api/topics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if h := resp.Header.Get("X-NSQ-Content-Type"); h != "nsq; version=1.0" {
			t.Errorf("X-NSQ-Content-Type = %q", h)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("Content-Type = %q", ct)
		}
		tests := []struct {
			method, path string
			code         int
			body         string
		}{
			{"GET", "/ping", 200, "OK"},
			{"GET", "/api/nope", 404, `{"message":"NOT_FOUND"}`},
			{"PUT", "/api/topics", 405, `{"message":"METHOD_NOT_ALLOWED"}`},
			{"PATCH", "/api/topics/orders", 405, `{"message":"METHOD_NOT_ALLOWED"}`},
			{"GET", "/static/nope.js", 404, `{"message":"NOT_FOUND"}`},
		}
		for _, tc := range tests {
			code, b := request(t, tc.method, base+tc.path, nil, nil, nil)
			if code != tc.code || string(b) != tc.body {
				t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, code, b, tc.code, tc.body)
			}
		}
	})
}

// TestChannelClients checks the clients of a channel and the E2E
// latency, with a go-nsq consumer.
func TestChannelClients(t *testing.T) {
	c := startCluster(t, 1)
	n := c.nsqds[0]
	release := make(chan struct{})
	held := make(chan struct{}, 100)
	consume(t, c.nsqds, "jobs", "workers", 3, func(m *nsq.Message) error {
		if string(m.Body) == "hold" {
			held <- struct{}{}
			<-release
		}
		return nil
	})
	t.Cleanup(func() { close(release) }) // runs before the consumer stops
	publish(t, n.HTTPAddr, "jobs", 20)
	nsqtest.Eventually(t, testTimeout, "20 messages finished", func() bool {
		cs := channelStats(n, "jobs", "workers")
		return cs != nil && cs.E2E.Count >= 20
	})
	code, _ := request(t, "POST", "http://"+n.HTTPAddr+"/mpub?topic=jobs", "hold\nhold\nhold\n", nil, nil)
	if code != 200 {
		t.Fatalf("mpub = %d", code)
	}
	for range 3 {
		<-held
	}
	_, base := c.admin(t, nil)

	var raw json.RawMessage
	getJSON(t, base+"/api/topics/jobs/workers", &raw)
	var ch clusterinfo.ChannelStats
	json.Unmarshal(raw, &ch)
	if ch.ClientCount != 1 || ch.InFlightCount != 3 || len(ch.Clients) != 1 {
		t.Fatalf("channel = clients %d in flight %d client list %d; want 1, 3, 1", ch.ClientCount, ch.InFlightCount, len(ch.Clients))
	}
	var clients struct {
		Clients []json.RawMessage `json:"clients"`
	}
	json.Unmarshal(raw, &clients)
	checkKeys(t, "client", clients.Clients[0], clientKeys)
	cl := ch.Clients[0]
	own := channelStats(n, "jobs", "workers").Clients[0]
	if cl.Node != n.HTTPAddr || cl.ClientID != own.ClientID || cl.RemoteAddress != own.RemoteAddress ||
		!strings.HasPrefix(cl.UserAgent, "go-nsq/") || cl.InFlightCount != 3 || cl.ConnectTs != own.ConnectTime {
		t.Errorf("client = %+v, nsqd says %+v", cl, own)
	}
	if cl.Connected < 0 || cl.Connected > time.Minute {
		t.Errorf("connected = %v", cl.Connected)
	}
	if ch.E2E == nil || ch.E2E.Count < 20 || len(ch.E2E.Percentiles) != 2 || ch.E2E.Percentiles[0].Quantile != 0.5 ||
		ch.E2E.Percentiles[1].Average <= 0 || ch.E2E.Percentiles[1].Max < ch.E2E.Percentiles[1].Min {
		t.Errorf("E2E = %+v, want p50 and p99 over 20+ samples", ch.E2E)
	}

	var node nodeView
	getJSON(t, base+"/api/nodes/"+n.HTTPAddr, &node)
	if node.TotalClients != 1 {
		t.Errorf("node total_clients = %d, want 1", node.TotalClients)
	}
}
