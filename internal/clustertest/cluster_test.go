// Package clustertest runs nsqx's daemons together on loopback, in
// process: several nsqd registering with several nsqlookupd, and go-nsq
// clients that find the nsqds through the lookupds, as in production.
package clustertest

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqlookupd"
	"github.com/nsqx/nsqx/wire"
)

// TestConsumersGetEveryMessage runs 3 nsqd and 2 lookupds: nsqd 1 is
// registered with lookupd 1 only, nsqd 2 with lookupd 2 only, nsqd 3 with
// both. Consumers that know both lookupds must find all three nsqds, and
// between them receive every message published to any nsqd exactly once:
// a channel shared by two consumers and a channel with one consumer each
// get every message once, and nsqd reports no requeue or timeout that
// could deliver one again.
func TestConsumersGetEveryMessage(t *testing.T) {
	t.Parallel()
	logger := newGoNSQLogger(t)
	l1, l2 := StartLookupd(t, nil), StartLookupd(t, nil)
	ns := []*nsqtest.NSQD{startNSQD(t, l1), startNSQD(t, l2), startNSQD(t, l1, l2)}
	const topic = "orders"
	channels := []string{"shared", "solo"}
	for _, n := range ns {
		for _, ch := range channels {
			createChannel(t, n, topic, ch)
		}
	}
	waitProducers(t, []*Lookupd{l1}, topic, ns[0], ns[2])
	waitProducers(t, []*Lookupd{l2}, topic, ns[1], ns[2])

	var mu sync.Mutex
	seen := map[string]map[string]int{} // channel → body → deliveries
	for _, ch := range channels {
		seen[ch] = map[string]int{}
	}
	handler := func(ch string) nsq.HandlerFunc {
		return func(m *nsq.Message) error {
			mu.Lock()
			defer mu.Unlock()
			seen[ch][string(m.Body)]++
			return nil
		}
	}
	startConsumer(t, logger, topic, "shared", handler("shared"), l1, l2)
	startConsumer(t, logger, topic, "shared", handler("shared"), l1, l2)
	startConsumer(t, logger, topic, "solo", handler("solo"), l1, l2)
	for i, n := range ns {
		nsqtest.Eventually(t, waitTimeout, fmt.Sprintf("every consumer to find nsqd %d", i+1), func() bool {
			shared, _ := channelStats(t, n, topic, "shared")
			solo, _ := channelStats(t, n, topic, "solo")
			return shared.ClientCount == 2 && solo.ClientCount == 1
		})
	}

	const batches, batchSize = 3, 100
	var want []string
	for i, n := range ns {
		p := startProducer(t, logger, n)
		for b := range batches {
			var bodies [][]byte
			for j := range batchSize {
				body := fmt.Sprintf("nsqd%d-%03d", i+1, b*batchSize+j)
				bodies = append(bodies, []byte(body))
				want = append(want, body)
			}
			if err := p.MultiPublish(topic, bodies); err != nil {
				t.Fatalf("MultiPublish to nsqd %d: %v", i+1, err)
			}
		}
	}
	slices.Sort(want)

	received := func(ch string) int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen[ch])
	}
	for _, ch := range channels {
		nsqtest.Eventually(t, waitTimeout, "channel "+ch+" to receive every message", func() bool { return received(ch) == len(want) })
	}
	// Every message has been handled; once all are finished, nsqd holds
	// none it could deliver again.
	for i, n := range ns {
		for _, ch := range channels {
			nsqtest.Eventually(t, waitTimeout, fmt.Sprintf("nsqd %d channel %s to finish every message", i+1, ch), func() bool {
				s, _ := channelStats(t, n, topic, ch)
				return s.Depth == 0 && s.InFlightCount == 0 && s.DeferredCount == 0
			})
			s, _ := channelStats(t, n, topic, ch)
			if s.MessageCount != batches*batchSize || s.RequeueCount != 0 || s.TimeoutCount != 0 {
				t.Errorf("nsqd %d channel %s: message_count %d requeue_count %d timeout_count %d, want %d 0 0",
					i+1, ch, s.MessageCount, s.RequeueCount, s.TimeoutCount, batches*batchSize)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ch := range channels {
		var got []string
		for body, count := range seen[ch] {
			got = append(got, body)
			if count != 1 {
				t.Errorf("channel %s received %q %d times, want once", ch, body, count)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("channel %s received %d distinct messages, want the %d published", ch, len(got), len(want))
		}
	}
}

// TestLookupdRestart restarts a lookupd on the same ports, with an empty
// registry: the nsqd must reconnect on its own and register its topic and
// channel again.
func TestLookupdRestart(t *testing.T) {
	t.Parallel()
	l := StartLookupd(t, nil)
	n := startNSQD(t, l)
	createChannel(t, n, "t", "c")
	waitProducers(t, []*Lookupd{l}, "t", n)
	before := debugEntries(t, l, "client::")
	if len(before) != 1 {
		t.Fatalf("/debug lists %d clients, want 1", len(before))
	}

	l = l.Restart(t)
	nsqtest.Eventually(t, waitTimeout, "nsqd to register again with the restarted lookupd", func() bool {
		channels, producers, ok := lookup(t, l, "t")
		return ok && slices.Equal(channels, []string{"c"}) && slices.Equal(producers, []string{n.TCPAddr})
	})
	node, ok := nodes(t, l)[n.TCPAddr]
	if !ok || !slices.Equal(node.Topics, []string{"t"}) || !slices.Equal(node.Tombstones, []bool{false}) {
		t.Errorf("/nodes after the restart: %+v (found %v), want nsqd with topics [t]", node, ok)
	}
	after := debugEntries(t, l, "client::")
	if len(after) != 1 || after[0].ID == before[0].ID {
		t.Errorf("/debug clients after the restart: %+v, want one new connection (was %s)", after, before[0].ID)
	}
}

// TestStoppedNSQDLeaves stops one of two nsqds: both lookupds must drop it
// from /lookup and /nodes and keep the other.
func TestStoppedNSQDLeaves(t *testing.T) {
	t.Parallel()
	ls := []*Lookupd{StartLookupd(t, nil), StartLookupd(t, nil)}
	n1, n2 := startNSQD(t, ls...), startNSQD(t, ls...)
	for _, n := range []*nsqtest.NSQD{n1, n2} {
		mustRequest(t, "POST", n.HTTPAddr, "/topic/create?topic=t", "")
	}
	waitProducers(t, ls, "t", n1, n2)

	n1.Stop(t)
	waitProducers(t, ls, "t", n2)
	for _, l := range ls {
		got := nodes(t, l)
		if _, ok := got[n2.TCPAddr]; len(got) != 1 || !ok {
			t.Errorf("lookupd %s /nodes = %v, want only %s", l.HTTPAddr, got, n2.TCPAddr)
		}
	}
}

// TestTombstone tombstones one nsqd's producer of a topic: lookupd hides it
// from /lookup (and flags it in /nodes) for the tombstone lifetime, not
// less, and lists it again afterwards; the other nsqd stays listed.
func TestTombstone(t *testing.T) {
	t.Parallel()
	const lifetime = 3 * time.Second
	l := StartLookupd(t, func(c *nsqlookupd.Config) { c.TombstoneLifetime = lifetime })
	n1, n2 := startNSQD(t, l), startNSQD(t, l)
	for _, n := range []*nsqtest.NSQD{n1, n2} {
		mustRequest(t, "POST", n.HTTPAddr, "/topic/create?topic=t", "")
	}
	waitProducers(t, []*Lookupd{l}, "t", n1, n2)

	start := time.Now()
	mustRequest(t, "POST", l.HTTPAddr, "/topic/tombstone?topic=t&node="+n1.Config.BroadcastAddress+":"+port(t, n1.HTTPAddr), "")
	if !producersAre(t, l, "t", n2) {
		_, got, _ := lookup(t, l, "t")
		t.Fatalf("/lookup just after the tombstone lists %v, want only %s", got, n2.TCPAddr)
	}
	if node := nodes(t, l)[n1.TCPAddr]; !slices.Equal(node.Tombstones, []bool{true}) {
		t.Errorf("/nodes tombstones of the tombstoned nsqd = %v, want [true]", node.Tombstones)
	}
	waitProducers(t, []*Lookupd{l}, "t", n1, n2)
	if d := time.Since(start); d < lifetime {
		t.Errorf("tombstoned producer listed again after %v, want at least %v", d, lifetime)
	}
	if node := nodes(t, l)[n1.TCPAddr]; !slices.Equal(node.Tombstones, []bool{false}) {
		t.Errorf("/nodes tombstones after the lifetime = %v, want [false]", node.Tombstones)
	}
}

// TestInactiveProducer registers a producer over a raw V1 connection that
// then goes silent: after the inactive producer timeout lookupd hides it
// from /lookup and /nodes while still holding its registration (the
// connection is open; the idle timeout is long), and a PING brings it back.
func TestInactiveProducer(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	l := StartLookupd(t, func(c *nsqlookupd.Config) {
		c.InactiveProducerTimeout = timeout
		c.IdleTimeout = time.Minute // longer than the test, or it would close the silent connection
	})
	const self = "127.0.0.1:4150" // what the raw producer claims to be
	peer := dialV1(t, l, `{"version":"1.3.0","tcp_port":4150,"http_port":4151,"broadcast_address":"127.0.0.1","hostname":"raw"}`)
	peer.roundTrip("REGISTER t c\n", "OK")

	pinged := time.Now()
	peer.roundTrip("PING\n", "OK")
	if !slices.Equal(lookupProducers(t, l, "t"), []string{self}) {
		t.Fatalf("/lookup just after PING lists %v, want %s", lookupProducers(t, l, "t"), self)
	}
	nsqtest.Eventually(t, waitTimeout, "the silent producer to be hidden", func() bool {
		return len(lookupProducers(t, l, "t")) == 0 && len(nodes(t, l)) == 0
	})
	if d := time.Since(pinged); d < timeout {
		t.Errorf("producer hidden %v after its PING, want at least %v", d, timeout)
	}
	for _, key := range []string{"client::", "topic:t:", "channel:t:c"} {
		if got := debugProducers(t, l, key); !slices.Equal(got, []string{self}) {
			t.Errorf("/debug %s of a hidden producer = %v, want it still registered", key, got)
		}
	}

	peer.roundTrip("PING\n", "OK")
	if got := lookupProducers(t, l, "t"); !slices.Equal(got, []string{self}) {
		t.Errorf("/lookup after a new PING lists %v, want %s", got, self)
	}
	if node, ok := nodes(t, l)[self]; !ok || !slices.Equal(node.Topics, []string{"t"}) {
		t.Errorf("/nodes after a new PING: %+v (found %v), want the producer of t", node, ok)
	}
}

// TestTopicDeleteUnregisters deletes a topic on one of two nsqds: both
// lookupds must drop that nsqd from the topic and its channel, and keep
// the other nsqd.
func TestTopicDeleteUnregisters(t *testing.T) {
	t.Parallel()
	ls := []*Lookupd{StartLookupd(t, nil), StartLookupd(t, nil)}
	n1, n2 := startNSQD(t, ls...), startNSQD(t, ls...)
	for _, n := range []*nsqtest.NSQD{n1, n2} {
		createChannel(t, n, "t", "c")
		mustRequest(t, "POST", n.HTTPAddr, "/topic/create?topic=other", "")
	}
	waitProducers(t, ls, "t", n1, n2)

	mustRequest(t, "POST", n1.HTTPAddr, "/topic/delete?topic=t", "")
	waitProducers(t, ls, "t", n2)
	for _, l := range ls {
		for _, key := range []string{"topic:t:", "channel:t:c"} {
			nsqtest.Eventually(t, waitTimeout, key+" to list only the other nsqd", func() bool {
				return slices.Equal(debugProducers(t, l, key), []string{n2.TCPAddr})
			})
		}
		if node := nodes(t, l)[n1.TCPAddr]; !slices.Equal(node.Topics, []string{"other"}) {
			t.Errorf("lookupd %s /nodes topics of the nsqd that deleted t = %v, want [other]", l.HTTPAddr, node.Topics)
		}
	}
}

// TestSetLookupdAddrs moves an nsqd from one lookupd to another at run time
// with PUT /config/nsqlookupd_tcp_addresses: the new lookupd gets its
// registrations, the old one forgets it.
func TestSetLookupdAddrs(t *testing.T) {
	t.Parallel()
	l1, l2 := StartLookupd(t, nil), StartLookupd(t, nil)
	n := startNSQD(t, l1)
	createChannel(t, n, "t", "c")
	waitProducers(t, []*Lookupd{l1}, "t", n)

	js, _ := json.Marshal([]string{l2.TCPAddr})
	if got := mustRequest(t, "PUT", n.HTTPAddr, "/config/nsqlookupd_tcp_addresses", string(js)); got != string(js) {
		t.Errorf("PUT /config/nsqlookupd_tcp_addresses = %s, want %s", got, js)
	}
	nsqtest.Eventually(t, waitTimeout, "nsqd to register with the new lookupd", func() bool {
		channels, producers, ok := lookup(t, l2, "t")
		return ok && slices.Equal(channels, []string{"c"}) && slices.Equal(producers, []string{n.TCPAddr})
	})
	nsqtest.Eventually(t, waitTimeout, "the old lookupd to forget nsqd", func() bool {
		return producersAre(t, l1, "t") && len(nodes(t, l1)) == 0
	})
	if got := mustRequest(t, "GET", n.HTTPAddr, "/config/nsqlookupd_tcp_addresses", ""); got != string(js) {
		t.Errorf("GET /config/nsqlookupd_tcp_addresses = %s, want %s", got, js)
	}

	// Adding a lookupd keeps the connection to the one still listed.
	client := debugEntries(t, l2, "client::")
	js, _ = json.Marshal([]string{l1.TCPAddr, l2.TCPAddr})
	mustRequest(t, "PUT", n.HTTPAddr, "/config/nsqlookupd_tcp_addresses", string(js))
	waitProducers(t, []*Lookupd{l1, l2}, "t", n)
	if got := debugEntries(t, l2, "client::"); len(got) != 1 || len(client) != 1 || got[0].ID != client[0].ID {
		t.Errorf("lookupd clients after adding another lookupd: %+v, want the same connection as before, %+v", got, client)
	}
}

// TestNewTopicGetsLookupdChannels creates a channel in lookupd, then
// publishes to a topic new to an nsqd registered there: nsqd creates the
// channel (not an ephemeral one), which gets the message and is
// registered.
func TestNewTopicGetsLookupdChannels(t *testing.T) {
	t.Parallel()
	logger := newGoNSQLogger(t)
	l := StartLookupd(t, nil)
	n := startNSQD(t, l)
	// nsqd asks only the lookupds it has identified with: wait for a
	// registration, which nsqd sends after reading the IDENTIFY reply.
	mustRequest(t, "POST", n.HTTPAddr, "/topic/create?topic=ready", "")
	waitProducers(t, []*Lookupd{l}, "ready", n)

	mustRequest(t, "POST", l.HTTPAddr, "/channel/create?topic=fresh&channel=archive", "")
	// Sorted before archive, so it would be created first.
	mustRequest(t, "POST", l.HTTPAddr, "/channel/create?topic=fresh&channel=a%23ephemeral", "")
	mustRequest(t, "POST", n.HTTPAddr, "/pub?topic=fresh", "first message")
	nsqtest.Eventually(t, waitTimeout, "nsqd to create channel archive with the message", func() bool {
		cs, ok := channelStats(t, n, "fresh", "archive")
		return ok && cs.Depth == 1
	})
	if _, ok := channelStats(t, n, "fresh", "a#ephemeral"); ok {
		t.Errorf("nsqd created the ephemeral channel lookupd knows; it must not")
	}
	nsqtest.Eventually(t, waitTimeout, "the created channel to be registered", func() bool {
		return slices.Equal(debugProducers(t, l, "channel:fresh:archive"), []string{n.TCPAddr})
	})

	got := make(chan string, 1)
	startConsumer(t, logger, "fresh", "archive", func(m *nsq.Message) error {
		select {
		case got <- string(m.Body):
		default:
		}
		return nil
	}, l)
	select {
	case body := <-got:
		if body != "first message" {
			t.Errorf("consumer of the pre-created channel got %q, want %q", body, "first message")
		}
	case <-time.After(waitTimeout):
		t.Fatal("consumer of the pre-created channel received nothing")
	}
}

// createChannel creates a topic and its channel on n over HTTP (nsqd's
// /channel/create needs the topic to exist).
func createChannel(t testing.TB, n *nsqtest.NSQD, topic, channel string) {
	t.Helper()
	mustRequest(t, "POST", n.HTTPAddr, "/topic/create?topic="+topic, "")
	mustRequest(t, "POST", n.HTTPAddr, "/channel/create?topic="+topic+"&channel="+channel, "")
}

func port(t testing.TB, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func lookupProducers(t testing.TB, l *Lookupd, topic string) []string {
	t.Helper()
	_, producers, _ := lookup(t, l, topic)
	return producers
}

// v1Peer is a raw nsqlookupd protocol V1 connection, standing in for an
// nsqd.
type v1Peer struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// dialV1 connects to l, sends the magic and IDENTIFY with identity.
func dialV1(t testing.TB, l *Lookupd, identity string) *v1Peer {
	t.Helper()
	conn := nsqtest.Dial(t, l.TCPAddr)
	p := &v1Peer{t: t, conn: conn, r: bufio.NewReader(conn)}
	if _, err := conn.Write(wire.MagicV1); err != nil {
		t.Fatal(err)
	}
	p.send(wire.AppendCommand(nil, "IDENTIFY", []byte(identity)))
	var reply struct {
		TCPPort int `json:"tcp_port"`
	}
	if err := json.Unmarshal(p.read(), &reply); err != nil || strconv.Itoa(reply.TCPPort) != port(t, l.TCPAddr) {
		t.Fatalf("IDENTIFY reply names tcp_port %d (%v), want %s", reply.TCPPort, err, port(t, l.TCPAddr))
	}
	return p
}

func (p *v1Peer) send(b []byte) {
	p.t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatalf("write to lookupd: %v", err)
	}
}

// read reads one V1 response: int32 size, then data.
func (p *v1Peer) read() []byte {
	p.t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(p.r, size[:]); err != nil {
		p.t.Fatalf("read from lookupd: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(p.r, b); err != nil {
		p.t.Fatalf("read from lookupd: %v", err)
	}
	return b
}

// roundTrip sends a command line and checks the response.
func (p *v1Peer) roundTrip(cmd, want string) {
	p.t.Helper()
	p.send([]byte(cmd))
	if got := string(p.read()); got != want {
		p.t.Fatalf("%q: lookupd answered %q, want %q", cmd, got, want)
	}
}
