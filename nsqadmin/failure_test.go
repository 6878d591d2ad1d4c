package nsqadmin

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/clusterinfo"
	"github.com/nsqx/nsqx/internal/nsqtest"
)

// hungAddr is a loopback address that accepts connections and never
// answers, like a wedged node.
func hungAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() { // stopped by closing ln below
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestNodeDown runs nsqadmin over two live nsqds, one that refuses
// connections and one that never answers: every route answers with what
// the live nodes say and names the others in "message", within the
// request timeout.
func TestNodeDown(t *testing.T) {
	n0 := nsqtest.StartNSQD(t, nil)
	n1 := nsqtest.StartNSQD(t, nil)
	publish(t, n0.HTTPAddr, "orders", 3)
	publish(t, n1.HTTPAddr, "orders", 2)
	createChannel(t, n0.HTTPAddr, "orders", "billing")
	dead, hung := deadAddr(t), hungAddr(t)
	cfg := testConfig(t)
	cfg.NSQDHTTPAddresses = []string{n0.HTTPAddr, n1.HTTPAddr, dead, hung}
	cfg.HTTPClientRequestTimeout = 400 * time.Millisecond
	_, base := startAdmin(t, cfg)

	checkMessage := func(t *testing.T, what, msg string, down ...string) {
		t.Helper()
		if !strings.HasPrefix(msg, "WARNING: ") {
			t.Errorf("%s message = %q, want a WARNING", what, msg)
		}
		for _, a := range down {
			if !strings.Contains(msg, a) {
				t.Errorf("%s message = %q, want it to name %s", what, msg, a)
			}
		}
	}
	timed := func(t *testing.T, path string, out any) {
		t.Helper()
		start := time.Now()
		getJSON(t, base+path, out)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("GET %s took %v with a 400ms request timeout", path, d)
		}
	}

	var topics struct {
		Topics  []string `json:"topics"`
		Message string   `json:"message"`
	}
	timed(t, "/api/topics", &topics)
	if len(topics.Topics) != 1 || topics.Topics[0] != "orders" {
		t.Errorf("topics = %v, want [orders]", topics.Topics)
	}
	checkMessage(t, "/api/topics", topics.Message, dead, hung)

	var nodes struct {
		Nodes   []clusterinfo.Producer `json:"nodes"`
		Message string                 `json:"message"`
	}
	timed(t, "/api/nodes", &nodes)
	if len(nodes.Nodes) != 2 {
		t.Errorf("nodes = %d, want the 2 live ones", len(nodes.Nodes))
	}
	checkMessage(t, "/api/nodes", nodes.Message, dead, hung)

	var topic struct {
		clusterinfo.TopicStats
		Message string `json:"message"`
	}
	timed(t, "/api/topics/orders", &topic)
	if len(topic.NodeStats) != 2 || topic.MessageCount != 5 {
		t.Errorf("topic = %d nodes, %d messages; want 2, 5", len(topic.NodeStats), topic.MessageCount)
	}
	checkMessage(t, "/api/topics/orders", topic.Message, dead, hung)

	var o overview
	timed(t, "/api/overview", &o)
	checkMessage(t, "/api/overview", o.Message, dead)
	if o.Totals.Nodes != 2 || o.Totals.MessageRate != nil {
		t.Errorf("overview = %d nodes, rate %v; want 2 and no rate from a partial answer", o.Totals.Nodes, o.Totals.MessageRate)
	}

	// Actions still reach the live nodes and report the others.
	var r messageOnly
	code, _ := request(t, "POST", base+"/api/topics/orders/billing", map[string]string{"action": "pause"}, nil, &r)
	if code != 200 || !channelStats(n0, "orders", "billing").Paused {
		t.Errorf("pause with nodes down = %d, paused %v", code, channelStats(n0, "orders", "billing").Paused)
	}
	checkMessage(t, "pause", r.Message, dead)

	// The pages render, with the warning.
	for _, p := range []string{"/", "/topics/orders", "/topics/orders/billing", "/nodes", "/counter"} {
		code, b := request(t, "GET", base+p, nil, nil, nil)
		if code != 200 || !strings.Contains(string(b), `id="warning"`) || !strings.Contains(string(b), dead) {
			t.Errorf("GET %s = %d; want 200 with a warning naming %s", p, code, dead)
		}
	}

	// A node that stops is reported the same way.
	n1.Stop(t)
	timed(t, "/api/topics/orders", &topic)
	if len(topic.NodeStats) != 1 || topic.NodeStats[0].Node != n0.HTTPAddr {
		t.Errorf("after stopping %s: topic on %d nodes", n1.HTTPAddr, len(topic.NodeStats))
	}
	checkMessage(t, "after a stop", topic.Message, n1.HTTPAddr)
}

// TestAllDown checks the answer when no node answers at all.
func TestAllDown(t *testing.T) {
	cfg := testConfig(t)
	cfg.NSQDHTTPAddresses = []string{deadAddr(t), deadAddr(t)}
	_, base := startAdmin(t, cfg)
	for _, p := range []string{"/api/topics", "/api/topics/x", "/api/topics/x/y", "/api/nodes", "/api/counter", "/api/overview"} {
		var r messageOnly
		code, b := request(t, "GET", base+p, nil, nil, &r)
		if code != http.StatusBadGateway || !strings.HasPrefix(r.Message, "UPSTREAM_ERROR: failed to query any nsqd") {
			t.Errorf("GET %s = %d %s, want 502 UPSTREAM_ERROR", p, code, b)
		}
	}
	code, b := request(t, "GET", base+"/topics", nil, nil, nil)
	if code != http.StatusBadGateway || !strings.Contains(string(b), `id="error"`) || !strings.Contains(string(b), "failed to query any nsqd") {
		t.Errorf("topics page with every node down = %d, want 502 with the error", code)
	}
}

// TestLookupdDown runs nsqadmin over a live and a dead lookupd.
func TestLookupdDown(t *testing.T) {
	c := startCluster(t, 1)
	publish(t, c.nsqds[0].HTTPAddr, "orders", 1)
	c.waitRegistered(t, "orders", "", 1)
	dead := deadAddr(t)
	_, base := c.admin(t, func(cfg *Config) { cfg.LookupdHTTPAddresses = append(cfg.LookupdHTTPAddresses, dead) })

	var topics struct {
		Topics  []string `json:"topics"`
		Message string   `json:"message"`
	}
	getJSON(t, base+"/api/topics", &topics)
	if len(topics.Topics) != 1 || !strings.Contains(topics.Message, dead) {
		t.Errorf("topics = %+v, want [orders] and a warning naming %s", topics, dead)
	}
	var nodes struct {
		Nodes   []json.RawMessage `json:"nodes"`
		Message string            `json:"message"`
	}
	getJSON(t, base+"/api/nodes", &nodes)
	if len(nodes.Nodes) != 1 || !strings.Contains(nodes.Message, dead) {
		t.Errorf("nodes = %d, message %q", len(nodes.Nodes), nodes.Message)
	}
	var topic struct {
		Nodes   []json.RawMessage `json:"nodes"`
		Message string            `json:"message"`
	}
	getJSON(t, base+"/api/topics/orders", &topic)
	if len(topic.Nodes) != 1 || !strings.Contains(topic.Message, dead) {
		t.Errorf("topic = %d nodes, message %q", len(topic.Nodes), topic.Message)
	}
}
