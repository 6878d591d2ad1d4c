package nsqadmin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/nsqtest"
)

// lookupdGet decodes a GET of the lookupd's HTTP API.
func (c *cluster) lookupdGet(t *testing.T, path string, out any) int {
	t.Helper()
	code, _ := request(t, "GET", "http://"+c.lookupdHTTP()+path, nil, nil, out)
	return code
}

func (c *cluster) lookupdTopics(t *testing.T) []string {
	var r struct {
		Topics []string `json:"topics"`
	}
	c.lookupdGet(t, "/topics", &r)
	return r.Topics
}

func (c *cluster) lookupdChannels(t *testing.T, topic string) []string {
	var r struct {
		Channels []string `json:"channels"`
	}
	c.lookupdGet(t, "/channels?topic="+topic, &r)
	return r.Channels
}

// act sends an admin action and expects 200 {"message":""}.
func act(t *testing.T, method, url string, body any, hdr ...string) {
	t.Helper()
	code, b := request(t, method, url, body, hdr, nil)
	if code != http.StatusOK || string(b) != `{"message":""}` {
		t.Fatalf("%s %s %v = %d %s, want 200 {\"message\":\"\"}", method, url, body, code, b)
	}
}

// TestActions drives every write route against a real lookupd and two
// nsqds and checks the effect on each of them.
func TestActions(t *testing.T) {
	c := startCluster(t, 2)
	n0, n1 := c.nsqds[0], c.nsqds[1]
	for _, n := range c.nsqds {
		createChannel(t, n.HTTPAddr, "orders", "billing")
		publish(t, n.HTTPAddr, "orders", 7)
	}
	c.waitRegistered(t, "orders", "billing", 2)
	_, base := c.admin(t, nil)
	both := func(what string, cond func(n *nsqtest.NSQD) bool) {
		t.Helper()
		for _, n := range c.nsqds {
			if !cond(n) {
				t.Errorf("%s not true on %s", what, n.HTTPAddr)
			}
		}
	}

	t.Run("pause and unpause topic", func(t *testing.T) {
		act(t, "POST", base+"/api/topics/orders", map[string]string{"action": "pause"})
		both("topic paused", func(n *nsqtest.NSQD) bool { return topicStats(n, "orders").Paused })
		act(t, "POST", base+"/api/topics/orders", map[string]string{"action": "unpause"})
		both("topic unpaused", func(n *nsqtest.NSQD) bool { return !topicStats(n, "orders").Paused })
	})

	t.Run("pause and unpause channel", func(t *testing.T) {
		act(t, "POST", base+"/api/topics/orders/billing", map[string]string{"action": "pause"})
		both("channel paused", func(n *nsqtest.NSQD) bool { return channelStats(n, "orders", "billing").Paused })
		act(t, "POST", base+"/api/topics/orders/billing", map[string]string{"action": "unpause"})
		both("channel unpaused", func(n *nsqtest.NSQD) bool { return !channelStats(n, "orders", "billing").Paused })
	})

	t.Run("empty channel", func(t *testing.T) {
		both("channel has messages", func(n *nsqtest.NSQD) bool { return channelStats(n, "orders", "billing").Depth == 7 })
		act(t, "POST", base+"/api/topics/orders/billing", map[string]string{"action": "empty"})
		both("channel empty", func(n *nsqtest.NSQD) bool { return channelStats(n, "orders", "billing").Depth == 0 })
	})

	t.Run("empty topic", func(t *testing.T) {
		act(t, "POST", base+"/api/topics/orders", map[string]string{"action": "pause"})
		publish(t, n0.HTTPAddr, "orders", 4)
		if d := topicStats(n0, "orders").Depth; d != 4 {
			t.Fatalf("paused topic depth = %d, want 4", d)
		}
		act(t, "POST", base+"/api/topics/orders", map[string]string{"action": "empty"})
		both("topic empty", func(n *nsqtest.NSQD) bool { return topicStats(n, "orders").Depth == 0 })
		act(t, "POST", base+"/api/topics/orders", map[string]string{"action": "unpause"})
	})

	t.Run("bad requests", func(t *testing.T) {
		tests := []struct {
			method, path string
			body         any
			code         int
			msg          string
		}{
			{"POST", "/api/topics/orders", map[string]string{"action": "explode"}, 400, "INVALID_ACTION"},
			{"POST", "/api/topics/orders/billing", "{not json", 400, "INVALID_BODY"},
			{"POST", "/api/topics", map[string]string{"topic": "bad topic!"}, 400, "INVALID_TOPIC"},
			{"POST", "/api/topics", map[string]string{"topic": "ok", "channel": strings.Repeat("c", 70)}, 400, "INVALID_CHANNEL"},
			{"DELETE", "/api/nodes/" + n0.HTTPAddr, map[string]string{"topic": ""}, 400, "INVALID_TOPIC"},
		}
		for _, tc := range tests {
			var r messageOnly
			code, b := request(t, tc.method, base+tc.path, tc.body, nil, &r)
			if code != tc.code || r.Message != tc.msg {
				t.Errorf("%s %s %v = %d %s, want %d %s", tc.method, tc.path, tc.body, code, b, tc.code, tc.msg)
			}
		}
	})

	t.Run("create topic and channel", func(t *testing.T) {
		act(t, "POST", base+"/api/topics", map[string]string{"topic": "fresh", "channel": "c1"})
		if !slices.Contains(c.lookupdTopics(t), "fresh") || !slices.Contains(c.lookupdChannels(t, "fresh"), "c1") {
			t.Errorf("lookupd topics %v, channels %v; want fresh/c1", c.lookupdTopics(t), c.lookupdChannels(t, "fresh"))
		}
		// A channel created for a topic that nsqds produce is created on them.
		act(t, "POST", base+"/api/topics", map[string]string{"topic": "orders", "channel": "late"})
		both("late channel exists", func(n *nsqtest.NSQD) bool { return channelStats(n, "orders", "late") != nil })
		// Let the nsqds' own REGISTER of the channel reach the lookupd, or
		// it could land after the deletion below and revive it there.
		c.waitChannelProducers(t, "orders", "late", 2)
	})

	t.Run("delete channel", func(t *testing.T) {
		act(t, "DELETE", base+"/api/topics/orders/late", nil)
		both("channel deleted", func(n *nsqtest.NSQD) bool { return channelStats(n, "orders", "late") == nil })
		if slices.Contains(c.lookupdChannels(t, "orders"), "late") {
			t.Errorf("lookupd still lists channel late")
		}
	})

	t.Run("tombstone", func(t *testing.T) {
		act(t, "DELETE", base+"/api/nodes/"+n0.HTTPAddr, map[string]string{"topic": "orders"})
		if topicStats(n0, "orders") != nil {
			t.Errorf("topic still on the tombstoned node")
		}
		if topicStats(n1, "orders") == nil {
			t.Errorf("topic gone from the other node")
		}
		var r struct {
			Producers []struct {
				HTTPPort int `json:"http_port"`
			} `json:"producers"`
		}
		nsqtest.Eventually(t, testTimeout, "lookupd to hand out only the other node", func() bool {
			c.lookupdGet(t, "/lookup?topic=orders", &r)
			return len(r.Producers) == 1 && strings.HasSuffix(n1.HTTPAddr, ":"+itoa(r.Producers[0].HTTPPort))
		})
	})

	t.Run("delete topic", func(t *testing.T) {
		act(t, "DELETE", base+"/api/topics/orders", nil)
		both("topic deleted", func(n *nsqtest.NSQD) bool { return topicStats(n, "orders") == nil })
		nsqtest.Eventually(t, testTimeout, "lookupd to forget orders", func() bool {
			return !slices.Contains(c.lookupdTopics(t), "orders")
		})
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestNSQDMode runs nsqadmin against nsqds directly.
func TestNSQDMode(t *testing.T) {
	n0 := nsqtest.StartNSQD(t, nil)
	n1 := nsqtest.StartNSQD(t, nil)
	publish(t, n0.HTTPAddr, "alpha", 2)
	cfg := testConfig(t)
	cfg.NSQDHTTPAddresses = []string{n0.HTTPAddr, n1.HTTPAddr}
	_, base := startAdmin(t, cfg)

	act(t, "POST", base+"/api/topics", map[string]string{"topic": "made", "channel": "here"})
	for _, n := range []*nsqtest.NSQD{n0, n1} {
		if channelStats(n, "made", "here") == nil {
			t.Errorf("nsqd-mode create did not create made/here on %s", n.HTTPAddr)
		}
	}
	code, b := request(t, "GET", base+"/api/topics", nil, nil, nil)
	if want := `{"topics":["alpha","made"],"message":""}`; code != 200 || string(b) != want {
		t.Errorf("GET /api/topics = %s, want %s", b, want)
	}
	code, b = request(t, "GET", base+"/api/topics?inactive=true", nil, nil, nil)
	if want := `{"topics":{},"message":""}`; code != 200 || string(b) != want {
		t.Errorf("GET /api/topics?inactive=true = %s, want %s", b, want)
	}
	var nodes struct {
		Nodes []struct {
			HTTPPort int `json:"http_port"`
			Topics   []struct {
				Topic string `json:"topic"`
			} `json:"topics"`
		} `json:"nodes"`
	}
	getJSON(t, base+"/api/nodes", &nodes)
	if len(nodes.Nodes) != 2 {
		t.Fatalf("nodes = %+v, want 2", nodes)
	}
	var topic struct {
		Nodes []json.RawMessage `json:"nodes"`
	}
	getJSON(t, base+"/api/topics/alpha", &topic)
	if len(topic.Nodes) != 1 {
		t.Errorf("alpha on %d nodes, want 1", len(topic.Nodes))
	}
	act(t, "POST", base+"/api/topics/made/here", map[string]string{"action": "pause"})
	if !channelStats(n0, "made", "here").Paused || !channelStats(n1, "made", "here").Paused {
		t.Errorf("channel not paused on both nsqds")
	}
	act(t, "DELETE", base+"/api/topics/made", nil)
	if topicStats(n0, "made") != nil || topicStats(n1, "made") != nil {
		t.Errorf("topic made not deleted")
	}
}

// TestACL checks that with --admin-user only named users change anything.
func TestACL(t *testing.T) {
	c := startCluster(t, 1)
	n := c.nsqds[0]
	createChannel(t, n.HTTPAddr, "orders", "billing")
	c.waitRegistered(t, "orders", "billing", 1)
	_, base := c.admin(t, func(cfg *Config) { cfg.AdminUsers = []string{"alice", "carol"} })
	_, custom := c.admin(t, func(cfg *Config) {
		cfg.AdminUsers = []string{"alice"}
		cfg.ACLHTTPHeader = "X-Auth-User"
	})

	writes := []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/topics", map[string]string{"topic": "acl"}},
		{"POST", "/api/topics/orders", map[string]string{"action": "pause"}},
		{"POST", "/api/topics/orders/billing", map[string]string{"action": "pause"}},
		{"DELETE", "/api/topics/orders/billing", nil},
		{"DELETE", "/api/nodes/" + n.HTTPAddr, map[string]string{"topic": "orders"}},
		{"DELETE", "/api/topics/orders", nil},
	}
	for _, w := range writes {
		for _, hdr := range [][]string{nil, {"X-Forwarded-User: bob"}, {"X-Forwarded-User: "}, {"X-Auth-User: alice"}} {
			code, b := request(t, w.method, base+w.path, w.body, hdr, nil)
			if code != http.StatusForbidden || string(b) != `{"message":"FORBIDDEN"}` {
				t.Errorf("%s %s with %q = %d %s, want 403 FORBIDDEN", w.method, w.path, hdr, code, b)
			}
		}
		code, b := request(t, w.method, custom+w.path, w.body, []string{"X-Forwarded-User: alice"}, nil)
		if code != http.StatusForbidden {
			t.Errorf("%s %s with the default header on a custom --acl-http-header = %d %s, want 403", w.method, w.path, code, b)
		}
	}
	if topicStats(n, "orders") == nil || topicStats(n, "orders").Paused || channelStats(n, "orders", "billing") == nil {
		t.Fatalf("a refused action changed the nsqd")
	}
	// Reads stay open.
	getJSON(t, base+"/api/topics/orders", nil)
	// Admins may act, through either header configuration.
	act(t, "POST", base+"/api/topics/orders", map[string]string{"action": "pause"}, "X-Forwarded-User: carol")
	act(t, "POST", custom+"/api/topics/orders", map[string]string{"action": "unpause"}, "X-Auth-User: alice")
	if topicStats(n, "orders").Paused {
		t.Errorf("topic still paused after alice unpaused it")
	}

	// The UI shows who is read-only.
	_, page := request(t, "GET", base+"/topics/orders", nil, []string{"X-Forwarded-User: bob"}, nil)
	if !strings.Contains(string(page), `id="readonly-banner"`) || strings.Contains(string(page), `id="pause-topic"`) {
		t.Errorf("bob's topic page lacks the read-only banner or shows actions")
	}
	_, page = request(t, "GET", base+"/topics/orders", nil, []string{"X-Forwarded-User: alice"}, nil)
	if strings.Contains(string(page), `id="readonly-banner"`) || !strings.Contains(string(page), `id="pause-topic"`) {
		t.Errorf("alice's topic page shows the read-only banner or lacks actions")
	}
}

// TestCrossOrigin checks that a browser on another site cannot make an
// admin's browser change the cluster, while scripts keep working.
func TestCrossOrigin(t *testing.T) {
	c := startCluster(t, 1)
	n := c.nsqds[0]
	nsqdPOST(t, n.HTTPAddr, "/topic/create?topic=orders")
	c.waitRegistered(t, "orders", "", 1)
	s, base := c.admin(t, nil)
	host := s.HTTPAddr().String()
	pause := map[string]string{"action": "pause"}

	refused := [][]string{
		{"Sec-Fetch-Site: cross-site"},
		{"Sec-Fetch-Site: same-site"},
		{"Origin: http://evil.example"},
	}
	for _, hdr := range refused {
		code, b := request(t, "POST", base+"/api/topics/orders", pause, hdr, nil)
		if code != http.StatusForbidden || !strings.Contains(string(b), "CROSS_ORIGIN") {
			t.Errorf("POST with %q = %d %s, want 403", hdr, code, b)
		}
		code, _ = request(t, "PUT", base+"/config/log_level", "debug", hdr, nil)
		if code != http.StatusForbidden {
			t.Errorf("PUT /config with %q = %d, want 403", hdr, code)
		}
	}
	if topicStats(n, "orders").Paused {
		t.Fatalf("a cross-origin request paused the topic")
	}
	// Reads are not state changes.
	if code, _ := request(t, "GET", base+"/api/topics", nil, []string{"Sec-Fetch-Site: cross-site"}, nil); code != 200 {
		t.Errorf("cross-site GET = %d, want 200", code)
	}
	for _, hdr := range [][]string{nil, {"Sec-Fetch-Site: same-origin"}, {"Origin: http://" + host}} {
		act(t, "POST", base+"/api/topics/orders", pause, hdr...)
	}
	if !topicStats(n, "orders").Paused {
		t.Errorf("same-origin and script requests did not pause the topic")
	}
}

// TestNotifications checks the body POSTed for each admin action.
func TestNotifications(t *testing.T) {
	var mu sync.Mutex
	var got []AdminAction
	var ct []string
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var a AdminAction
		if err := json.Unmarshal(b, &a); err != nil {
			t.Errorf("notification %s: %v", b, err)
		}
		mu.Lock()
		got = append(got, a)
		ct = append(ct, r.Header.Get("Content-Type"))
		mu.Unlock()
	}))
	t.Cleanup(sink.Close)

	c := startCluster(t, 1)
	n := c.nsqds[0]
	createChannel(t, n.HTTPAddr, "orders", "billing")
	c.waitRegistered(t, "orders", "billing", 1)
	s, base := c.admin(t, func(cfg *Config) { cfg.NotificationHTTPEndpoint = sink.URL + "/hook" })

	basic := "Authorization: Basic YWxpY2U6c2VjcmV0" // alice:secret
	ua := "User-Agent: nsqadmin-test"
	act(t, "POST", base+"/api/topics", map[string]string{"topic": "fresh", "channel": "c1"}, basic, ua)
	act(t, "POST", base+"/api/topics/orders/billing", map[string]string{"action": "pause"}, ua)
	act(t, "POST", base+"/api/topics/orders", map[string]string{"action": "empty"}, ua)
	act(t, "DELETE", base+"/api/topics/orders/billing", nil, ua)
	act(t, "DELETE", base+"/api/nodes/"+n.HTTPAddr, map[string]string{"topic": "orders"}, ua, "X-Scheme: https")

	want := []AdminAction{
		{Action: "create_topic", Topic: "fresh", User: "alice"},
		{Action: "create_channel", Topic: "fresh", Channel: "c1", User: "alice"},
		{Action: "pause_channel", Topic: "orders", Channel: "billing"},
		{Action: "empty_topic", Topic: "orders"},
		{Action: "delete_channel", Topic: "orders", Channel: "billing"},
		{Action: "tombstone_topic_producer", Topic: "orders", Node: n.HTTPAddr},
	}
	nsqtest.Eventually(t, testTimeout, "6 notifications", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= len(want)
	})
	mu.Lock()
	defer mu.Unlock()
	host := s.HTTPAddr().String()
	for i, w := range want {
		g := got[i]
		if g.Action != w.Action || g.Topic != w.Topic || g.Channel != w.Channel || g.Node != w.Node || g.User != w.User {
			t.Errorf("notification %d = %+v, want %+v", i, g, w)
		}
		if g.UserAgent != "nsqadmin-test" || !strings.HasPrefix(g.RemoteIP, "127.0.0.1:") || g.Via == "" ||
			time.Since(time.Unix(g.Timestamp, 0)) > time.Minute || ct[i] != "application/json" {
			t.Errorf("notification %d = %+v (Content-Type %q)", i, g, ct[i])
		}
	}
	if want := "http://" + host + "/api/topics/orders/billing"; got[2].URL != want {
		t.Errorf("url = %q, want %q", got[2].URL, want)
	}
	if want := "https://" + host + "/api/nodes/" + n.HTTPAddr; got[5].URL != want {
		t.Errorf("url behind an https proxy = %q, want %q", got[5].URL, want)
	}
}
