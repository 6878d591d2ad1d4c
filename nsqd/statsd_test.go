package nsqd_test

// statsd push: a UDP listener in the test receives what nsqd sends and
// checks NSQ's names, types and values against the traffic, and how the
// lines are packed into packets and spread over the interval.

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// packet is one UDP datagram received.
type packet struct {
	data string
	at   time.Time
}

// statsdServer is a UDP listener that keeps every datagram.
type statsdServer struct {
	addr string
	mu   sync.Mutex
	pkts []packet
}

func startStatsd(t *testing.T) *statsdServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &statsdServer{addr: pc.LocalAddr().String()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed by the cleanup
			}
			s.mu.Lock()
			s.pkts = append(s.pkts, packet{string(buf[:n]), time.Now()})
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return s
}

func (s *statsdServer) packets() []packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]packet(nil), s.pkts...)
}

// statsdFigures is what the received lines add up to: each counter's sum
// over every push, each gauge's latest value, each name's type.
type statsdFigures struct {
	counters map[string]int64
	gauges   map[string]int64
	kinds    map[string]string
}

// parse reads every line of every packet; each must be
// "<prefix><name>:<int>|c" or "|g". Names are returned without prefix.
func parseStatsd(t *testing.T, pkts []packet, prefix string) statsdFigures {
	t.Helper()
	f := statsdFigures{counters: map[string]int64{}, gauges: map[string]int64{}, kinds: map[string]string{}}
	for _, p := range pkts {
		if !strings.HasSuffix(p.data, "\n") {
			t.Fatalf("packet %q does not end with a whole line", p.data)
		}
		for line := range strings.Lines(p.data) {
			line = strings.TrimSuffix(line, "\n")
			name, rest, ok := strings.Cut(line, ":")
			val, kind, ok2 := strings.Cut(rest, "|")
			v, err := strconv.ParseInt(val, 10, 64)
			if !ok || !ok2 || err != nil || (kind != "c" && kind != "g") || !strings.HasPrefix(name, prefix) {
				t.Fatalf("line %q is not %q<name>:<int>|c or |g", line, prefix)
			}
			name = strings.TrimPrefix(name, prefix)
			if k, seen := f.kinds[name]; seen && k != kind {
				t.Fatalf("%s sent as |%s and |%s", name, k, kind)
			}
			f.kinds[name] = kind
			if kind == "c" {
				f.counters[name] += v
			} else {
				f.gauges[name] = v
			}
		}
	}
	return f
}

// hostPrefix is NSQ's default prefix for nsqd n: nsq.<host>_<httpport>.
func hostPrefix(t *testing.T, n *nsqtest.NSQD) string {
	host, port, err := net.SplitHostPort(n.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	return "nsq." + strings.ReplaceAll(host, ".", "_") + "_" + port + "."
}

func TestStatsdUnderTraffic(t *testing.T) {
	const size = 120
	sd := startStatsd(t)
	traffic := trafficConfig(t)
	n := nsqtest.StartNSQD(t, func(c *nsqd.Config) {
		traffic(c)
		c.StatsdAddress = sd.addr
		c.StatsdInterval = 100 * time.Millisecond // under a second: no spreading
		c.StatsdUDPPacketSize = size
	})
	prefix := hostPrefix(t, n)
	tr := runTraffic(t, n)

	// Wait for a push made after the traffic settled: the counters' sums
	// reach the totals and the gauges show the settled figures.
	var f statsdFigures
	nsqtest.Eventually(t, 10*time.Second, "statsd totals", func() bool {
		f = parseStatsd(t, sd.packets(), prefix)
		return f.counters["topic.orders.message_count"] == int64(tr.ordersMsgs) &&
			f.counters["topic.orders.channel.slow.timeout_count"] == int64(tr.timedOut) &&
			f.counters["topic.audit.channel.ch.message_count"] == int64(tr.auditMsgs) &&
			f.gauges["topic.orders.channel.idle.depth"] == int64(tr.workFins) &&
			f.gauges["topic.orders.channel.work.in_flight_count"] == 0
	})

	counters := map[string]int64{
		"topic.orders.message_count":                 int64(tr.ordersMsgs),
		"topic.orders.message_bytes":                 int64(tr.ordersBytes),
		"topic.audit.message_count":                  int64(tr.auditMsgs),
		"topic.audit.message_bytes":                  int64(tr.auditBytes),
		"topic.orders.channel.work.message_count":    int64(tr.ordersMsgs),
		"topic.orders.channel.work.requeue_count":    int64(tr.requeued),
		"topic.orders.channel.work.timeout_count":    0,
		"topic.orders.channel.slow.timeout_count":    int64(tr.timedOut),
		"topic.orders.channel.slow.requeue_count":    0,
		"topic.orders.channel.idle.message_count":    int64(tr.ordersMsgs),
		"topic.audit.channel.ch.message_count":       int64(tr.auditMsgs),
		"topic.audit.channel.ch.requeue_count":       0,
		"topic.audit.channel.ch.timeout_count":       0,
		"topic.orders.channel.slow.message_count":    int64(tr.ordersMsgs),
		"topic.orders.channel.idle.requeue_count":    0,
		"topic.orders.channel.idle.timeout_count":    0,
		"topic.orders.channel.work.message_count_xx": -1, // must not exist
	}
	for name, want := range counters {
		got, ok := f.counters[name]
		if want < 0 {
			if ok || f.kinds[name] != "" {
				t.Errorf("unexpected statsd key %s", name)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("counter %s summed over pushes = %d (sent: %v), want %d", name, got, ok, want)
		}
	}
	gauges := map[string]int64{
		"topic.orders.depth":                                   0,
		"topic.orders.backend_depth":                           0,
		"topic.orders.channel.idle.depth":                      int64(tr.workFins),
		"topic.orders.channel.idle.backend_depth":              0,
		"topic.orders.channel.idle.deferred_count":             int64(tr.deferred),
		"topic.orders.channel.idle.in_flight_count":            0,
		"topic.orders.channel.idle.clients":                    0,
		"topic.orders.channel.work.depth":                      0,
		"topic.orders.channel.work.deferred_count":             int64(tr.deferred),
		"topic.orders.channel.work.clients":                    1,
		"topic.orders.channel.slow.clients":                    1,
		"topic.audit.channel.ch.clients":                       1,
		"topic.audit.depth":                                    0,
		"topic.audit.channel.ch.in_flight_count":               0,
		"topic.audit.channel.ch.deferred_count":                0,
		"topic.audit.channel.ch.backend_depth":                 0,
		"topic.orders.channel.slow.in_flight_count":            0,
		"topic.orders.channel.slow.backend_depth":              0,
		"topic.orders.channel.work.backend_depth":              0,
		"topic.orders.channel.slow.depth":                      0,
		"topic.orders.channel.slow.deferred_count":             int64(tr.deferred),
		"topic.orders.channel.work.in_flight_count":            0,
		"topic.audit.backend_depth":                            0,
		"topic.audit.channel.ch.depth":                         0,
		"topic.orders.channel.idle.e2e_processing_latency_100": 0, // no FINs on idle
	}
	for name, want := range gauges {
		if got, ok := f.gauges[name]; !ok || got != want {
			t.Errorf("gauge %s = %d (sent: %v), want %d", name, got, ok, want)
		}
	}
	// E2E: <P> is quantile×100 without decimals; values in ns.
	for _, key := range []string{"topic.orders.", "topic.orders.channel.work."} {
		for _, p := range []string{"100", "99", "50"} {
			if v, ok := f.gauges[key+"e2e_processing_latency_"+p]; !ok || v <= 0 || v > int64(time.Minute) {
				t.Errorf("gauge %se2e_processing_latency_%s = %d (sent: %v), want a latency in ns", key, p, v, ok)
			}
		}
	}
	for _, name := range []string{"mem.heap_objects", "mem.heap_idle_bytes", "mem.heap_in_use_bytes", "mem.heap_released_bytes",
		"mem.gc_pause_usec_100", "mem.gc_pause_usec_99", "mem.gc_pause_usec_95", "mem.next_gc_bytes"} {
		if f.kinds[name] != "g" {
			t.Errorf("%s sent as %q, want a gauge", name, f.kinds[name])
		}
	}
	if f.kinds["mem.gc_runs"] != "c" {
		t.Errorf("mem.gc_runs sent as %q, want a counter", f.kinds["mem.gc_runs"])
	}
	if f.gauges["mem.heap_objects"] <= 0 || f.gauges["mem.next_gc_bytes"] <= 0 {
		t.Errorf("mem.heap_objects, mem.next_gc_bytes = %d, %d", f.gauges["mem.heap_objects"], f.gauges["mem.next_gc_bytes"])
	}
	// Every name is one NSQ sends.
	for name := range f.kinds {
		if !strings.HasPrefix(name, "mem.") && !strings.HasPrefix(name, "topic.") {
			t.Errorf("unexpected statsd key %s", name)
		}
	}

	// Packing: whole lines, at most size bytes a packet, and greedy within
	// a push (the next packet's first line would not have fitted). A push
	// starts with a topic's message_count, or with mem.heap_objects when
	// there are no topics; pairs where the next packet starts so are not
	// checked.
	pkts := sd.packets()
	pushStart := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `(topic\.[^.]+\.message_count|mem\.heap_objects):`)
	for i, p := range pkts {
		if len(p.data) > size {
			t.Errorf("packet %d is %d bytes, over --statsd-udp-packet-size %d: %q", i, len(p.data), size, p.data)
		}
		if i+1 < len(pkts) && !pushStart.MatchString(pkts[i+1].data) {
			next, _, _ := strings.Cut(pkts[i+1].data, "\n")
			if len(p.data)+len(next)+1 <= size {
				t.Errorf("packet %d (%d bytes) had room for the next line %q", i, len(p.data), next)
			}
		}
	}
}

// TestStatsdOptions checks --statsd-prefix without %s or a trailing dot,
// --statsd-mem-stats=false, --statsd-exclude-ephemeral, and that with an
// interval over a second a push's packets are spread over the interval
// less one second.
func TestStatsdOptions(t *testing.T) {
	const interval = 1500 * time.Millisecond
	sd := startStatsd(t)
	n := nsqtest.StartNSQD(t, func(c *nsqd.Config) {
		c.StatsdAddress = sd.addr
		c.StatsdInterval = interval
		c.StatsdPrefix = "app.nsqd"
		c.StatsdMemStats = false
		c.StatsdExcludeEphemeral = true
		c.StatsdUDPPacketSize = 64
	})
	base := "http://" + n.HTTPAddr
	httpOK(t, "POST", base+"/topic/create?topic=kept", nil)
	httpOK(t, "POST", base+"/channel/create?topic=kept&channel=c1", nil)
	httpOK(t, "POST", base+"/channel/create?topic=kept&channel=c2%23ephemeral", nil)
	httpOK(t, "POST", base+"/topic/create?topic=gone%23ephemeral", nil)
	httpOK(t, "POST", base+"/pub?topic=kept", "x")
	httpOK(t, "POST", base+"/pub?topic=gone%23ephemeral", "y")

	// Two pushes, so the second is complete.
	var f statsdFigures
	nsqtest.Eventually(t, 10*time.Second, "two statsd pushes", func() bool {
		pkts := sd.packets()
		f = parseStatsd(t, pkts, "app.nsqd.")
		starts := 0
		for _, p := range pkts {
			if strings.HasPrefix(p.data, "app.nsqd.topic.kept.message_count:") {
				starts++
			}
		}
		return starts >= 2
	})
	if f.counters["topic.kept.message_count"] != 1 || f.gauges["topic.kept.channel.c1.depth"] != 1 {
		t.Errorf("kept message_count, c1 depth = %d, %d; want 1, 1", f.counters["topic.kept.message_count"], f.gauges["topic.kept.channel.c1.depth"])
	}
	for name := range f.kinds {
		if strings.Contains(name, "ephemeral") || strings.HasPrefix(name, "mem.") {
			t.Errorf("statsd key %s sent, want ephemeral and mem.* left out", name)
		}
	}

	// The first push's packets span about the interval less a second:
	// with k packets, k-1 gaps of (interval-1s)/k each.
	pkts := sd.packets()
	var push []packet
	for _, p := range pkts {
		if strings.HasPrefix(p.data, "app.nsqd.topic.kept.message_count:") {
			if len(push) > 0 {
				break
			}
		}
		if len(push) > 0 || strings.HasPrefix(p.data, "app.nsqd.topic.kept.message_count:") {
			push = append(push, p)
		}
	}
	k := len(push)
	if k < 3 {
		t.Fatalf("a push was %d packets, want several at 64 bytes", k)
	}
	gap := (interval - time.Second) / time.Duration(k)
	if span := push[k-1].at.Sub(push[0].at); span < time.Duration(k-1)*gap*8/10 {
		t.Errorf("a push's %d packets arrived within %v, want them spread over about %v", k, span, time.Duration(k-1)*gap)
	}
}
