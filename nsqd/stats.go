package nsqd

import (
	"crypto/tls"
	"math"
	"runtime"
	"slices"
	"sort"
	"time"

	"github.com/nsqx/nsqx/internal/version"
)

// Stats is /stats?format=json, field for field and null for null as NSQ 1.3
// writes it.
type Stats struct {
	Version   string        `json:"version"`
	Health    string        `json:"health"`
	StartTime int64         `json:"start_time"`
	Topics    []TopicStats  `json:"topics"`
	Memory    *MemStats     `json:"memory,omitempty"`
	Producers []ClientStats `json:"producers"`
}

// TopicStats is one topic in /stats.
type TopicStats struct {
	TopicName    string         `json:"topic_name"`
	Channels     []ChannelStats `json:"channels"`
	Depth        int64          `json:"depth"`
	BackendDepth int64          `json:"backend_depth"`
	MessageCount uint64         `json:"message_count"`
	MessageBytes uint64         `json:"message_bytes"`
	Paused       bool           `json:"paused"`
	E2E          Percentiles    `json:"e2e_processing_latency"`
}

// ChannelStats is one channel in /stats.
type ChannelStats struct {
	ChannelName   string        `json:"channel_name"`
	Depth         int64         `json:"depth"`
	BackendDepth  int64         `json:"backend_depth"`
	InFlightCount int           `json:"in_flight_count"`
	DeferredCount int           `json:"deferred_count"`
	MessageCount  uint64        `json:"message_count"`
	RequeueCount  uint64        `json:"requeue_count"`
	TimeoutCount  uint64        `json:"timeout_count"`
	ClientCount   int           `json:"client_count"`
	Clients       []ClientStats `json:"clients"`
	Paused        bool          `json:"paused"`
	E2E           Percentiles   `json:"e2e_processing_latency"`
}

// Percentiles is an E2E processing latency summary.
type Percentiles struct {
	Count       uint64               `json:"count"`
	Percentiles []map[string]float64 `json:"percentiles"`
}

// PubCount is one topic a client published to.
type PubCount struct {
	Topic string `json:"topic"`
	Count uint64 `json:"count"`
}

// ClientStats is one connection in /stats.
type ClientStats struct {
	ClientID        string     `json:"client_id"`
	Hostname        string     `json:"hostname"`
	Version         string     `json:"version"`
	RemoteAddress   string     `json:"remote_address"`
	State           int32      `json:"state"`
	ReadyCount      int64      `json:"ready_count"`
	InFlightCount   int64      `json:"in_flight_count"`
	MessageCount    uint64     `json:"message_count"`
	FinishCount     uint64     `json:"finish_count"`
	RequeueCount    uint64     `json:"requeue_count"`
	ConnectTime     int64      `json:"connect_ts"`
	SampleRate      int32      `json:"sample_rate"`
	Deflate         bool       `json:"deflate"`
	Snappy          bool       `json:"snappy"`
	UserAgent       string     `json:"user_agent"`
	Authed          bool       `json:"authed,omitempty"`
	AuthIdentity    string     `json:"auth_identity,omitempty"`
	AuthIdentityURL string     `json:"auth_identity_url,omitempty"`
	TopologyZone    string     `json:"topology_zone"`
	TopologyRegion  string     `json:"topology_region"`
	PubCounts       []PubCount `json:"pub_counts,omitempty"`
	TLS             bool       `json:"tls"`
	CipherSuite     string     `json:"tls_cipher_suite"`
	TLSVersion      string     `json:"tls_version"`
	TLSNegProto     string     `json:"tls_negotiated_protocol"`
	TLSNegProtoMut  bool       `json:"tls_negotiated_protocol_is_mutual"`
}

// MemStats is the memory block of /stats.
type MemStats struct {
	HeapObjects       uint64 `json:"heap_objects"`
	HeapIdleBytes     uint64 `json:"heap_idle_bytes"`
	HeapInUseBytes    uint64 `json:"heap_in_use_bytes"`
	HeapReleasedBytes uint64 `json:"heap_released_bytes"`
	GCPauseUsec100    uint64 `json:"gc_pause_usec_100"`
	GCPauseUsec99     uint64 `json:"gc_pause_usec_99"`
	GCPauseUsec95     uint64 `json:"gc_pause_usec_95"`
	NextGCBytes       uint64 `json:"next_gc_bytes"`
	GCTotalRuns       uint32 `json:"gc_total_runs"`
}

// StatsFilter selects what Stats reports, as /stats's parameters do.
type StatsFilter struct {
	Topic          string // "" means all; otherwise also filters pub_counts
	Channel        string // "" means all; applies to every reported topic
	IncludeClients bool
	IncludeMem     bool
}

func percentiles(s *latencySnapshot) Percentiles {
	if s == nil {
		return Percentiles{}
	}
	p := Percentiles{Count: s.n}
	for _, q := range s.quantiles {
		p.Percentiles = append(p.Percentiles, map[string]float64{"quantile": q, "value": s.value(q)})
	}
	return p
}

// Stats returns a snapshot for /stats.
func (s *Server) Stats(f StatsFilter) Stats {
	now := time.Now().UnixNano()
	st := Stats{
		Version:   version.Compat,
		Health:    s.Health(),
		StartTime: s.startTime.Unix(),
	}
	var topics []*Topic
	if f.Topic != "" {
		if t := s.existingTopic(f.Topic); t != nil {
			topics = []*Topic{t}
		}
	} else {
		topics = s.topicList()
		st.Topics = []TopicStats{}
	}
	for _, t := range topics {
		ts := TopicStats{
			TopicName:    t.name,
			Channels:     []ChannelStats{},
			MessageCount: t.log.tail.Load() - t.created,
			MessageBytes: t.msgBytes.Load(),
			Paused:       t.Paused(),
		}
		ts.Depth, ts.BackendDepth = t.depthOnDisk()
		var merged *latencySnapshot
		for _, c := range t.channelList() {
			cs := c.stats(now)
			if cs.E2E != nil {
				if merged == nil {
					merged = &latencySnapshot{quantiles: cs.E2E.quantiles}
				}
				merged.merge(cs.E2E)
			}
			if f.Channel != "" && c.name != f.Channel {
				continue
			}
			out := ChannelStats{
				ChannelName:   cs.Name,
				Depth:         cs.Depth,
				InFlightCount: cs.InFlight,
				DeferredCount: cs.Deferred,
				MessageCount:  cs.MessageCount,
				RequeueCount:  cs.RequeueCount,
				TimeoutCount:  cs.TimeoutCount,
				ClientCount:   cs.ClientCount,
				Paused:        cs.Paused,
				E2E:           percentiles(cs.E2E),
			}
			out.BackendDepth = c.backendDepth(cs.Depth)
			if f.IncludeClients {
				out.Clients = make([]ClientStats, 0, len(cs.consumerConns))
				for _, cn := range cs.consumerConns {
					out.Clients = append(out.Clients, cn.stats())
				}
			}
			ts.Channels = append(ts.Channels, out)
		}
		// As in NSQ, a topic without channels has no latency stream:
		// {"count":0,"percentiles":null} even with percentiles configured.
		ts.E2E = percentiles(merged)
		st.Topics = append(st.Topics, ts)
	}
	if f.Channel != "" {
		// NSQ drops the topics without the filtered channel.
		st.Topics = slices.DeleteFunc(st.Topics, func(t TopicStats) bool { return len(t.Channels) == 0 })
	}
	// Producers: null when clients are not asked for, when no client has
	// published, or when the topic filter matches nothing (as NSQ).
	if f.IncludeClients && (f.Topic == "" || st.Topics != nil) {
		for _, cn := range s.connList() {
			if cn.isProducer() {
				cs := cn.stats()
				if f.Topic != "" {
					// NSQ reports only the filtered topic's count.
					cs.PubCounts = slices.DeleteFunc(cs.PubCounts, func(pc PubCount) bool { return pc.Topic != f.Topic })
				}
				st.Producers = append(st.Producers, cs)
			}
		}
	}
	if f.IncludeMem {
		st.Memory = memStats()
	}
	return st
}

// memStats is the memory block of /stats. The GC pause percentiles are
// NSQ's: the recorded pauses (at most the last 256) sorted, the value at
// index round(p×n), in microseconds.
func memStats() *MemStats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := int(min(ms.NumGC, uint32(len(ms.PauseNs))))
	pauses := slices.Clone(ms.PauseNs[:n])
	slices.Sort(pauses)
	pct := func(p float64) uint64 {
		if n == 0 {
			return 0
		}
		i := min(int(math.Floor(p*float64(n)+0.5)), n-1)
		return pauses[i] / 1000
	}
	return &MemStats{
		HeapObjects:       ms.HeapObjects,
		HeapIdleBytes:     ms.HeapIdle,
		HeapInUseBytes:    ms.HeapInuse,
		HeapReleasedBytes: ms.HeapReleased,
		GCPauseUsec100:    pct(1.0),
		GCPauseUsec99:     pct(0.99),
		GCPauseUsec95:     pct(0.95),
		NextGCBytes:       ms.NextGC,
		GCTotalRuns:       ms.NumGC,
	}
}

func (c *conn) isProducer() bool {
	c.imu.Lock()
	defer c.imu.Unlock()
	return len(c.pubCounts) > 0
}

func (c *conn) stats() ClientStats {
	c.imu.Lock()
	cs := ClientStats{
		ClientID:       c.clientID,
		Hostname:       c.hostname,
		Version:        "V2",
		RemoteAddress:  c.remote,
		UserAgent:      c.userAgent,
		TopologyZone:   "",
		TopologyRegion: "",
	}
	for t, n := range c.pubCounts {
		cs.PubCounts = append(cs.PubCounts, PubCount{Topic: t, Count: n})
	}
	cs.Snappy, cs.Deflate = c.snappyOn, c.deflOn
	if st := c.tlsState; st != nil {
		cs.TLS = true
		cs.CipherSuite = tls.CipherSuiteName(st.CipherSuite)
		cs.TLSVersion = tlsVersionName(st.Version)
		cs.TLSNegProto = st.NegotiatedProtocol
		cs.TLSNegProtoMut = true
	}
	if a := c.authed; a != nil {
		cs.Authed = len(a.rules) > 0
		cs.AuthIdentity, cs.AuthIdentityURL = a.identity, a.identityURL
	}
	c.imu.Unlock()
	sort.Slice(cs.PubCounts, func(i, j int) bool { return cs.PubCounts[i].Topic < cs.PubCounts[j].Topic })
	cs.State = c.state.Load()
	cs.ReadyCount = c.rdy.Load()
	cs.InFlightCount = c.inflightN.Load()
	cs.MessageCount = c.msgCount.Load()
	cs.FinishCount = c.finCount.Load()
	cs.RequeueCount = c.reqCount.Load()
	cs.ConnectTime = c.connectTS
	cs.SampleRate = c.sampleRate.Load()
	return cs
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS1.0"
	case tls.VersionTLS11:
		return "TLS1.1"
	case tls.VersionTLS12:
		return "TLS1.2"
	case tls.VersionTLS13:
		return "TLS1.3"
	}
	return ""
}
