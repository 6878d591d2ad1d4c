package nsqadmin

// Real-browser tests: headless Chromium, driven over the DevTools
// protocol, loads every page against a live cluster with traffic, checks
// what it shows against the nsqds' own stats, clicks the admin actions
// through their confirmation dialog and checks their effect. Screenshots
// go to $NSQX_SCREENSHOTS, or <tmp>/nsqadmin-screenshots.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

func screenshotDir(t *testing.T) string {
	dir := os.Getenv("NSQX_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "nsqadmin-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// traffic publishes to topic on every nsqd, one message per nsqd every
// interval, until the test ends.
func traffic(t *testing.T, nsqds []*nsqtest.NSQD, topic string, interval time.Duration) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, n := range nsqds {
		p, err := nsq.NewProducer(n.TCPAddr, nsq.NewConfig())
		if err != nil {
			t.Fatal(err)
		}
		p.SetLogger(newGoNSQLogger(t), nsq.LogLevelWarning)
		wg.Go(func() { // stopped by closing stop in the cleanup below
			defer p.Stop()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
					p.Publish(topic, []byte("message "+strconv.Itoa(i)))
				}
			}
		})
	}
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
}

// sumNSQD adds up a figure over the nsqds.
func sumNSQD(nsqds []*nsqtest.NSQD, f func(*nsqtest.NSQD) int64) int64 {
	var n int64
	for _, d := range nsqds {
		n += f(d)
	}
	return n
}

func topicMessages(topic string) func(*nsqtest.NSQD) int64 {
	return func(n *nsqtest.NSQD) int64 {
		if ts := topicStats(n, topic); ts != nil {
			return int64(ts.MessageCount)
		}
		return 0
	}
}

func allMessages(n *nsqtest.NSQD) int64 {
	var sum int64
	for _, ts := range n.Stats(nsqd.StatsFilter{}).Topics {
		sum += int64(ts.MessageCount)
	}
	return sum
}

func channelDepth(topic, channel string) func(*nsqtest.NSQD) int64 {
	return func(n *nsqtest.NSQD) int64 {
		if cs := channelStats(n, topic, channel); cs != nil {
			return cs.Depth
		}
		return 0
	}
}

// between reads a figure from the page after a forced refresh and checks
// it lies between what the nsqds reported just before and just after: the
// counters only grow while traffic runs.
func between(t *testing.T, p *tab, what, expr string, nsqdFigure func() int64) {
	t.Helper()
	before := nsqdFigure()
	p.eval(`window.nsqadmin.refresh(true)`, nil)
	got := int64(p.num(expr))
	after := nsqdFigure()
	if got < before || got > after {
		t.Errorf("%s: page shows %d, nsqd reported %d before and %d after", what, got, before, after)
	} else {
		t.Logf("%s: page %d within nsqd's [%d, %d]", what, got, before, after)
	}
}

func noPageErrors(t *testing.T, b *browser) {
	t.Helper()
	for _, e := range b.pageErrors() {
		t.Errorf("page error: %s", e)
	}
}

func TestBrowser(t *testing.T) {
	b := startBrowser(t)
	shots := screenshotDir(t)

	c := startCluster(t, 2)
	for _, n := range c.nsqds {
		createChannel(t, n.HTTPAddr, "orders", "billing")
		nsqdPOST(t, n.HTTPAddr, "/channel/create?topic=orders&channel=audit")
		createChannel(t, n.HTTPAddr, "events", "archive")
	}
	c.waitRegistered(t, "orders", "audit", 2)
	// billing keeps up with a few messages in flight; audit has no
	// consumer, so its depth only grows.
	consume(t, c.nsqds, "orders", "billing", 8, func(*nsq.Message) error {
		time.Sleep(20 * time.Millisecond)
		return nil
	})
	consume(t, c.nsqds, "events", "archive", 4, nil)
	traffic(t, c.nsqds, "orders", 5*time.Millisecond)
	traffic(t, c.nsqds, "events", 40*time.Millisecond)

	_, base := c.admin(t, func(cfg *Config) {
		cfg.BasePath = "/nsqadmin"
		cfg.RefreshInterval = time.Second
		cfg.ChartInterval = 400 * time.Millisecond
	})
	p := b.newTab(t, shots)
	n0, n1 := c.nsqds[0], c.nsqds[1]
	chartsLive := `document.getElementById("charts").dataset.points >= 4 &&
		Number(document.querySelector('figure[data-series="rate"]').dataset.last) > 0`

	t.Run("topics", func(t *testing.T) {
		p.t = t
		p.open(base + "/")
		p.waitFor("the cluster charts to show a rate", chartsLive)
		between(t, p, "total messages", `Number(document.getElementById("total-messages").textContent.replaceAll(",", ""))`,
			func() int64 { return sumNSQD(c.nsqds, allMessages) })
		between(t, p, "orders messages", `document.querySelector('tr[data-topic="orders"] td[data-k="messages"]').dataset.v`,
			func() int64 { return sumNSQD(c.nsqds, topicMessages("orders")) })
		if got := p.str(`document.getElementById("total-nodes").textContent`); got != "2" {
			t.Errorf("nodes card = %q, want 2", got)
		}
		p.screenshot("01-topics")
		noPageErrors(t, b)
	})

	t.Run("topic", func(t *testing.T) {
		p.t = t
		p.open(base + "/topics/orders")
		if n := p.num(`document.querySelectorAll("#topic-nodes tbody tr").length`); n != 2 {
			t.Errorf("topic page lists %v nodes, want 2", n)
		}
		for _, n := range c.nsqds {
			between(t, p, "messages on "+n.HTTPAddr, `document.querySelector('#topic-nodes tr[data-node="`+n.HTTPAddr+`"] td[data-k="messages"]').dataset.v`,
				func() int64 { return topicMessages("orders")(n) })
		}
		between(t, p, "audit depth", `document.querySelector('#topic-channels tr[data-channel="audit"] td[data-k="depth"]').dataset.v`,
			func() int64 { return sumNSQD(c.nsqds, channelDepth("orders", "audit")) })
		p.waitFor("the topic charts to show a rate", chartsLive)
		p.waitFor("E2E latency of the finished messages", `window.nsqadmin.refresh(true).then(() => document.querySelector(".e2e-table") !== null)`)
		p.screenshot("02-topic")
		noPageErrors(t, b)
	})

	t.Run("channel actions", func(t *testing.T) {
		p.t = t
		p.open(base + "/topics/orders/billing")
		if n := p.num(`document.querySelectorAll("#channel-clients-table tbody tr").length`); n != 2 {
			t.Errorf("channel page lists %v clients, want one per nsqd", n)
		}
		if ua := p.str(`document.querySelector("#channel-clients-table td.ua").textContent`); !strings.HasPrefix(ua, "go-nsq/") {
			t.Errorf("client user agent = %q", ua)
		}
		p.waitFor("the channel charts to show a rate", chartsLive)

		// Cancel does nothing.
		p.click("#pause-channel")
		p.waitFor("the confirmation dialog", `document.getElementById("confirm").open`)
		if q := p.str(`document.getElementById("confirm-text").textContent`); !strings.Contains(q, "Pause channel “billing”") {
			t.Errorf("dialog asks %q", q)
		}
		p.screenshot("03-channel-confirm")
		p.click("#confirm-cancel")
		p.waitFor("the dialog to close", `!document.getElementById("confirm").open`)
		p.eval(`window.nsqadmin.refresh(true)`, nil)
		if channelStats(n0, "orders", "billing").Paused || channelStats(n1, "orders", "billing").Paused {
			t.Fatalf("cancelled pause paused the channel")
		}

		p.click("#pause-channel")
		p.waitFor("the confirmation dialog", `document.getElementById("confirm").open`)
		p.click("#confirm-ok")
		p.waitFor("the paused badge", `document.getElementById("paused-badge") !== null && document.getElementById("unpause-channel") !== null`)
		for _, n := range c.nsqds {
			if !channelStats(n, "orders", "billing").Paused {
				t.Errorf("billing not paused on %s after clicking Pause", n.HTTPAddr)
			}
		}
		p.screenshot("04-channel-paused")

		p.click("#unpause-channel")
		p.waitFor("the confirmation dialog", `document.getElementById("confirm").open`)
		p.click("#confirm-ok")
		p.waitFor("the pause button", `document.getElementById("pause-channel") !== null`)
		for _, n := range c.nsqds {
			if channelStats(n, "orders", "billing").Paused {
				t.Errorf("billing still paused on %s after clicking Unpause", n.HTTPAddr)
			}
		}
		noPageErrors(t, b)
	})

	t.Run("empty", func(t *testing.T) {
		p.t = t
		depth := func() int64 { return sumNSQD(c.nsqds, channelDepth("orders", "audit")) }
		nsqtest.Eventually(t, testTimeout, "audit to hold 300 messages", func() bool { return depth() >= 300 })
		p.open(base + "/topics/orders/audit")
		before := int64(p.num(`document.getElementById("channel-depth").dataset.v`))
		if before < 300 {
			t.Errorf("page shows audit depth %d, nsqds hold at least 300", before)
		}
		p.click("#empty-channel")
		p.waitFor("the confirmation dialog", `document.getElementById("confirm").open`)
		p.click("#confirm-ok")
		p.waitFor("the success toast", `document.querySelector(".toast.ok") !== null`)
		if after := depth(); after >= before/2 {
			t.Errorf("audit depth %d after Empty, was %d", after, before)
		}
		p.waitFor("the page to show the emptied channel", `Number(document.getElementById("channel-depth").dataset.v) < `+strconv.FormatInt(before/2, 10))
		p.screenshot("05-channel-emptied")
		noPageErrors(t, b)
	})

	t.Run("nodes", func(t *testing.T) {
		p.t = t
		p.open(base + "/nodes")
		for _, n := range c.nsqds {
			p.waitFor("row of "+n.HTTPAddr, `document.querySelector('#nodes-table tr[data-node="`+n.HTTPAddr+`"]') !== null`)
		}
		p.screenshot("06-nodes")
		p.click(`#nodes-table tr[data-node="` + n0.HTTPAddr + `"] a`)
		p.waitFor("the node page", `location.pathname === "/nsqadmin/nodes/`+n0.HTTPAddr+`" && document.readyState === "complete" && window.nsqadmin !== undefined`)
		between(t, p, "node messages", `document.getElementById("node-messages").dataset.v`,
			func() int64 { return allMessages(n0) })
		if got := p.num(`document.querySelectorAll("#node-topics tr.channel-row").length`); got != 3 {
			t.Errorf("node page lists %v channels, want 3", got)
		}
		p.waitFor("the node charts to show a rate", chartsLive)
		p.screenshot("07-node")
		noPageErrors(t, b)
	})

	t.Run("lookup", func(t *testing.T) {
		p.t = t
		p.open(base + "/lookup")
		p.eval(`document.getElementById("create-topic").value = "made.in.browser"; document.getElementById("create-channel").value = "c1"`, nil)
		p.click(`#create-form button[type="submit"]`)
		p.waitFor("the new inactive topic", `document.querySelector('#inactive-table tr[data-topic="made.in.browser"]') !== null`)
		var r struct {
			Channels []string `json:"channels"`
		}
		c.lookupdGet(t, "/channels?topic=made.in.browser", &r)
		if len(r.Channels) != 1 || r.Channels[0] != "c1" {
			t.Errorf("lookupd channels of the created topic = %v, want [c1]", r.Channels)
		}
		p.screenshot("08-lookup")
		noPageErrors(t, b)
	})

	t.Run("counter", func(t *testing.T) {
		p.t = t
		p.open(base + "/counter")
		p.waitFor("a rate", `document.getElementById("counter-rate").textContent !== "–"`)
		shown := int64(p.num(`Number(document.getElementById("counter").dataset.total)`))
		if shown <= 0 {
			t.Errorf("counter total = %d", shown)
		}
		p.screenshot("09-counter")
		noPageErrors(t, b)
	})

	t.Run("read-only", func(t *testing.T) {
		p.t = t
		_, ro := c.admin(t, func(cfg *Config) { cfg.AdminUsers = []string{"alice"} })
		p.open(ro + "/topics/orders")
		if p.num(`document.querySelectorAll("#readonly-banner, #readonly-badge").length`) != 2 || p.num(`document.querySelectorAll("button[data-url]").length`) != 0 {
			t.Errorf("read-only topic page lacks the banner or shows action buttons")
		}
		status := p.num(`fetch("` + ro + `/api/topics/orders", {method: "POST", headers: {"Content-Type": "application/json"}, body: '{"action":"pause"}'}).then(r => r.status)`)
		if status != 403 {
			t.Errorf("read-only user's POST = %v, want 403", status)
		}
		p.screenshot("10-readonly")

		// A page of another origin (this nsqadmin) cannot drive the open
		// nsqadmin's API from the browser.
		p.eval(`fetch("`+base+`/api/topics/orders", {method: "POST", mode: "no-cors", body: '{"action":"pause"}'}).then(() => true, () => true)`, nil)
		p.eval(`window.nsqadmin.refresh(true)`, nil)
		if topicStats(n0, "orders").Paused || topicStats(n1, "orders").Paused {
			t.Errorf("a cross-origin request from the browser paused the topic")
		}
		b.pageErrors() // the refused requests are expected errors
	})

	t.Run("topic delete", func(t *testing.T) {
		p.t = t
		p.open(base + "/topics/events")
		p.click("#delete-topic")
		p.waitFor("the confirmation dialog", `document.getElementById("confirm").open`)
		p.click("#confirm-ok")
		p.waitFor("the topics page", `location.pathname === "/nsqadmin/topics" && document.readyState === "complete"`)
		for _, n := range c.nsqds {
			// The traffic re-creates it; it must at least have been reset.
			if ts := topicStats(n, "events"); ts != nil && len(ts.Channels) != 0 {
				t.Errorf("events on %s still has channels %v after Delete", n.HTTPAddr, ts.Channels)
			}
		}
		noPageErrors(t, b)
	})
	t.Run("cluster charts", func(t *testing.T) {
		p.t = t
		// The charts kept their history in the tab while it was elsewhere.
		p.open(base + "/topics")
		p.waitFor("the kept history", `document.getElementById("charts").dataset.points >= 10`)
		p.eval(`new Promise(r => setTimeout(r, 1200))`, nil) // two more polls, drawn
		p.screenshot("11-topics-later")
		noPageErrors(t, b)
	})
	fmt.Fprintf(t.Output(), "screenshots: %s\n", shots)
}
