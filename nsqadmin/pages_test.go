package nsqadmin

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPages renders every page over a real cluster and checks that each
// shows the figures the nsqds report.
func TestPages(t *testing.T) {
	c := startCluster(t, 2)
	n0, n1 := c.nsqds[0], c.nsqds[1]
	publish(t, n0.HTTPAddr, "orders", 6)
	publish(t, n1.HTTPAddr, "orders", 4)
	createChannel(t, n0.HTTPAddr, "orders", "billing")
	createChannel(t, n1.HTTPAddr, "orders", "billing")
	nsqdPOST(t, n0.HTTPAddr, "/channel/pause?topic=orders&channel=billing")
	consume(t, c.nsqds, "events", "audit", 1, nil)
	c.waitRegistered(t, "orders", "billing", 2)
	nsqdPOST(t, c.lookupdHTTP(), "/channel/create?topic=lonely&channel=waiting")
	_, base := c.admin(t, nil)

	page := func(t *testing.T, path string, wantCode int, want ...string) string {
		t.Helper()
		resp, err := httpClient.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body := readAll(t, resp)
		if resp.StatusCode != wantCode {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, wantCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s Content-Type = %q", path, ct)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s CSP = %q", path, csp)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %s", path, w)
			}
		}
		return body
	}
	ob0, ob1 := channelStats(n0, "orders", "billing"), channelStats(n1, "orders", "billing")

	t.Run("topics", func(t *testing.T) {
		page(t, "/", 200,
			`<tr data-topic="orders">`,
			`<td class="num" data-k="messages" data-v="10">10</td>`,
			`<tr data-topic="lonely">`, `no producers`,
			`<tr data-topic="events">`,
			`id="charts" class="charts" data-kind="cluster"`,
			`<span class="v" id="total-nodes">2</span>`)
	})
	t.Run("topic", func(t *testing.T) {
		body := page(t, "/topics/orders", 200,
			`<span id="topic-name">orders</span>`,
			`<tr data-node="`+n0.HTTPAddr+`">`, `<tr data-node="`+n1.HTTPAddr+`">`,
			`<tr data-channel="billing">`,
			fmt.Sprintf(`<td class="num" data-k="depth" data-v="%d">`, ob0.Depth+ob1.Depth),
			`<span class="badge paused">paused</span>`,
			`id="pause-topic"`, `id="empty-topic"`, `id="delete-topic"`, `>Tombstone</button>`,
			`<th class="num">p50</th><th class="num">p99</th>`,
			`data-source="/api/topics/orders"`)
		if strings.Contains(body, `id="paused-badge"`) {
			t.Errorf("topic shown paused; only a channel is")
		}
	})
	t.Run("channel", func(t *testing.T) {
		page(t, "/topics/orders/billing", 200,
			`<span id="channel-name">billing</span>`,
			`id="paused-badge"`, `id="unpause-channel"`,
			fmt.Sprintf(`id="channel-depth" data-v="%d"`, ob0.Depth+ob1.Depth),
			`id="no-clients"`)
		own := channelStats(n0, "events", "audit").Clients[0]
		page(t, "/topics/events/audit", 200,
			`id="channel-clients" data-v="2"`,
			`data-remote="`+own.RemoteAddress+`"`,
			`go-nsq/`, `id="pause-channel"`)
	})
	t.Run("nodes", func(t *testing.T) {
		page(t, "/nodes", 200,
			`<tr data-node="`+n0.HTTPAddr+`">`, `<tr data-node="`+n1.HTTPAddr+`">`,
			`href="/topics/orders" class="tag"`, c.lookupdHTTP()+"/")
	})
	t.Run("node", func(t *testing.T) {
		page(t, "/nodes/"+n0.HTTPAddr, 200,
			`<tr class="topic-row" data-topic="orders">`,
			`<tr class="channel-row" data-channel="orders/billing">`,
			`<tr class="channel-row" data-channel="events/audit">`,
			`id="node-clients" data-v="1"`,
			`data-kind="node"`)
		page(t, "/nodes/10.1.1.1:4151", 404, `id="error"`, "No node is known by that address.")
	})
	t.Run("lookup", func(t *testing.T) {
		page(t, "/lookup", 200, `<tr data-topic="lonely">`, `waiting`, `id="create-form"`)
	})
	t.Run("counter", func(t *testing.T) {
		total := int64(ob0.MessageCount + ob1.MessageCount)
		for _, n := range c.nsqds {
			total += int64(channelStats(n, "events", "audit").MessageCount)
		}
		page(t, "/counter", 200, fmt.Sprintf(`data-total="%d"`, total), `data-source="/api/counter"`)
	})
	t.Run("fragment", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/topics/orders", nil)
		req.Header.Set("X-NSQX-Fragment", "1")
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		resp.Body.Close()
		if !strings.HasPrefix(body, `<div id="head" data-live>`) || strings.Contains(body, "<html") ||
			strings.Contains(body, `id="charts"`) || !strings.Contains(body, `<div id="body" data-live>`) {
			t.Errorf("fragment = %.200s…, want only the live blocks", body)
		}
	})
	t.Run("escaping", func(t *testing.T) {
		nsqdPOST(t, c.lookupdHTTP(), "/topic/create?topic=a%23ephemeral")
		page(t, "/", 200, `href="/topics/a%23ephemeral"`)
		page(t, "/topics/a%23ephemeral", 200, `<span id="topic-name">a#ephemeral</span>`, `id="no-producers"`)
	})
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
