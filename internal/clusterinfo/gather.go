package clusterinfo

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Topics returns the sorted union of the topics the lookupds know or, with
// no lookupds, of those the nsqds have.
func (c *Client) Topics(ctx context.Context, lookupds, nsqds []string) ([]string, error) {
	if len(lookupds) > 0 {
		return c.LookupdTopics(ctx, lookupds)
	}
	return c.NSQDTopics(ctx, nsqds)
}

// Producers returns every nsqd: those registered with the lookupds or,
// with no lookupds, the given nsqds.
func (c *Client) Producers(ctx context.Context, lookupds, nsqds []string) (Producers, error) {
	if len(lookupds) > 0 {
		return c.LookupdProducers(ctx, lookupds)
	}
	return c.NSQDProducers(ctx, nsqds)
}

// TopicProducers returns the nsqds that have topic.
func (c *Client) TopicProducers(ctx context.Context, topic string, lookupds, nsqds []string) (Producers, error) {
	if len(lookupds) > 0 {
		return c.LookupdTopicProducers(ctx, topic, lookupds)
	}
	return c.NSQDTopicProducers(ctx, topic, nsqds)
}

// LookupdTopics returns the sorted union of every lookupd's /topics.
func (c *Client) LookupdTopics(ctx context.Context, lookupds []string) ([]string, error) {
	res, errs := fanOut(lookupds, func(addr string) ([]string, error) {
		var r struct {
			Topics []string `json:"topics"`
		}
		err := c.get(ctx, KindLookupd, addr, "/topics", nil, &r)
		return r.Topics, err
	})
	return union(res), summarize(KindLookupd, len(lookupds), errs)
}

// LookupdTopicChannels returns the sorted union of every lookupd's
// /channels for topic.
func (c *Client) LookupdTopicChannels(ctx context.Context, topic string, lookupds []string) ([]string, error) {
	res, errs := fanOut(lookupds, func(addr string) ([]string, error) {
		var r struct {
			Channels []string `json:"channels"`
		}
		err := c.get(ctx, KindLookupd, addr, "/channels", url.Values{"topic": {topic}}, &r)
		return r.Channels, err
	})
	return union(res), summarize(KindLookupd, len(lookupds), errs)
}

// lookupdNode is a producer as a lookupd's /nodes and /lookup list it.
type lookupdNode struct {
	RemoteAddress    string   `json:"remote_address"`
	Hostname         string   `json:"hostname"`
	BroadcastAddress string   `json:"broadcast_address"`
	TCPPort          int      `json:"tcp_port"`
	HTTPPort         int      `json:"http_port"`
	Version          string   `json:"version"`
	Topics           []string `json:"topics"`
	Tombstones       []bool   `json:"tombstones"`
}

func (n *lookupdNode) producer() *Producer {
	p := &Producer{
		RemoteAddress:    n.RemoteAddress,
		Hostname:         n.Hostname,
		BroadcastAddress: n.BroadcastAddress,
		TCPPort:          n.TCPPort,
		HTTPPort:         n.HTTPPort,
		Version:          n.Version,
	}
	for i, t := range n.Topics {
		p.Topics = append(p.Topics, ProducerTopic{Topic: t, Tombstoned: i < len(n.Tombstones) && n.Tombstones[i]})
	}
	slices.SortFunc(p.Topics, func(a, b ProducerTopic) int { return cmp.Compare(a.Topic, b.Topic) })
	return p
}

// LookupdProducers returns the union of every lookupd's /nodes, one entry
// per nsqd (by TCP address), sorted by hostname. RemoteAddresses records
// each lookupd that knows the node; OutOfDate marks versions older than
// the newest seen.
func (c *Client) LookupdProducers(ctx context.Context, lookupds []string) (Producers, error) {
	res, errs := fanOut(lookupds, func(addr string) ([]lookupdNode, error) {
		var r struct {
			Producers []lookupdNode `json:"producers"`
		}
		err := c.get(ctx, KindLookupd, addr, "/nodes", nil, &r)
		return r.Producers, err
	})
	byAddr := map[string]*Producer{}
	var out Producers
	for i, nodes := range res {
		for _, n := range nodes {
			p := n.producer()
			key := p.TCPAddress()
			have, ok := byAddr[key]
			if !ok {
				byAddr[key] = p
				out = append(out, p)
				have = p
			}
			remote := n.RemoteAddress
			if remote == "" {
				remote = "N/A"
			}
			have.RemoteAddresses = append(have.RemoteAddresses, lookupds[i]+"/"+remote)
		}
	}
	markOutOfDate(out)
	sortByHost(out, func(p *Producer) (string, string) { return p.Hostname, p.HTTPAddress() })
	return out, summarize(KindLookupd, len(lookupds), errs)
}

func markOutOfDate(ps Producers) {
	var newest semver
	for _, p := range ps {
		if v := parseSemver(p.Version); v.compare(newest) > 0 {
			newest = v
		}
	}
	for _, p := range ps {
		p.OutOfDate = parseSemver(p.Version).compare(newest) < 0
	}
}

// LookupdTopicProducers returns the union (by HTTP address) of every
// lookupd's /lookup producers for topic. A lookupd that does not know the
// topic (404) contributes none and is not a failure.
func (c *Client) LookupdTopicProducers(ctx context.Context, topic string, lookupds []string) (Producers, error) {
	res, errs := fanOut(lookupds, func(addr string) ([]lookupdNode, error) {
		var r struct {
			Producers []lookupdNode `json:"producers"`
		}
		u := endpoint(addr, "/lookup", url.Values{"topic": {topic}})
		err := c.timed(KindLookupd, addr, "/lookup", func() error {
			err := c.getJSON(ctx, u, &r)
			if se := (*StatusError)(nil); errors.As(err, &se) && se.Status == http.StatusNotFound {
				return nil
			}
			return err
		})
		return r.Producers, err
	})
	var out Producers
	seen := map[string]bool{}
	for _, nodes := range res {
		for _, n := range nodes {
			p := n.producer()
			if seen[p.HTTPAddress()] {
				continue
			}
			seen[p.HTTPAddress()] = true
			out = append(out, p)
		}
	}
	sortByHost(out, func(p *Producer) (string, string) { return p.Hostname, p.HTTPAddress() })
	return out, summarize(KindLookupd, len(lookupds), errs)
}

// nsqdInfo is an nsqd's /info.
type nsqdInfo struct {
	Version          string `json:"version"`
	BroadcastAddress string `json:"broadcast_address"`
	Hostname         string `json:"hostname"`
	HTTPPort         int    `json:"http_port"`
	TCPPort          int    `json:"tcp_port"`
}

type topicNames struct {
	Topics []struct {
		Name string `json:"topic_name"`
	} `json:"topics"`
}

// nsqdProducer describes the nsqd at addr from its /info, falling back to
// addr itself for what an old nsqd leaves out.
func nsqdProducer(addr string, info nsqdInfo, topics topicNames) *Producer {
	host, port, _ := net.SplitHostPort(hostPort(addr))
	if info.BroadcastAddress == "" {
		info.BroadcastAddress = host
		info.HTTPPort, _ = strconv.Atoi(port)
	}
	if info.Hostname == "" {
		info.Hostname = host
	}
	p := &Producer{
		Version:          info.Version,
		BroadcastAddress: info.BroadcastAddress,
		Hostname:         info.Hostname,
		HTTPPort:         info.HTTPPort,
		TCPPort:          info.TCPPort,
		Topics:           []ProducerTopic{},
	}
	for _, t := range topics.Topics {
		p.Topics = append(p.Topics, ProducerTopic{Topic: t.Name})
	}
	return p
}

// hostPort strips a URL scheme from an address.
func hostPort(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		return u.Host
	}
	return addr
}

// NSQDTopics returns the sorted union of the nsqds' topics.
func (c *Client) NSQDTopics(ctx context.Context, nsqds []string) ([]string, error) {
	res, errs := fanOut(nsqds, func(addr string) ([]string, error) {
		var r topicNames
		err := c.get(ctx, KindNSQD, addr, "/stats", url.Values{"format": {"json"}, "include_clients": {"false"}, "include_mem": {"false"}}, &r)
		names := make([]string, len(r.Topics))
		for i, t := range r.Topics {
			names[i] = t.Name
		}
		return names, err
	})
	return union(res), summarize(KindNSQD, len(nsqds), errs)
}

// NSQDProducers describes each of the nsqds from its /info and /stats.
func (c *Client) NSQDProducers(ctx context.Context, nsqds []string) (Producers, error) {
	res, errs := fanOut(nsqds, func(addr string) (*Producer, error) {
		var info nsqdInfo
		if err := c.get(ctx, KindNSQD, addr, "/info", nil, &info); err != nil {
			return nil, err
		}
		var topics topicNames
		if err := c.get(ctx, KindNSQD, addr, "/stats", url.Values{"format": {"json"}, "include_clients": {"false"}, "include_mem": {"false"}}, &topics); err != nil {
			return nil, err
		}
		return nsqdProducer(addr, info, topics), nil
	})
	out := Producers(compactNil(res))
	markOutOfDate(out)
	sortByHost(out, func(p *Producer) (string, string) { return p.Hostname, p.HTTPAddress() })
	return out, summarize(KindNSQD, len(nsqds), errs)
}

// NSQDTopicProducers returns those of the nsqds that have topic.
func (c *Client) NSQDTopicProducers(ctx context.Context, topic string, nsqds []string) (Producers, error) {
	res, errs := fanOut(nsqds, func(addr string) (*Producer, error) {
		var topics topicNames
		q := url.Values{"format": {"json"}, "topic": {topic}, "include_clients": {"false"}, "include_mem": {"false"}}
		if err := c.get(ctx, KindNSQD, addr, "/stats", q, &topics); err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(topics.Topics, func(t struct {
			Name string `json:"topic_name"`
		}) bool {
			return t.Name == topic
		}) {
			return nil, nil
		}
		var info nsqdInfo
		if err := c.get(ctx, KindNSQD, addr, "/info", nil, &info); err != nil {
			return nil, err
		}
		return nsqdProducer(addr, info, topics), nil
	})
	out := Producers(compactNil(res))
	sortByHost(out, func(p *Producer) (string, string) { return p.Hostname, p.HTTPAddress() })
	return out, summarize(KindNSQD, len(nsqds), errs)
}

// nsqd's /stats?format=json, the parts nsqadmin reads.
type nsqdStats struct {
	Topics []nsqdTopic `json:"topics"`
}

type nsqdTopic struct {
	TopicName    string        `json:"topic_name"`
	Channels     []nsqdChannel `json:"channels"`
	Depth        int64         `json:"depth"`
	BackendDepth int64         `json:"backend_depth"`
	MessageCount int64         `json:"message_count"`
	Paused       bool          `json:"paused"`
	E2E          nsqdE2E       `json:"e2e_processing_latency"`
}

type nsqdChannel struct {
	ChannelName   string         `json:"channel_name"`
	Depth         int64          `json:"depth"`
	BackendDepth  int64          `json:"backend_depth"`
	InFlightCount int64          `json:"in_flight_count"`
	DeferredCount int64          `json:"deferred_count"`
	MessageCount  int64          `json:"message_count"`
	RequeueCount  int64          `json:"requeue_count"`
	TimeoutCount  int64          `json:"timeout_count"`
	ClientCount   int            `json:"client_count"`
	Clients       []*ClientStats `json:"clients"`
	Paused        bool           `json:"paused"`
	E2E           nsqdE2E        `json:"e2e_processing_latency"`
}

type nsqdE2E struct {
	Count       int64 `json:"count"`
	Percentiles []struct {
		Quantile float64 `json:"quantile"`
		Value    float64 `json:"value"`
	} `json:"percentiles"`
}

func (e nsqdE2E) summary(node, topic, channel string) *E2E {
	s := &E2E{Count: e.Count, Topic: topic, Channel: channel, Addr: node}
	for _, p := range e.Percentiles {
		s.Percentiles = append(s.Percentiles, Percentile{
			Quantile: p.Quantile, Value: p.Value, Min: p.Value, Max: p.Value, Average: p.Value, Count: e.Count,
		})
	}
	return s
}

// NSQDStats asks every producer for /stats (of topic, and of its channel,
// when given) and returns one TopicStats per topic per node, sorted by
// hostname, and the channels aggregated over the nodes. The map's keys are
// channel names when topic is given and "topic:channel" otherwise.
// Clients are listed only if includeClients.
func (c *Client) NSQDStats(ctx context.Context, producers Producers, topic, channel string, includeClients bool) ([]*TopicStats, map[string]*ChannelStats, error) {
	q := url.Values{"format": {"json"}, "include_mem": {"false"}}
	if topic != "" {
		q.Set("topic", topic)
		if channel != "" {
			q.Set("channel", channel)
		}
	}
	if !includeClients {
		q.Set("include_clients", "false")
	}
	addrs := producers.HTTPAddrs()
	res, errs := fanOut(addrs, func(addr string) (nsqdStats, error) {
		var r nsqdStats
		err := c.get(ctx, KindNSQD, addr, "/stats", q, &r)
		return r, err
	})

	now := time.Now().Truncate(time.Second)
	var topics []*TopicStats
	channels := map[string]*ChannelStats{}
	for i, r := range res {
		node, host := addrs[i], producers[i].Hostname
		for _, nt := range r.Topics {
			if topic != "" && nt.TopicName != topic {
				continue
			}
			ts := &TopicStats{
				Node:         node,
				Hostname:     host,
				TopicName:    nt.TopicName,
				Depth:        nt.Depth,
				MemoryDepth:  nt.Depth - nt.BackendDepth,
				BackendDepth: nt.BackendDepth,
				MessageCount: nt.MessageCount,
				Channels:     []*ChannelStats{},
				Paused:       nt.Paused,
				E2E:          nt.E2E.summary(node, nt.TopicName, ""),
			}
			for _, nc := range nt.Channels {
				cs := &ChannelStats{
					Node:          node,
					Hostname:      host,
					TopicName:     nt.TopicName,
					ChannelName:   nc.ChannelName,
					Depth:         nc.Depth,
					MemoryDepth:   nc.Depth - nc.BackendDepth,
					BackendDepth:  nc.BackendDepth,
					InFlightCount: nc.InFlightCount,
					DeferredCount: nc.DeferredCount,
					RequeueCount:  nc.RequeueCount,
					TimeoutCount:  nc.TimeoutCount,
					MessageCount:  nc.MessageCount,
					ClientCount:   nc.ClientCount,
					Clients:       nc.Clients,
					Paused:        nc.Paused,
					E2E:           nc.E2E.summary(node, nt.TopicName, nc.ChannelName),
				}
				if cs.Clients == nil {
					cs.Clients = []*ClientStats{}
				}
				for _, cl := range cs.Clients {
					cl.Node = node
					cl.Connected = now.Sub(time.Unix(cl.ConnectTs, 0))
				}
				ts.Channels = append(ts.Channels, cs)

				key := nc.ChannelName
				if topic == "" {
					key = nt.TopicName + ":" + nc.ChannelName
				}
				agg, ok := channels[key]
				if !ok {
					agg = &ChannelStats{TopicName: nt.TopicName, ChannelName: nc.ChannelName, Clients: []*ClientStats{}}
					channels[key] = agg
				}
				agg.Add(cs)
			}
			topics = append(topics, ts)
		}
	}
	slices.SortStableFunc(topics, func(a, b *TopicStats) int {
		return cmp.Or(cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.Node, b.Node), cmp.Compare(a.TopicName, b.TopicName))
	})
	return topics, channels, summarize(KindNSQD, len(addrs), errs)
}

// union returns the sorted, de-duplicated concatenation of lists; never
// nil, so it encodes as [].
func union(lists [][]string) []string {
	out := []string{}
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func compactNil[T any](s []*T) []*T {
	out := make([]*T, 0, len(s))
	for _, v := range s {
		if v != nil {
			out = append(out, v)
		}
	}
	return out
}
