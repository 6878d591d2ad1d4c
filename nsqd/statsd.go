package nsqd

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nsqx/nsqx/wire"
)

// statsd push (--statsd-address), NSQ's metrics under NSQ's names: every
// --statsd-interval nsqd takes a /stats snapshot and sends one line per
// figure, "<prefix><name>:<value>|c" for a counter (the increase since the
// previous push) or "|g" for a gauge, each ending in '\n'. Lines are
// packed whole into UDP packets of at most --statsd-udp-packet-size bytes
// (a single longer line goes alone), and the packets are spread over the
// interval less a second, so a large nsqd does not burst. Names:
//
//	topic.<t>.message_count, .message_bytes               counters
//	topic.<t>.depth, .backend_depth                       gauges
//	topic.<t>.e2e_processing_latency_<P>                  gauge, ns
//	topic.<t>.channel.<c>.message_count, .requeue_count,
//	  .timeout_count                                      counters
//	topic.<t>.channel.<c>.depth, .backend_depth,
//	  .in_flight_count, .deferred_count, .clients         gauges
//	topic.<t>.channel.<c>.e2e_processing_latency_<P>      gauge, ns
//	mem.heap_objects, .heap_idle_bytes, .heap_in_use_bytes,
//	  .heap_released_bytes, .gc_pause_usec_100, _99, _95,
//	  .next_gc_bytes                                      gauges
//	mem.gc_runs                                           counter
//
// <P> is the quantile × 100 with no decimals (so 0.999 reads 100, as in
// NSQ). The mem.* lines are sent with --statsd-mem-stats, ephemeral topics
// and channels are left out with --statsd-exclude-ephemeral.

// runStatsd pushes stats until ctx ends. It returns at once when no
// --statsd-address is set. Run's errgroup owns it.
func (s *Server) runStatsd(ctx context.Context) error {
	if s.cfg.StatsdAddress == "" {
		return nil
	}
	p := &statsdPusher{
		addr:      s.cfg.StatsdAddress,
		prefix:    statsdPrefix(s.cfg.StatsdPrefix, s.cfg.BroadcastAddress, s.broadcastHTTPPort()),
		interval:  s.cfg.StatsdInterval,
		size:      s.cfg.StatsdUDPPacketSize,
		mem:       s.cfg.StatsdMemStats,
		ephemeral: !s.cfg.StatsdExcludeEphemeral,
	}
	s.log.Info("pushing stats to statsd", "addr", p.addr, "prefix", p.prefix, "interval", p.interval)
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		s.log.Debug("statsd push", "addr", p.addr)
		if err := p.push(ctx, s.Stats(StatsFilter{})); err != nil {
			s.log.Error("statsd push failed", "addr", p.addr, "err", err)
		}
	}
}

// statsdPrefix is NSQ's: %s becomes the host key (broadcast address and
// HTTP port, '.' and ':' made '_'), and a '.' is added if missing.
func statsdPrefix(prefix, broadcastAddr string, httpPort int) string {
	if prefix == "" {
		return ""
	}
	key := net.JoinHostPort(broadcastAddr, strconv.Itoa(httpPort))
	key = strings.NewReplacer(".", "_", ":", "_").Replace(key)
	prefix = strings.ReplaceAll(prefix, "%s", key)
	if !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	return prefix
}

// statsdPusher holds one push loop's settings and what it sent last, for
// the counters' increases.
type statsdPusher struct {
	addr      string
	prefix    string
	interval  time.Duration
	size      int
	mem       bool
	ephemeral bool // include ephemeral topics and channels

	last    Stats
	lastGCs uint32
}

// push sends one snapshot. A send error other than the first is dropped,
// as UDP would drop it anyway.
func (p *statsdPusher) push(ctx context.Context, st Stats) error {
	var ms *MemStats
	if p.mem {
		ms = memStats()
	}
	lines := p.lines(st, ms)
	conn, err := net.DialTimeout("udp", p.addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	return spread(ctx, conn, packets(lines, p.size), p.interval-time.Second)
}

// lines is the snapshot as statsd lines, in NSQ's order, and records it
// as the base of the next push's counters.
func (p *statsdPusher) lines(st Stats, ms *MemStats) [][]byte {
	b := statsdLines{prefix: p.prefix}
	for _, t := range st.Topics {
		if !p.ephemeral && wire.IsEphemeral(t.TopicName) {
			continue
		}
		lt := findTopic(p.last.Topics, t.TopicName)
		tk := "topic." + t.TopicName + "."
		b.counter(tk+"message_count", t.MessageCount-lt.MessageCount)
		b.counter(tk+"message_bytes", t.MessageBytes-lt.MessageBytes)
		b.gauge(tk+"depth", t.Depth)
		b.gauge(tk+"backend_depth", t.BackendDepth)
		b.latency(tk, t.E2E)
		for _, c := range t.Channels {
			if !p.ephemeral && wire.IsEphemeral(c.ChannelName) {
				continue
			}
			lc := findChannel(lt.Channels, c.ChannelName)
			ck := tk + "channel." + c.ChannelName + "."
			b.counter(ck+"message_count", c.MessageCount-lc.MessageCount)
			b.gauge(ck+"depth", c.Depth)
			b.gauge(ck+"backend_depth", c.BackendDepth)
			b.gauge(ck+"in_flight_count", int64(c.InFlightCount))
			b.gauge(ck+"deferred_count", int64(c.DeferredCount))
			b.counter(ck+"requeue_count", c.RequeueCount-lc.RequeueCount)
			b.counter(ck+"timeout_count", c.TimeoutCount-lc.TimeoutCount)
			b.gauge(ck+"clients", int64(c.ClientCount))
			b.latency(ck, c.E2E)
		}
	}
	p.last = st
	if ms != nil {
		b.gauge("mem.heap_objects", int64(ms.HeapObjects))
		b.gauge("mem.heap_idle_bytes", int64(ms.HeapIdleBytes))
		b.gauge("mem.heap_in_use_bytes", int64(ms.HeapInUseBytes))
		b.gauge("mem.heap_released_bytes", int64(ms.HeapReleasedBytes))
		b.gauge("mem.gc_pause_usec_100", int64(ms.GCPauseUsec100))
		b.gauge("mem.gc_pause_usec_99", int64(ms.GCPauseUsec99))
		b.gauge("mem.gc_pause_usec_95", int64(ms.GCPauseUsec95))
		b.gauge("mem.next_gc_bytes", int64(ms.NextGCBytes))
		b.counter("mem.gc_runs", uint64(ms.GCTotalRuns-p.lastGCs))
		p.lastGCs = ms.GCTotalRuns
	}
	return b.out
}

func findTopic(ts []TopicStats, name string) TopicStats {
	for _, t := range ts {
		if t.TopicName == name {
			return t
		}
	}
	return TopicStats{}
}

func findChannel(cs []ChannelStats, name string) ChannelStats {
	for _, c := range cs {
		if c.ChannelName == name {
			return c
		}
	}
	return ChannelStats{}
}

// statsdLines builds the lines of one push.
type statsdLines struct {
	prefix string
	out    [][]byte
}

func (b *statsdLines) line(name string, v int64, kind string) {
	l := make([]byte, 0, len(b.prefix)+len(name)+24)
	l = append(l, b.prefix...)
	l = append(l, name...)
	l = append(l, ':')
	l = strconv.AppendInt(l, v, 10)
	l = append(l, '|')
	l = append(l, kind...)
	l = append(l, '\n')
	b.out = append(b.out, l)
}

// counter sends an increase. Like NSQ's it is the unsigned difference
// read as signed, so a count that went down (a topic deleted and made
// again) sends a negative increase.
func (b *statsdLines) counter(name string, delta uint64) { b.line(name, int64(delta), "c") }

func (b *statsdLines) gauge(name string, v int64) { b.line(name, v, "g") }

func (b *statsdLines) latency(key string, p Percentiles) {
	for _, q := range p.Percentiles {
		b.gauge(key+"e2e_processing_latency_"+strconv.FormatFloat(q["quantile"]*100, 'f', 0, 64), int64(q["value"]))
	}
}

// packets packs whole lines, in order, into packets of at most size
// bytes. A line longer than size is a packet of its own.
func packets(lines [][]byte, size int) [][]byte {
	var out [][]byte
	var cur []byte
	for _, l := range lines {
		if len(cur)+len(l) > size && len(cur) > 0 {
			out = append(out, cur)
			cur = nil
		}
		if len(l) > size {
			out = append(out, l)
			continue
		}
		cur = append(cur, l...)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// spread writes the packets to conn over about d, evenly; when ctx ends
// it sends the rest at once. It returns the first write error.
func spread(ctx context.Context, conn net.Conn, pkts [][]byte, d time.Duration) error {
	var first error
	var gap time.Duration
	if len(pkts) > 0 && d > 0 {
		gap = d / time.Duration(len(pkts))
	}
	var tick *time.Ticker
	if gap > 0 {
		tick = time.NewTicker(gap)
		defer tick.Stop()
	}
	for i, pkt := range pkts {
		if _, err := conn.Write(pkt); err != nil && first == nil {
			first = err
		}
		if tick == nil || i == len(pkts)-1 || ctx.Err() != nil {
			continue
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	return first
}
