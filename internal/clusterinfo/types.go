package clusterinfo

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"time"
)

// ProducerTopic is one topic an nsqd registered, and whether it is
// tombstoned on the lookupd that reported it.
type ProducerTopic struct {
	Topic      string `json:"topic"`
	Tombstoned bool   `json:"tombstoned"`
}

// Producer is one nsqd as nsqadmin's /api/nodes shows it.
type Producer struct {
	// RemoteAddresses lists "lookupd/remote" for each lookupd the nsqd is
	// registered with; fewer entries than lookupds means an inconsistent
	// registration.
	RemoteAddresses  []string        `json:"remote_addresses"`
	RemoteAddress    string          `json:"remote_address"`
	Hostname         string          `json:"hostname"`
	BroadcastAddress string          `json:"broadcast_address"`
	TCPPort          int             `json:"tcp_port"`
	HTTPPort         int             `json:"http_port"`
	Version          string          `json:"version"`
	Topics           []ProducerTopic `json:"topics"`
	// OutOfDate is set when another node runs a newer version.
	OutOfDate bool `json:"out_of_date"`
}

// HTTPAddress is the node's identity in nsqadmin: broadcast address and
// HTTP port.
func (p *Producer) HTTPAddress() string {
	return net.JoinHostPort(p.BroadcastAddress, strconv.Itoa(p.HTTPPort))
}

// TCPAddress is the address consumers connect to.
func (p *Producer) TCPAddress() string {
	return net.JoinHostPort(p.BroadcastAddress, strconv.Itoa(p.TCPPort))
}

// Inconsistent reports whether the node is registered with a number of
// lookupds other than n (several nsqd sharing a broadcast address, or one
// not reaching every lookupd).
func (p *Producer) Inconsistent(n int) bool { return len(p.RemoteAddresses) != n }

// Producers is a list of nodes.
type Producers []*Producer

// HTTPAddrs returns every node's HTTPAddress.
func (ps Producers) HTTPAddrs() []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.HTTPAddress()
	}
	return out
}

// Search returns the node whose HTTPAddress is node, or nil.
func (ps Producers) Search(node string) *Producer {
	for _, p := range ps {
		if p.HTTPAddress() == node {
			return p
		}
	}
	return nil
}

// Percentile is one E2E processing latency quantile. A single node's value
// is min, max and average alike; across nodes min and max are the extremes
// and average is weighted by each node's count. Values are nanoseconds.
type Percentile struct {
	Quantile float64 `json:"quantile"`
	Value    float64 `json:"value,omitempty"`
	Min      float64 `json:"min"`
	Max      float64 `json:"max"`
	Average  float64 `json:"average"`
	Count    int64   `json:"count"`
}

// E2E is an E2E processing latency summary of one node ("host" is its
// address) or of all of them ("host" is "*").
type E2E struct {
	Count       int64        `json:"count"`
	Percentiles []Percentile `json:"percentiles"`
	Topic       string       `json:"topic"`
	Channel     string       `json:"channel"`
	Addr        string       `json:"host"`
}

// add merges one node's summary into e.
func (e *E2E) add(o *E2E) {
	if o == nil {
		return
	}
	e.Addr = "*"
	e.Count += o.Count
	for _, op := range o.Percentiles {
		i := slices.IndexFunc(e.Percentiles, func(p Percentile) bool { return p.Quantile == op.Quantile })
		if i < 0 {
			e.Percentiles = append(e.Percentiles, Percentile{Quantile: op.Quantile, Min: op.Min, Max: op.Max})
			i = len(e.Percentiles) - 1
		}
		p := &e.Percentiles[i]
		p.Min = min(p.Min, op.Min)
		p.Max = max(p.Max, op.Max)
		if total := p.Count + op.Count; total > 0 {
			p.Average += (op.Average - p.Average) * float64(op.Count) / float64(total)
			p.Count = total
		}
	}
	slices.SortFunc(e.Percentiles, func(a, b Percentile) int { return cmp.Compare(a.Quantile, b.Quantile) })
}

// TopicStats is one topic on one node (Node is its address) or on all of
// them (Node is "*", NodeStats holds the per-node entries and Channels the
// per-channel aggregates).
type TopicStats struct {
	Node         string          `json:"node"`
	Hostname     string          `json:"hostname"`
	TopicName    string          `json:"topic_name"`
	Depth        int64           `json:"depth"`
	MemoryDepth  int64           `json:"memory_depth"`
	BackendDepth int64           `json:"backend_depth"`
	MessageCount int64           `json:"message_count"`
	NodeStats    []*TopicStats   `json:"nodes"`
	Channels     []*ChannelStats `json:"channels"`
	Paused       bool            `json:"paused"`
	E2E          *E2E            `json:"e2e_processing_latency"`
}

// Add merges one node's stats of the topic into t, which becomes the
// all-nodes aggregate.
func (t *TopicStats) Add(a *TopicStats) {
	t.Node = "*"
	t.Depth += a.Depth
	t.MemoryDepth += a.MemoryDepth
	t.BackendDepth += a.BackendDepth
	t.MessageCount += a.MessageCount
	t.Paused = t.Paused || a.Paused
	for _, ac := range a.Channels {
		i := slices.IndexFunc(t.Channels, func(c *ChannelStats) bool { return c.ChannelName == ac.ChannelName })
		if i < 0 {
			t.Channels = append(t.Channels, &ChannelStats{TopicName: t.TopicName, ChannelName: ac.ChannelName})
			i = len(t.Channels) - 1
		}
		t.Channels[i].Add(ac)
	}
	slices.SortFunc(t.Channels, func(x, y *ChannelStats) int { return cmp.Compare(x.ChannelName, y.ChannelName) })
	t.NodeStats = append(t.NodeStats, a)
	sortByHost(t.NodeStats, func(s *TopicStats) (string, string) { return s.Hostname, s.Node })
	if t.E2E == nil {
		t.E2E = &E2E{Topic: t.TopicName}
	}
	t.E2E.add(a.E2E)
}

// InFlightCount is the sum of the topic's channels' in-flight counts.
func (t *TopicStats) InFlightCount() int64 {
	var n int64
	for _, c := range t.Channels {
		n += c.InFlightCount
	}
	return n
}

// ChannelDepth is the sum of the topic's channels' depths.
func (t *TopicStats) ChannelDepth() int64 {
	var n int64
	for _, c := range t.Channels {
		n += c.Depth
	}
	return n
}

// ClientCount is the number of consumers over all of the topic's channels.
func (t *TopicStats) ClientCount() int {
	var n int
	for _, c := range t.Channels {
		n += c.ClientCount
	}
	return n
}

// ChannelStats is one channel on one node or, with Node "*", on all of
// them.
type ChannelStats struct {
	Node          string          `json:"node"`
	Hostname      string          `json:"hostname"`
	TopicName     string          `json:"topic_name"`
	ChannelName   string          `json:"channel_name"`
	Depth         int64           `json:"depth"`
	MemoryDepth   int64           `json:"memory_depth"`
	BackendDepth  int64           `json:"backend_depth"`
	InFlightCount int64           `json:"in_flight_count"`
	DeferredCount int64           `json:"deferred_count"`
	RequeueCount  int64           `json:"requeue_count"`
	TimeoutCount  int64           `json:"timeout_count"`
	MessageCount  int64           `json:"message_count"`
	ClientCount   int             `json:"client_count"`
	NodeStats     []*ChannelStats `json:"nodes"`
	Clients       []*ClientStats  `json:"clients"`
	Paused        bool            `json:"paused"`
	E2E           *E2E            `json:"e2e_processing_latency"`
}

// Add merges one node's stats of the channel into c, which becomes the
// all-nodes aggregate.
func (c *ChannelStats) Add(a *ChannelStats) {
	c.Node = "*"
	c.Depth += a.Depth
	c.MemoryDepth += a.MemoryDepth
	c.BackendDepth += a.BackendDepth
	c.InFlightCount += a.InFlightCount
	c.DeferredCount += a.DeferredCount
	c.RequeueCount += a.RequeueCount
	c.TimeoutCount += a.TimeoutCount
	c.MessageCount += a.MessageCount
	c.ClientCount += a.ClientCount
	c.Paused = c.Paused || a.Paused
	c.NodeStats = append(c.NodeStats, a)
	sortByHost(c.NodeStats, func(s *ChannelStats) (string, string) { return s.Hostname, s.Node })
	if c.E2E == nil {
		c.E2E = &E2E{Topic: c.TopicName, Channel: c.ChannelName}
	}
	c.E2E.add(a.E2E)
	c.Clients = append(c.Clients, a.Clients...)
	sortByHost(c.Clients, func(s *ClientStats) (string, string) { return s.Hostname, s.Node + " " + s.RemoteAddress })
}

// ClientStats is one consumer connection.
type ClientStats struct {
	Node          string `json:"node"`
	RemoteAddress string `json:"remote_address"`
	Version       string `json:"version"`
	ClientID      string `json:"client_id"`
	Hostname      string `json:"hostname"`
	UserAgent     string `json:"user_agent"`
	ConnectTs     int64  `json:"connect_ts"`
	// Connected is how long the client has been connected, in nanoseconds
	// (a Go time.Duration, as NSQ encodes it).
	Connected                     time.Duration `json:"connected"`
	InFlightCount                 int64         `json:"in_flight_count"`
	ReadyCount                    int64         `json:"ready_count"`
	FinishCount                   int64         `json:"finish_count"`
	RequeueCount                  int64         `json:"requeue_count"`
	MessageCount                  int64         `json:"message_count"`
	SampleRate                    int32         `json:"sample_rate"`
	Deflate                       bool          `json:"deflate"`
	Snappy                        bool          `json:"snappy"`
	Authed                        bool          `json:"authed"`
	AuthIdentity                  string        `json:"auth_identity"`
	AuthIdentityURL               string        `json:"auth_identity_url"`
	TLS                           bool          `json:"tls"`
	CipherSuite                   string        `json:"tls_cipher_suite"`
	TLSVersion                    string        `json:"tls_version"`
	TLSNegotiatedProtocol         string        `json:"tls_negotiated_protocol"`
	TLSNegotiatedProtocolIsMutual bool          `json:"tls_negotiated_protocol_is_mutual"`
}

// sortByHost orders s by hostname, then by a tie-breaking key, so pages
// list nodes in a stable order.
func sortByHost[T any](s []T, key func(T) (host, tie string)) {
	slices.SortStableFunc(s, func(a, b T) int {
		ah, at := key(a)
		bh, bt := key(b)
		return cmp.Or(cmp.Compare(ah, bh), cmp.Compare(at, bt))
	})
}

// AggregateTopics groups per-node topic stats (as NSQDStats returns them)
// into one all-nodes TopicStats per topic, sorted by name.
func AggregateTopics(perNode []*TopicStats) []*TopicStats {
	byName := map[string]*TopicStats{}
	var out []*TopicStats
	for _, t := range perNode {
		agg, ok := byName[t.TopicName]
		if !ok {
			agg = &TopicStats{TopicName: t.TopicName}
			byName[t.TopicName] = agg
			out = append(out, agg)
		}
		agg.Add(t)
	}
	slices.SortFunc(out, func(a, b *TopicStats) int { return cmp.Compare(a.TopicName, b.TopicName) })
	return out
}
