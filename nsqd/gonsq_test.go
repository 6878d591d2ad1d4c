package nsqd_test

// Integration tests of nsqd driven by go-nsq, the client our users run:
// what a Producer and a Consumer see, checked against the server's Stats.

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"
	"golang.org/x/sync/errgroup"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// gonsqLogger sends go-nsq's log lines to the test's output while the test
// runs, and drops them afterwards: go-nsq's goroutines (reconnect loops,
// connection cleanup) can outlive the test, and writing to a finished
// test's output panics.
type gonsqLogger struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func newGoNSQLogger(t *testing.T) *gonsqLogger {
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

func newProducer(t *testing.T, addr string) *nsq.Producer {
	t.Helper()
	p, err := nsq.NewProducer(addr, nsq.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	p.SetLogger(newGoNSQLogger(t), nsq.LogLevelWarning)
	t.Cleanup(p.Stop)
	return p
}

// startConsumer connects a consumer with concurrency handler goroutines to
// the nsqd at addr and stops it (gracefully, waiting at most 10 s) when the
// test ends.
//
// go-nsq stops only once every message it was sent is answered, so when
// the test ends, messages a handler kept (DisableAutoResponse) and left
// unanswered, for instance because the test failed, are FINed, and so is
// anything that arrives while the consumer stops.
func startConsumer(t *testing.T, addr, topic, channel string, cfg *nsq.Config, concurrency int, h nsq.HandlerFunc) *nsq.Consumer {
	t.Helper()
	if cfg == nil {
		cfg = nsq.NewConfig()
	}
	c, err := nsq.NewConsumer(topic, channel, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(newGoNSQLogger(t), nsq.LogLevelWarning)
	var (
		stopping atomic.Bool
		mu       sync.Mutex
		kept     []*nsq.Message
	)
	c.AddConcurrentHandlers(nsq.HandlerFunc(func(m *nsq.Message) error {
		if stopping.Load() {
			m.Finish()
			return nil
		}
		err := h(m)
		if m.IsAutoResponseDisabled() && !m.HasResponded() {
			mu.Lock()
			defer mu.Unlock()
			if stopping.Load() {
				m.Finish()
			} else {
				kept = append(kept, m)
			}
		}
		return err
	}), concurrency)
	if err := c.ConnectToNSQD(addr); err != nil {
		t.Fatalf("consumer %s/%s: connect to %s: %v", topic, channel, addr, err)
	}
	t.Cleanup(func() {
		stopping.Store(true)
		mu.Lock()
		unanswered := kept
		kept = nil
		mu.Unlock()
		answered := make(chan struct{})
		go func() {
			for _, m := range unanswered {
				m.Finish() // a no-op for answered messages
			}
			close(answered)
		}()
		select {
		case <-answered:
		case <-time.After(5 * time.Second):
			t.Errorf("go-nsq did not take the answers to %d kept messages", len(unanswered))
		}
		stopConsumer(t, c)
	})
	return c
}

// stopConsumer stops c and waits for it. Stopping twice is fine.
func stopConsumer(t *testing.T, c *nsq.Consumer) {
	t.Helper()
	c.Stop()
	select {
	case <-c.StopChan:
	case <-time.After(10 * time.Second):
		t.Errorf("consumer did not stop within 10s")
	}
}

// received is one message as a handler saw it.
type received struct {
	msg *nsq.Message
	at  time.Time
}

// inbox collects what a consumer's handler receives.
type inbox chan received

func newInbox() inbox { return make(inbox, 1024) }

// handler records every message. With hold it disables the automatic
// response: the test FINs, REQs or abandons each message itself.
func (in inbox) handler(hold bool) nsq.HandlerFunc {
	return func(m *nsq.Message) error {
		if hold {
			m.DisableAutoResponse()
		}
		in <- received{msg: m, at: time.Now()}
		return nil
	}
}

// next returns the next message, failing the test if none comes within d.
func (in inbox) next(t *testing.T, d time.Duration, what string) received {
	t.Helper()
	select {
	case r := <-in:
		return r
	case <-time.After(d):
		t.Fatalf("no message within %v: %s", d, what)
		return received{}
	}
}

// bodies returns the next n bodies, in arrival order.
func (in inbox) bodies(t *testing.T, n int, d time.Duration) []string {
	t.Helper()
	deadline := time.After(d)
	var out []string
	for len(out) < n {
		select {
		case r := <-in:
			out = append(out, string(r.msg.Body))
		case <-deadline:
			t.Fatalf("got %d of %d messages within %v: %q", len(out), n, d, out)
		}
	}
	return out
}

// startInbox starts a consumer of topic/channel on n with one handler
// goroutine that records into a new inbox (held: see inbox.handler), and
// waits until it is ready.
func startInbox(t *testing.T, n *nsqtest.NSQD, topic, channel string, cfg *nsq.Config, hold bool) inbox {
	t.Helper()
	in := newInbox()
	startConsumer(t, n.TCPAddr, topic, channel, cfg, 1, in.handler(hold))
	waitReady(t, n, topic, channel, 1)
	return in
}

// withMaxInFlight is go-nsq's default config with MaxInFlight k.
func withMaxInFlight(k int) *nsq.Config {
	cfg := nsq.NewConfig()
	cfg.MaxInFlight = k
	return cfg
}

// withMsgTimeout is go-nsq's default config with MsgTimeout d.
func withMsgTimeout(d time.Duration) *nsq.Config {
	cfg := nsq.NewConfig()
	cfg.MsgTimeout = d
	return cfg
}

// publish publishes body to topic, failing the test on an error.
func publish(t *testing.T, p *nsq.Producer, topic string, body []byte) {
	t.Helper()
	if err := p.Publish(topic, body); err != nil {
		t.Fatalf("Publish(%q, %q) = %v", topic, body, err)
	}
}

// multiPublish publishes bodies to topic in one MPUB, failing the test on
// an error.
func multiPublish(t *testing.T, p *nsq.Producer, topic string, bodies [][]byte) {
	t.Helper()
	if err := p.MultiPublish(topic, bodies); err != nil {
		t.Fatalf("MultiPublish(%q, %d messages) = %v", topic, len(bodies), err)
	}
}

// poll polls cond every 10 ms until it holds (true) or d passes (false).
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// consistently polls cond for d and fails the test if it ever holds.
func consistently(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			t.Fatalf("unexpected: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func topicStats(n *nsqtest.NSQD, topic string) (nsqd.TopicStats, bool) {
	st := n.Stats(nsqd.StatsFilter{Topic: topic, IncludeClients: true})
	for _, ts := range st.Topics {
		if ts.TopicName == topic {
			return ts, true
		}
	}
	return nsqd.TopicStats{}, false
}

func channelStats(n *nsqtest.NSQD, topic, channel string) (nsqd.ChannelStats, bool) {
	ts, ok := topicStats(n, topic)
	if !ok {
		return nsqd.ChannelStats{}, false
	}
	for _, cs := range ts.Channels {
		if cs.ChannelName == channel {
			return cs, true
		}
	}
	return nsqd.ChannelStats{}, false
}

// mustChannelStats is channelStats for a channel that must exist.
func mustChannelStats(t *testing.T, n *nsqtest.NSQD, topic, channel string) nsqd.ChannelStats {
	t.Helper()
	cs, ok := channelStats(n, topic, channel)
	if !ok {
		t.Fatalf("channel %s/%s not in Stats", topic, channel)
	}
	return cs
}

// waitReady waits until channel has want consumers, each with RDY > 0, so
// what is published next is spread over all of them.
func waitReady(t *testing.T, n *nsqtest.NSQD, topic, channel string, want int) {
	t.Helper()
	nsqtest.Eventually(t, 5*time.Second, fmt.Sprintf("%d ready consumers on %s/%s", want, topic, channel), func() bool {
		cs, ok := channelStats(n, topic, channel)
		if !ok || len(cs.Clients) != want {
			return false
		}
		for _, c := range cs.Clients {
			if c.ReadyCount == 0 {
				return false
			}
		}
		return true
	})
}

// sumClients adds up the consumers' message and finish counts.
func sumClients(cs nsqd.ChannelStats) (msgs, fins uint64) {
	for _, c := range cs.Clients {
		msgs += c.MessageCount
		fins += c.FinishCount
	}
	return msgs, fins
}

// waitSettled waits until every message of a channel is finished: nothing
// queued, in flight or deferred, and fins FINs counted.
func waitSettled(t *testing.T, n *nsqtest.NSQD, topic, channel string, fins uint64) nsqd.ChannelStats {
	t.Helper()
	var cs nsqd.ChannelStats
	nsqtest.Eventually(t, 5*time.Second, fmt.Sprintf("%s/%s settled with %d FINs", topic, channel, fins), func() bool {
		var ok bool
		cs, ok = channelStats(n, topic, channel)
		_, f := sumClients(cs)
		return ok && cs.Depth == 0 && cs.InFlightCount == 0 && cs.DeferredCount == 0 && f == fins
	})
	return cs
}

func numbered(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(prefix + strconv.Itoa(i))
	}
	return out
}

// checkSet fails unless got holds each of want exactly once.
func checkSet(t *testing.T, got []string, want [][]byte) {
	t.Helper()
	seen := map[string]int{}
	for _, b := range got {
		seen[b]++
	}
	for _, b := range want {
		if seen[string(b)] != 1 {
			t.Errorf("message %q received %d times, want 1", b, seen[string(b)])
		}
		delete(seen, string(b))
	}
	for b, k := range seen {
		t.Errorf("unexpected message %q received %d times", b, k)
	}
}

func TestGoNSQPublishConsume(t *testing.T) {
	t.Parallel()
	n := nsqtest.StartNSQD(t, nil)
	p := newProducer(t, n.TCPAddr)
	in := startInbox(t, n, "pubsub", "ch", nil, false)

	msgs := numbered("pub-", 10)
	before := time.Now()
	for _, b := range msgs {
		publish(t, p, "pubsub", b)
	}
	after := time.Now()
	var got []string
	ids := map[nsq.MessageID]bool{}
	for range msgs {
		r := in.next(t, 5*time.Second, "published message")
		m := r.msg
		got = append(got, string(m.Body))
		if m.Attempts != 1 {
			t.Errorf("message %q: Attempts = %d, want 1", m.Body, m.Attempts)
		}
		if _, err := hex.DecodeString(string(m.ID[:])); err != nil {
			t.Errorf("message %q: ID %q is not 16 hex digits", m.Body, m.ID[:])
		}
		if ids[m.ID] {
			t.Errorf("message %q: ID %q repeated", m.Body, m.ID[:])
		}
		ids[m.ID] = true
		if ts := time.Unix(0, m.Timestamp); ts.Before(before.Add(-time.Millisecond)) || ts.After(after.Add(time.Millisecond)) {
			t.Errorf("message %q: Timestamp %v outside publish window [%v, %v]", m.Body, ts, before, after)
		}
		if m.NSQDAddress != n.TCPAddr {
			t.Errorf("message %q: NSQDAddress = %q, want %q", m.Body, m.NSQDAddress, n.TCPAddr)
		}
	}
	checkSet(t, got, msgs)

	cs := waitSettled(t, n, "pubsub", "ch", uint64(len(msgs)))
	if cs.MessageCount != uint64(len(msgs)) || cs.RequeueCount != 0 || cs.TimeoutCount != 0 {
		t.Errorf("channel stats: message_count %d requeue_count %d timeout_count %d, want %d 0 0",
			cs.MessageCount, cs.RequeueCount, cs.TimeoutCount, len(msgs))
	}
	ts, _ := topicStats(n, "pubsub")
	if ts.MessageCount != uint64(len(msgs)) {
		t.Errorf("topic message_count = %d, want %d", ts.MessageCount, len(msgs))
	}
}

func TestGoNSQMultiPublish(t *testing.T) {
	t.Parallel()
	n := nsqtest.StartNSQD(t, nil)
	p := newProducer(t, n.TCPAddr)
	in := startInbox(t, n, "mpub", "ch", withMaxInFlight(20), false)

	msgs := numbered("mpub-", 100)
	multiPublish(t, p, "mpub", msgs)
	checkSet(t, in.bodies(t, len(msgs), 5*time.Second), msgs)
	cs := waitSettled(t, n, "mpub", "ch", uint64(len(msgs)))
	if m, _ := sumClients(cs); m != uint64(len(msgs)) {
		t.Errorf("consumer message_count = %d, want %d", m, len(msgs))
	}

	st := n.Stats(nsqd.StatsFilter{IncludeClients: true})
	var pubs []nsqd.PubCount
	for _, c := range st.Producers {
		pubs = append(pubs, c.PubCounts...)
	}
	if len(pubs) != 1 || pubs[0] != (nsqd.PubCount{Topic: "mpub", Count: uint64(len(msgs))}) {
		t.Errorf("producers' pub_counts = %+v, want [{mpub %d}]", pubs, len(msgs))
	}
}

func TestGoNSQDeferredPublish(t *testing.T) {
	t.Parallel()
	const delay = time.Second
	n := nsqtest.StartNSQD(t, nil)
	p := newProducer(t, n.TCPAddr)
	in := startInbox(t, n, "dpub", "ch", withMaxInFlight(5), false)

	start := time.Now()
	if err := p.DeferredPublish("dpub", delay, []byte("later")); err != nil {
		t.Fatalf("DeferredPublish = %v", err)
	}
	publish(t, p, "dpub", []byte("now"))
	if r := in.next(t, 5*time.Second, "the immediate message"); string(r.msg.Body) != "now" {
		t.Fatalf("first message = %q, want %q (the deferred one came early)", r.msg.Body, "now")
	}
	nsqtest.Eventually(t, 5*time.Second, "deferred_count 1", func() bool {
		cs, _ := channelStats(n, "dpub", "ch")
		return cs.DeferredCount == 1 && cs.Depth == 0
	})
	r := in.next(t, 5*time.Second, "the deferred message")
	if string(r.msg.Body) != "later" {
		t.Fatalf("second message = %q, want %q", r.msg.Body, "later")
	}
	if el := r.at.Sub(start); el < delay {
		t.Errorf("deferred message delivered after %v, want >= %v", el, delay)
	}
	if r.msg.Attempts != 1 {
		t.Errorf("deferred message Attempts = %d, want 1", r.msg.Attempts)
	}
	waitSettled(t, n, "dpub", "ch", 2)
}

// A deferred message waiting in a channel nobody consumes counts as
// deferred, not as depth (NSQ puts it in the channel's deferred queue at
// once).
func TestGoNSQDeferredPublishStats(t *testing.T) {
	t.Parallel()
	n := nsqtest.StartNSQD(t, nil)
	topic, err := n.Server.Topic("dpubstats")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topic.Channel("ch"); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, n.TCPAddr)
	if err := p.DeferredPublish("dpubstats", time.Hour, []byte("later")); err != nil {
		t.Fatalf("DeferredPublish = %v", err)
	}
	var cs nsqd.ChannelStats
	if !poll(2*time.Second, func() bool {
		cs, _ = channelStats(n, "dpubstats", "ch")
		return cs.DeferredCount == 1 && cs.Depth == 0
	}) {
		t.Errorf("one deferred message, no consumer: channel depth %d deferred_count %d, want 0 1", cs.Depth, cs.DeferredCount)
	}
}

func TestGoNSQRequeueDelay(t *testing.T) {
	t.Parallel()
	const delay = 500 * time.Millisecond
	for _, tc := range []struct {
		name    string
		requeue func(*nsq.Message, time.Duration)
	}{
		{"Requeue", (*nsq.Message).Requeue},
		{"RequeueWithoutBackoff", (*nsq.Message).RequeueWithoutBackoff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := nsqtest.StartNSQD(t, nil)
			p := newProducer(t, n.TCPAddr)
			cfg := nsq.NewConfig()
			cfg.BackoffMultiplier = 10 * time.Millisecond
			in := startInbox(t, n, "req", "ch", cfg, true)
			publish(t, p, "req", []byte("again"))

			first := in.next(t, 5*time.Second, "first delivery")
			if first.msg.Attempts != 1 {
				t.Fatalf("first delivery Attempts = %d, want 1", first.msg.Attempts)
			}
			reqAt := time.Now()
			tc.requeue(first.msg, delay)
			nsqtest.Eventually(t, 2*time.Second, "requeued message deferred", func() bool {
				cs, _ := channelStats(n, "req", "ch")
				return cs.DeferredCount == 1 && cs.RequeueCount == 1 && cs.InFlightCount == 0
			})

			second := in.next(t, 5*time.Second, "redelivery")
			if second.msg.ID != first.msg.ID || !bytes.Equal(second.msg.Body, first.msg.Body) {
				t.Errorf("redelivered %q %q, want %q %q", second.msg.ID[:], second.msg.Body, first.msg.ID[:], first.msg.Body)
			}
			if second.msg.Attempts != 2 {
				t.Errorf("redelivery Attempts = %d, want 2", second.msg.Attempts)
			}
			if el := second.at.Sub(reqAt); el < delay {
				t.Errorf("redelivered %v after REQ, want >= %v", el, delay)
			}
			second.msg.Finish()
			cs := waitSettled(t, n, "req", "ch", 1)
			if cs.RequeueCount != 1 || cs.TimeoutCount != 0 {
				t.Errorf("requeue_count %d timeout_count %d, want 1 0", cs.RequeueCount, cs.TimeoutCount)
			}
			if len(cs.Clients) != 1 || cs.Clients[0].RequeueCount != 1 || cs.Clients[0].MessageCount != 2 {
				t.Errorf("client stats %+v, want requeue_count 1 message_count 2", cs.Clients)
			}
		})
	}
}

// TOUCH resets the message timeout: a message touched more often than its
// 1 s timeout stays in flight for 2.5 s, then FINs.
func TestGoNSQTouch(t *testing.T) {
	t.Parallel()
	n := nsqtest.StartNSQD(t, nil)
	p := newProducer(t, n.TCPAddr)
	in := startInbox(t, n, "touch", "ch", withMsgTimeout(time.Second), true)
	publish(t, p, "touch", []byte("slow"))
	r := in.next(t, 5*time.Second, "delivery")
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for range 10 {
		<-tick.C
		r.msg.Touch()
	}
	cs := mustChannelStats(t, n, "touch", "ch")
	if cs.TimeoutCount != 0 || cs.InFlightCount != 1 {
		t.Fatalf("after %v of touches: timeout_count %d in_flight_count %d, want 0 1", time.Since(r.at), cs.TimeoutCount, cs.InFlightCount)
	}
	select {
	case again := <-in:
		t.Fatalf("touched message redelivered (Attempts %d)", again.msg.Attempts)
	default:
	}
	r.msg.Finish()
	cs = waitSettled(t, n, "touch", "ch", 1)
	if cs.TimeoutCount != 0 {
		t.Errorf("timeout_count = %d, want 0", cs.TimeoutCount)
	}
}

// TOUCH cannot keep a message beyond --max-msg-timeout after delivery.
func TestGoNSQTouchCapped(t *testing.T) {
	t.Parallel()
	const maxTimeout = 1500 * time.Millisecond
	n := nsqtest.StartNSQD(t, func(c *nsqd.Config) { c.MaxMsgTimeout = maxTimeout })
	p := newProducer(t, n.TCPAddr)
	in := startInbox(t, n, "touchcap", "ch", withMsgTimeout(time.Second), true)
	start := time.Now()
	publish(t, p, "touchcap", []byte("slow"))
	first := in.next(t, 5*time.Second, "delivery")
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var second received
	for i := 0; second.msg == nil; i++ {
		if i == 20 {
			t.Fatalf("touched message still in flight after %v; max-msg-timeout is %v", time.Since(first.at), maxTimeout)
		}
		select {
		case <-tick.C:
			first.msg.Touch()
		case second = <-in:
		}
	}
	if el := second.at.Sub(start); el < maxTimeout {
		t.Errorf("redelivered %v after publish, want >= max-msg-timeout %v", el, maxTimeout)
	}
	if second.msg.Attempts != 2 {
		t.Errorf("redelivery Attempts = %d, want 2", second.msg.Attempts)
	}
	second.msg.Finish()
	first.msg.Finish() // E_FIN_FAILED: already finished; lets go-nsq drain
	cs := waitSettled(t, n, "touchcap", "ch", 1)
	if cs.TimeoutCount != 1 {
		t.Errorf("timeout_count = %d, want 1", cs.TimeoutCount)
	}
}

// A message neither FINed nor touched comes back after msg_timeout.
func TestGoNSQTimeout(t *testing.T) {
	t.Parallel()
	n := nsqtest.StartNSQD(t, nil)
	p := newProducer(t, n.TCPAddr)
	in := startInbox(t, n, "timeout", "ch", withMsgTimeout(time.Second), true)
	start := time.Now()
	publish(t, p, "timeout", []byte("lost"))
	first := in.next(t, 5*time.Second, "delivery")
	if first.msg.Attempts != 1 {
		t.Fatalf("first delivery Attempts = %d, want 1", first.msg.Attempts)
	}
	second := in.next(t, 5*time.Second, "redelivery after msg_timeout")
	if el := second.at.Sub(start); el < time.Second {
		t.Errorf("redelivered %v after publish, want >= msg_timeout 1s", el)
	}
	if second.msg.ID != first.msg.ID || second.msg.Attempts != 2 {
		t.Errorf("redelivered ID %q Attempts %d, want %q 2", second.msg.ID[:], second.msg.Attempts, first.msg.ID[:])
	}
	if cs := mustChannelStats(t, n, "timeout", "ch"); cs.TimeoutCount != 1 || cs.InFlightCount != 1 {
		t.Errorf("timeout_count %d in_flight_count %d, want 1 1", cs.TimeoutCount, cs.InFlightCount)
	}
	second.msg.Finish()
	first.msg.Finish() // E_FIN_FAILED: already finished; lets go-nsq drain
	cs := waitSettled(t, n, "timeout", "ch", 1)
	if cs.TimeoutCount != 1 || cs.RequeueCount != 0 {
		t.Errorf("timeout_count %d requeue_count %d, want 1 0", cs.TimeoutCount, cs.RequeueCount)
	}
}

// With MaxInFlight N the server never has more than N un-FINed messages
// out to the consumer, and refills the window as messages are FINed.
func TestGoNSQMaxInFlight(t *testing.T) {
	t.Parallel()
	const window, total = 5, 40
	n := nsqtest.StartNSQD(t, nil)
	p := newProducer(t, n.TCPAddr)

	var mu sync.Mutex
	var held []*nsq.Message
	recv, fins, peak := 0, 0, 0
	// More handler goroutines than the window, so an overshoot would be
	// handed to us rather than queue inside go-nsq.
	startConsumer(t, n.TCPAddr, "mif", "ch", withMaxInFlight(window), 2*window, func(m *nsq.Message) error {
		m.DisableAutoResponse()
		mu.Lock()
		defer mu.Unlock()
		recv++
		held = append(held, m)
		peak = max(peak, recv-fins)
		return nil
	})
	waitReady(t, n, "mif", "ch", 1)
	multiPublish(t, p, "mif", numbered("mif-", total))
	for round := 0; ; round++ {
		mu.Lock()
		done := fins == total
		want := min(window, total-fins)
		mu.Unlock()
		if done {
			break
		}
		if round > total {
			t.Fatalf("still %d of %d unfinished after %d rounds", total-fins, total, round)
		}
		// The server counts a message in flight before sending it and until
		// our FIN reaches it, so it never counts fewer than we hold.
		var inFlight, holds int
		ok := poll(5*time.Second, func() bool {
			cs, _ := channelStats(n, "mif", "ch")
			inFlight = cs.InFlightCount
			mu.Lock()
			defer mu.Unlock()
			holds = len(held)
			return holds >= want && inFlight == want
		})
		mu.Lock()
		if !ok || len(held) != want {
			mu.Unlock()
			t.Fatalf("round %d: consumer holds %d, server in_flight_count %d, want %d (MaxInFlight %d)", round, holds, inFlight, want, window)
		}
		// FIN two, oldest first; count them before sending so a fast
		// refill is never mistaken for an overshoot.
		k := min(2, len(held))
		finish := held[:k:k]
		held = held[k:]
		fins += k
		mu.Unlock()
		for _, m := range finish {
			m.Finish()
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if peak != window {
		t.Errorf("peak un-FINed messages = %d, want MaxInFlight %d", peak, window)
	}
	if recv != total {
		t.Errorf("received %d messages, want %d", recv, total)
	}
}

// Consumers of one channel share its messages: each message goes to one
// of them, and each gets some.
func TestGoNSQConsumersShareChannel(t *testing.T) {
	t.Parallel()
	const consumers, total = 3, 600
	n := nsqtest.StartNSQD(t, nil)
	p := newProducer(t, n.TCPAddr)

	var mu sync.Mutex
	seen := map[string]int{}
	per := make([]int, consumers)
	all := make(chan struct{})
	for i := range consumers {
		startConsumer(t, n.TCPAddr, "share", "ch", withMaxInFlight(10), 1, func(m *nsq.Message) error {
			mu.Lock()
			defer mu.Unlock()
			seen[string(m.Body)]++
			per[i]++
			if len(seen) == total && seen[string(m.Body)] == 1 {
				close(all)
			}
			return nil
		})
	}
	waitReady(t, n, "share", "ch", consumers)
	msgs := numbered("share-", total)
	multiPublish(t, p, "share", msgs)
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("received %d of %d distinct messages", len(seen), total)
	}
	cs := waitSettled(t, n, "share", "ch", total)
	if m, _ := sumClients(cs); m != total || cs.RequeueCount != 0 || cs.TimeoutCount != 0 {
		t.Errorf("server sent %d messages (requeue_count %d timeout_count %d), want exactly %d", m, cs.RequeueCount, cs.TimeoutCount, total)
	}
	mu.Lock()
	defer mu.Unlock()
	for b, k := range seen {
		if k != 1 {
			t.Errorf("message %q received %d times", b, k)
		}
	}
	for i, k := range per {
		if k == 0 {
			t.Errorf("consumer %d received no messages (split %v)", i, per)
		}
	}
}

// Every channel of a topic gets every message.
func TestGoNSQChannels(t *testing.T) {
	t.Parallel()
	const total = 200
	n := nsqtest.StartNSQD(t, nil)
	p := newProducer(t, n.TCPAddr)
	channels := []string{"a", "b", "c"}
	inboxes := map[string]inbox{}
	for _, ch := range channels {
		inboxes[ch] = startInbox(t, n, "fanout", ch, withMaxInFlight(50), false)
	}
	msgs := numbered("fan-", total)
	multiPublish(t, p, "fanout", msgs[:total/2])
	for _, b := range msgs[total/2:] {
		publish(t, p, "fanout", b)
	}
	for _, ch := range channels {
		t.Run(ch, func(t *testing.T) {
			checkSet(t, inboxes[ch].bodies(t, total, 10*time.Second), msgs)
			cs := waitSettled(t, n, "fanout", ch, total)
			if m, _ := sumClients(cs); m != total || cs.MessageCount != total {
				t.Errorf("consumer message_count %d, channel message_count %d, want %d", m, cs.MessageCount, total)
			}
		})
	}
}

func TestGoNSQEphemeral(t *testing.T) {
	t.Parallel()
	t.Run("channel", func(t *testing.T) {
		t.Parallel()
		n := nsqtest.StartNSQD(t, nil)
		p := newProducer(t, n.TCPAddr)
		in := newInbox()
		c := startConsumer(t, n.TCPAddr, "durable", "tmp#ephemeral", nil, 1, in.handler(false))
		waitReady(t, n, "durable", "tmp#ephemeral", 1)
		publish(t, p, "durable", []byte("x"))
		in.next(t, 5*time.Second, "message on the ephemeral channel")
		stopConsumer(t, c)
		nsqtest.Eventually(t, 5*time.Second, "ephemeral channel deleted", func() bool {
			_, ok := channelStats(n, "durable", "tmp#ephemeral")
			return !ok
		})
		if _, ok := topicStats(n, "durable"); !ok {
			t.Errorf("non-ephemeral topic deleted with its ephemeral channel")
		}
	})
	t.Run("topic", func(t *testing.T) {
		t.Parallel()
		const topic = "brief#ephemeral"
		n := nsqtest.StartNSQD(t, nil)
		p := newProducer(t, n.TCPAddr)
		ina, inb := newInbox(), newInbox()
		a := startConsumer(t, n.TCPAddr, topic, "a#ephemeral", nil, 1, ina.handler(false))
		b := startConsumer(t, n.TCPAddr, topic, "b#ephemeral", nil, 1, inb.handler(false))
		waitReady(t, n, topic, "a#ephemeral", 1)
		waitReady(t, n, topic, "b#ephemeral", 1)
		publish(t, p, topic, []byte("x"))
		ina.next(t, 5*time.Second, "message on channel a")
		inb.next(t, 5*time.Second, "message on channel b")

		stopConsumer(t, a)
		nsqtest.Eventually(t, 5*time.Second, "channel a deleted", func() bool {
			_, ok := channelStats(n, topic, "a#ephemeral")
			return !ok
		})
		if _, ok := channelStats(n, topic, "b#ephemeral"); !ok {
			t.Fatalf("channel b gone with channel a")
		}
		stopConsumer(t, b)
		nsqtest.Eventually(t, 5*time.Second, "ephemeral topic deleted with its last channel", func() bool {
			_, ok := topicStats(n, topic)
			return !ok
		})
	})
}

// pauser pauses a topic or channel: a *nsqd.Topic, a *nsqd.Channel, or
// the HTTP API.
type pauser interface {
	Pause()
	Unpause()
}

// httpPauser pauses through nsqd's HTTP API: url has a %s for "pause" or
// "unpause".
type httpPauser struct {
	t   *testing.T
	url string
}

func (h httpPauser) Pause()   { h.post("pause") }
func (h httpPauser) Unpause() { h.post("unpause") }

func (h httpPauser) post(action string) {
	h.t.Helper()
	url := fmt.Sprintf(h.url, action)
	resp, err := http.Post(url, "", nil)
	if err != nil {
		h.t.Fatalf("POST %s: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("POST %s: %s", url, resp.Status)
	}
}

func TestGoNSQPause(t *testing.T) {
	t.Parallel()
	// The paused messages sit at the topic when it is paused, in the
	// channel when it is.
	topicHeld := func(ts nsqd.TopicStats, cs nsqd.ChannelStats) bool {
		return ts.Paused && !cs.Paused && ts.Depth == 5 && cs.Depth == 0
	}
	channelHeld := func(ts nsqd.TopicStats, cs nsqd.ChannelStats) bool {
		return !ts.Paused && cs.Paused && ts.Depth == 0 && cs.Depth == 5
	}
	for _, tc := range []struct {
		name   string
		target func(*testing.T, *nsqtest.NSQD) pauser
		held   func(nsqd.TopicStats, nsqd.ChannelStats) bool
	}{
		{"topic", func(t *testing.T, n *nsqtest.NSQD) pauser {
			tp, err := n.Server.Topic("pause")
			if err != nil {
				t.Fatal(err)
			}
			return tp
		}, topicHeld},
		{"channel", func(t *testing.T, n *nsqtest.NSQD) pauser {
			tp, err := n.Server.Topic("pause")
			if err != nil {
				t.Fatal(err)
			}
			ch, err := tp.Channel("ch")
			if err != nil {
				t.Fatal(err)
			}
			return ch
		}, channelHeld},
		{"topic over HTTP", func(t *testing.T, n *nsqtest.NSQD) pauser {
			return httpPauser{t, "http://" + n.HTTPAddr + "/topic/%s?topic=pause"}
		}, topicHeld},
		{"channel over HTTP", func(t *testing.T, n *nsqtest.NSQD) pauser {
			return httpPauser{t, "http://" + n.HTTPAddr + "/channel/%s?topic=pause&channel=ch"}
		}, channelHeld},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := nsqtest.StartNSQD(t, nil)
			p := newProducer(t, n.TCPAddr)
			in := startInbox(t, n, "pause", "ch", withMaxInFlight(10), false)

			target := tc.target(t, n)
			target.Pause()
			msgs := numbered("paused-", 5)
			multiPublish(t, p, "pause", msgs)
			nsqtest.Eventually(t, 2*time.Second, "messages held while paused", func() bool {
				ts, _ := topicStats(n, "pause")
				cs, _ := channelStats(n, "pause", "ch")
				return tc.held(ts, cs)
			})
			consistently(t, 300*time.Millisecond, "message delivered while paused", func() bool { return len(in) > 0 })
			if cs := mustChannelStats(t, n, "pause", "ch"); cs.InFlightCount != 0 {
				t.Fatalf("in_flight_count %d while paused, want 0", cs.InFlightCount)
			}

			target.Unpause()
			checkSet(t, in.bodies(t, len(msgs), 5*time.Second), msgs)
			waitSettled(t, n, "pause", "ch", uint64(len(msgs)))
			if ts, _ := topicStats(n, "pause"); ts.Paused || ts.Depth != 0 {
				t.Errorf("after unpause: topic paused %v depth %d, want false 0", ts.Paused, ts.Depth)
			}
		})
	}
}

func TestGoNSQEmpty(t *testing.T) {
	t.Parallel()
	t.Run("queued", func(t *testing.T) {
		t.Parallel()
		n := nsqtest.StartNSQD(t, nil)
		tp, err := n.Server.Topic("empty")
		if err != nil {
			t.Fatal(err)
		}
		ch, err := tp.Channel("ch")
		if err != nil {
			t.Fatal(err)
		}
		p := newProducer(t, n.TCPAddr)
		multiPublish(t, p, "empty", numbered("old-", 20))
		if cs := mustChannelStats(t, n, "empty", "ch"); cs.Depth != 20 {
			t.Fatalf("depth before Empty = %d, want 20", cs.Depth)
		}
		ch.Empty()
		if cs := mustChannelStats(t, n, "empty", "ch"); cs.Depth != 0 {
			t.Fatalf("depth after Empty = %d, want 0", cs.Depth)
		}
		in := startInbox(t, n, "empty", "ch", nil, false)
		publish(t, p, "empty", []byte("new"))
		if r := in.next(t, 5*time.Second, "message published after Empty"); string(r.msg.Body) != "new" {
			t.Fatalf("got %q, want %q: emptied message delivered", r.msg.Body, "new")
		}
		cs := waitSettled(t, n, "empty", "ch", 1)
		if m, _ := sumClients(cs); m != 1 {
			t.Errorf("consumer was sent %d messages, want 1", m)
		}
	})
	t.Run("in-flight", func(t *testing.T) {
		t.Parallel()
		n := nsqtest.StartNSQD(t, nil)
		p := newProducer(t, n.TCPAddr)
		in := startInbox(t, n, "emptyif", "ch", nil, true)
		multiPublish(t, p, "emptyif", [][]byte{[]byte("a"), []byte("b")})
		a := in.next(t, 5*time.Second, "first message")
		nsqtest.Eventually(t, 2*time.Second, "one in flight, one queued", func() bool {
			cs, _ := channelStats(n, "emptyif", "ch")
			return cs.InFlightCount == 1 && cs.Depth == 1
		})
		tp, _ := n.Server.Topic("emptyif")
		ch, _ := tp.Channel("ch")
		ch.Empty()
		cs := mustChannelStats(t, n, "emptyif", "ch")
		if cs.Depth != 0 || cs.InFlightCount != 0 || cs.Clients[0].InFlightCount != 0 {
			t.Fatalf("after Empty: depth %d in_flight_count %d client in_flight_count %d, want 0 0 0",
				cs.Depth, cs.InFlightCount, cs.Clients[0].InFlightCount)
		}
		// The consumer's credit (MaxInFlight 1) is back although it never
		// answered the emptied message.
		publish(t, p, "emptyif", []byte("c"))
		c := in.next(t, 5*time.Second, "message after Empty")
		if string(c.msg.Body) != "c" {
			t.Fatalf("got %q, want %q", c.msg.Body, "c")
		}
		c.msg.Finish()
		a.msg.Finish() // E_FIN_FAILED (non-fatal): emptied
		cs = waitSettled(t, n, "emptyif", "ch", 1)
		if m, _ := sumClients(cs); m != 2 {
			t.Errorf("consumer was sent %d messages, want 2 (a, c)", m)
		}
		if cs.ClientCount != 1 {
			t.Errorf("client_count = %d after a failed FIN, want 1 (E_FIN_FAILED is not fatal)", cs.ClientCount)
		}
	})
}

func remoteAddrs(cs nsqd.ChannelStats) []string {
	var out []string
	for _, c := range cs.Clients {
		out = append(out, c.RemoteAddress)
	}
	return out
}

func TestGoNSQDelete(t *testing.T) {
	t.Parallel()
	// go-nsq reconnects to an nsqd that dropped it; a new remote address
	// proves the old connection was closed.
	newCfg := func() *nsq.Config {
		cfg := nsq.NewConfig()
		cfg.LookupdPollInterval = 100 * time.Millisecond
		return cfg
	}
	t.Run("topic", func(t *testing.T) {
		t.Parallel()
		n := nsqtest.StartNSQD(t, nil)
		p := newProducer(t, n.TCPAddr)
		in := startInbox(t, n, "doomed", "ch", newCfg(), false)
		publish(t, p, "doomed", []byte("before"))
		in.next(t, 5*time.Second, "message before delete")
		old := remoteAddrs(mustChannelStats(t, n, "doomed", "ch"))

		if !n.Server.DeleteTopic("doomed") {
			t.Fatalf("DeleteTopic = false, want true")
		}
		nsqtest.Eventually(t, 5*time.Second, "consumer disconnected and back on a new connection", func() bool {
			cs, ok := channelStats(n, "doomed", "ch")
			return ok && len(cs.Clients) == 1 && cs.Clients[0].RemoteAddress != old[0] && cs.Clients[0].ReadyCount > 0
		})
		if cs := mustChannelStats(t, n, "doomed", "ch"); cs.MessageCount != 0 || cs.Depth != 0 {
			t.Errorf("recreated channel: message_count %d depth %d, want 0 0 (old messages deleted)", cs.MessageCount, cs.Depth)
		}
		publish(t, p, "doomed", []byte("after"))
		if r := in.next(t, 5*time.Second, "message after delete"); string(r.msg.Body) != "after" {
			t.Errorf("got %q, want %q", r.msg.Body, "after")
		}
	})
	t.Run("channel", func(t *testing.T) {
		t.Parallel()
		n := nsqtest.StartNSQD(t, nil)
		p := newProducer(t, n.TCPAddr)
		ina := startInbox(t, n, "prune", "a", newCfg(), false)
		inb := startInbox(t, n, "prune", "b", newCfg(), false)
		oldA := remoteAddrs(mustChannelStats(t, n, "prune", "a"))
		oldB := remoteAddrs(mustChannelStats(t, n, "prune", "b"))
		tp, _ := n.Server.Topic("prune")
		if !tp.DeleteChannel("a") {
			t.Fatalf("DeleteChannel = false, want true")
		}
		nsqtest.Eventually(t, 5*time.Second, "channel a's consumer back on a new connection", func() bool {
			cs, ok := channelStats(n, "prune", "a")
			return ok && len(cs.Clients) == 1 && cs.Clients[0].RemoteAddress != oldA[0] && cs.Clients[0].ReadyCount > 0
		})
		if got := remoteAddrs(mustChannelStats(t, n, "prune", "b")); len(got) != 1 || got[0] != oldB[0] {
			t.Errorf("channel b's consumers %v, want the untouched %v", got, oldB)
		}
		publish(t, p, "prune", []byte("x"))
		ina.next(t, 5*time.Second, "message on recreated channel a")
		inb.next(t, 5*time.Second, "message on channel b")
	})
}

// A publish to a topic without channels is kept for the first channel; a
// channel created later starts at the tail.
func TestGoNSQLateChannels(t *testing.T) {
	t.Parallel()
	n := nsqtest.StartNSQD(t, nil)
	p := newProducer(t, n.TCPAddr)
	early := numbered("early-", 5)
	multiPublish(t, p, "late", early)
	if ts, ok := topicStats(n, "late"); !ok || ts.Depth != 5 || len(ts.Channels) != 0 {
		t.Fatalf("topic without channels: found %v depth %d channels %d, want depth 5, no channels", ok, ts.Depth, len(ts.Channels))
	}

	ina := newInbox()
	startConsumer(t, n.TCPAddr, "late", "first", withMaxInFlight(10), 1, ina.handler(false))
	checkSet(t, ina.bodies(t, len(early), 5*time.Second), early)
	waitSettled(t, n, "late", "first", uint64(len(early)))

	inb := startInbox(t, n, "late", "second", withMaxInFlight(10), false)
	publish(t, p, "late", []byte("after"))
	if r := inb.next(t, 5*time.Second, "message on the second channel"); string(r.msg.Body) != "after" {
		t.Fatalf("second channel got %q first, want %q", r.msg.Body, "after")
	}
	if r := ina.next(t, 5*time.Second, "message on the first channel"); string(r.msg.Body) != "after" {
		t.Fatalf("first channel got %q, want %q", r.msg.Body, "after")
	}
	cs := waitSettled(t, n, "late", "second", 1)
	if m, _ := sumClients(cs); m != 1 || cs.MessageCount != 1 {
		t.Errorf("second channel: sent %d, message_count %d, want 1 1", m, cs.MessageCount)
	}
	if ts, _ := topicStats(n, "late"); ts.Depth != 0 || ts.MessageCount != 6 {
		t.Errorf("topic depth %d message_count %d, want 0 6", ts.Depth, ts.MessageCount)
	}
}

func TestGoNSQE2ELatency(t *testing.T) {
	t.Parallel()
	n := nsqtest.StartNSQD(t, func(c *nsqd.Config) {
		c.E2EProcessingLatencyPercentiles = []float64{0.5, 0.99}
	})
	p := newProducer(t, n.TCPAddr)
	in := startInbox(t, n, "e2e", "ch", withMaxInFlight(10), false)
	start := time.Now()
	msgs := numbered("e2e-", 50)
	multiPublish(t, p, "e2e", msgs)
	in.bodies(t, len(msgs), 5*time.Second)
	waitSettled(t, n, "e2e", "ch", uint64(len(msgs)))
	elapsed := time.Since(start)

	ts, _ := topicStats(n, "e2e")
	for _, tc := range []struct {
		name string
		p    nsqd.Percentiles
	}{{"channel", mustChannelStats(t, n, "e2e", "ch").E2E}, {"topic", ts.E2E}} {
		if tc.p.Count != uint64(len(msgs)) {
			t.Errorf("%s e2e count = %d, want %d", tc.name, tc.p.Count, len(msgs))
		}
		if len(tc.p.Percentiles) != 2 {
			t.Errorf("%s e2e percentiles = %v, want 2", tc.name, tc.p.Percentiles)
			continue
		}
		prev := 0.0
		for i, q := range []float64{0.5, 0.99} {
			got := tc.p.Percentiles[i]
			if got["quantile"] != q {
				t.Errorf("%s percentile %d quantile = %v, want %v", tc.name, i, got["quantile"], q)
			}
			if v := got["value"]; v <= 0 || v > float64(elapsed)*1.1 || v < prev {
				t.Errorf("%s p%v = %vns, want in (%v, %v]", tc.name, q, v, prev, elapsed)
			}
			prev = got["value"]
		}
	}
}

// proxy forwards TCP connections to an nsqd and can cut them all, as a
// crashed client or a broken network would: go-nsq itself only closes
// gracefully, after its in-flight messages are answered.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			u.Close()
			return
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		p.wg.Go(func() { pipe(u, c) })
		p.wg.Go(func() { pipe(c, u) })
	}
}

// cut closes the listener and every connection, and waits for the
// proxy's goroutines.
func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// A consumer that disconnects with messages in flight: nsqx hands them to
// another consumer at once (NSQ waits for msg_timeout, here 60 s).
func TestGoNSQDisconnectRequeue(t *testing.T) {
	t.Parallel()
	const held, total = 4, 10
	n := nsqtest.StartNSQD(t, nil)
	p := newProducer(t, n.TCPAddr)
	px := startProxy(t, n.TCPAddr)

	ina := newInbox()
	startConsumer(t, px.ln.Addr().String(), "crash", "ch", withMaxInFlight(held), 1, ina.handler(true))
	waitReady(t, n, "crash", "ch", 1)
	msgs := numbered("crash-", total)
	multiPublish(t, p, "crash", msgs)
	var heldMsgs []*nsq.Message
	for range held {
		heldMsgs = append(heldMsgs, ina.next(t, 5*time.Second, "message for the crashing consumer").msg)
	}
	nsqtest.Eventually(t, 2*time.Second, "messages in flight to the crashing consumer", func() bool {
		cs, _ := channelStats(n, "crash", "ch")
		return cs.InFlightCount == held && cs.Depth == total-held
	})

	inb := newInbox()
	startConsumer(t, n.TCPAddr, "crash", "ch", withMaxInFlight(total), 1, inb.handler(false))
	var got []string
	for range total - held {
		r := inb.next(t, 5*time.Second, "queued message for the surviving consumer")
		if r.msg.Attempts != 1 {
			t.Errorf("queued message %q: Attempts = %d, want 1", r.msg.Body, r.msg.Attempts)
		}
		got = append(got, string(r.msg.Body))
	}

	cutAt := time.Now()
	px.cut()
	for range held {
		r := inb.next(t, 5*time.Second, "in-flight message of the dropped consumer")
		if r.msg.Attempts != 2 {
			t.Errorf("requeued message %q: Attempts = %d, want 2", r.msg.Body, r.msg.Attempts)
		}
		if el := r.at.Sub(cutAt); el > 5*time.Second {
			t.Errorf("requeued message %q redelivered %v after the disconnect", r.msg.Body, el)
		}
		got = append(got, string(r.msg.Body))
	}
	checkSet(t, got, msgs)
	cs := waitSettled(t, n, "crash", "ch", total)
	if cs.TimeoutCount != 0 || cs.ClientCount != 1 {
		t.Errorf("timeout_count %d client_count %d, want 0 1", cs.TimeoutCount, cs.ClientCount)
	}

	// Answer the abandoned messages so go-nsq's dead connection drains
	// and the consumer can stop; its connection is gone, so nothing is
	// sent.
	drained := make(chan struct{})
	go func() {
		for _, m := range heldMsgs {
			m.Finish()
		}
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(5 * time.Second):
		t.Errorf("go-nsq did not take the answers for its dropped connection")
	}
}

// 100,000 messages through MPUB batches from two producers, four consumer
// connections: none lost, none duplicated.
func TestGoNSQRoundTrip100k(t *testing.T) {
	const (
		total     = 100_000
		batch     = 1000
		producers = 2
		consumers = 4
	)
	if testing.Short() {
		t.Skip("100k messages")
	}
	n := nsqtest.StartNSQD(t, nil)
	counts := make([]atomic.Int32, total)
	var distinct, dups atomic.Int64
	all := make(chan struct{})
	handler := func(m *nsq.Message) error {
		i, err := strconv.Atoi(string(m.Body))
		if err != nil || i < 0 || i >= total {
			t.Errorf("unexpected body %q", m.Body)
			return nil
		}
		if counts[i].Add(1) > 1 {
			dups.Add(1)
			return nil
		}
		if distinct.Add(1) == total {
			close(all)
		}
		return nil
	}
	for range consumers {
		startConsumer(t, n.TCPAddr, "bulk", "ch", withMaxInFlight(1000), 2, handler)
	}
	waitReady(t, n, "bulk", "ch", consumers)

	start := time.Now()
	var g errgroup.Group
	for w := range producers {
		p := newProducer(t, n.TCPAddr)
		g.Go(func() error {
			for b := w * batch; b < total; b += producers * batch {
				bodies := make([][]byte, batch)
				for i := range bodies {
					bodies[i] = []byte(strconv.Itoa(b + i))
				}
				if err := p.MultiPublish("bulk", bodies); err != nil {
					return fmt.Errorf("MultiPublish batch at %d: %w", b, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	published := time.Since(start)
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Fatalf("received %d of %d distinct messages in 30s (%d duplicates)", distinct.Load(), total, dups.Load())
	}
	t.Logf("published in %v, consumed in %v", published, time.Since(start))
	cs := waitSettled(t, n, "bulk", "ch", total)
	if d := dups.Load(); d != 0 {
		t.Errorf("%d duplicate deliveries", d)
	}
	if m, _ := sumClients(cs); m != total || cs.MessageCount != total || cs.RequeueCount != 0 || cs.TimeoutCount != 0 {
		t.Errorf("server sent %d, message_count %d, requeue_count %d, timeout_count %d; want %d %d 0 0",
			m, cs.MessageCount, cs.RequeueCount, cs.TimeoutCount, total, total)
	}
	for i, c := range cs.Clients {
		if c.MessageCount == 0 {
			t.Errorf("consumer connection %d got no messages", i)
		}
	}
}
