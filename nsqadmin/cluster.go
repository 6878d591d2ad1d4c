package nsqadmin

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/nsqx/nsqx/internal/clusterinfo"
)

// errNodeNotFound is returned for a node no lookupd or nsqd knows.
var errNodeNotFound = errors.New("NODE_NOT_FOUND")

// warnings collects the partial failures of one request's queries; the
// response reports them in its "message".
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

// check folds err into w when it is partial, logging it, and returns it
// when every node failed.
func (s *Server) check(w *warnings, what string, err error) error {
	if err == nil {
		return nil
	}
	var pe *clusterinfo.PartialError
	if errors.As(err, &pe) {
		s.log.Warn(what+": some nodes failed", "err", err)
		w.mu.Lock()
		w.msgs = append(w.msgs, pe.Error())
		w.mu.Unlock()
		return nil
	}
	s.log.Error(what+" failed", "err", err)
	return err
}

func (w *warnings) empty() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.msgs) == 0
}

// message is NSQ's "message" field: the warnings, or "".
func (w *warnings) message() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.msgs) == 0 {
		return ""
	}
	return "WARNING: " + strings.Join(w.msgs, "; ")
}

// topicList is /api/topics: the topics of the lookupds, or of the nsqds.
func (s *Server) topicList(ctx context.Context, w *warnings) ([]string, error) {
	lookupds, nsqds := s.addrs()
	topics, err := s.ci.Topics(ctx, lookupds, nsqds)
	return topics, s.check(w, "get topics", err)
}

// inactiveTopics is /api/topics?inactive=true: the lookupd topics that no
// nsqd produces, with their lookupd channels. Empty without lookupds.
func (s *Server) inactiveTopics(ctx context.Context, w *warnings) (map[string][]string, error) {
	out := map[string][]string{}
	lookupds, _ := s.addrs()
	if len(lookupds) == 0 {
		return out, nil
	}
	topics, err := s.ci.LookupdTopics(ctx, lookupds)
	if err := s.check(w, "get topics", err); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range topics {
		wg.Go(func() {
			// As in NSQ, failures here only hide a topic from the list.
			producers, _ := s.ci.LookupdTopicProducers(ctx, t, lookupds)
			if len(producers) > 0 {
				return
			}
			channels, _ := s.ci.LookupdTopicChannels(ctx, t, lookupds)
			mu.Lock()
			out[t] = channels
			mu.Unlock()
		})
	}
	wg.Wait()
	return out, nil
}

// topic is /api/topics/:topic: the topic over every nsqd that has it.
func (s *Server) topic(ctx context.Context, w *warnings, name string) (*clusterinfo.TopicStats, error) {
	lookupds, nsqds := s.addrs()
	producers, err := s.ci.TopicProducers(ctx, name, lookupds, nsqds)
	if err := s.check(w, "get topic producers", err); err != nil {
		return nil, err
	}
	perNode, _, err := s.ci.NSQDStats(ctx, producers, name, "", false)
	if err := s.check(w, "get topic stats", err); err != nil {
		return nil, err
	}
	agg := &clusterinfo.TopicStats{TopicName: name, Node: "*", NodeStats: []*clusterinfo.TopicStats{}, Channels: []*clusterinfo.ChannelStats{}}
	for _, t := range perNode {
		agg.Add(t)
	}
	return agg, nil
}

// channel is /api/topics/:topic/:channel: the channel over every nsqd that
// has its topic, with its clients.
func (s *Server) channel(ctx context.Context, w *warnings, topic, name string) (*clusterinfo.ChannelStats, error) {
	lookupds, nsqds := s.addrs()
	producers, err := s.ci.TopicProducers(ctx, topic, lookupds, nsqds)
	if err := s.check(w, "get topic producers", err); err != nil {
		return nil, err
	}
	_, channels, err := s.ci.NSQDStats(ctx, producers, topic, name, true)
	if err := s.check(w, "get channel stats", err); err != nil {
		return nil, err
	}
	if c := channels[name]; c != nil {
		return c, nil
	}
	// NSQ answers an unknown channel with only "message"; nsqx gives the
	// empty channel, which a client reads the same way.
	return &clusterinfo.ChannelStats{
		Node: "*", TopicName: topic, ChannelName: name,
		NodeStats: []*clusterinfo.ChannelStats{}, Clients: []*clusterinfo.ClientStats{},
	}, nil
}

// nodes is /api/nodes.
func (s *Server) nodes(ctx context.Context, w *warnings) (clusterinfo.Producers, error) {
	lookupds, nsqds := s.addrs()
	producers, err := s.ci.Producers(ctx, lookupds, nsqds)
	if err := s.check(w, "get nodes", err); err != nil {
		return nil, err
	}
	if len(lookupds) > 0 {
		s.metrics.listed(producers)
	}
	if producers == nil {
		producers = clusterinfo.Producers{}
	}
	return producers, nil
}

// nodeView is /api/nodes/:node.
type nodeView struct {
	Node          string                    `json:"node"`
	TopicStats    []*clusterinfo.TopicStats `json:"topics"`
	TotalMessages int64                     `json:"total_messages"`
	TotalClients  int64                     `json:"total_clients"`
	Message       string                    `json:"message"`

	producer *clusterinfo.Producer
}

func (s *Server) node(ctx context.Context, w *warnings, node string) (*nodeView, error) {
	producers, err := s.nodes(ctx, w)
	if err != nil {
		return nil, err
	}
	p := producers.Search(node)
	if p == nil {
		return nil, errNodeNotFound
	}
	topics, _, err := s.ci.NSQDStats(ctx, clusterinfo.Producers{p}, "", "", true)
	if err != nil {
		s.log.Error("get node stats failed", "node", node, "err", err)
		return nil, err
	}
	v := &nodeView{Node: node, TopicStats: topics, producer: p}
	if v.TopicStats == nil {
		v.TopicStats = []*clusterinfo.TopicStats{}
	}
	for _, t := range topics {
		for _, c := range t.Channels {
			v.TotalClients += int64(len(c.Clients))
		}
		v.TotalMessages += t.MessageCount
	}
	return v, nil
}

// counterStats is one channel on one node in /api/counter.
type counterStats struct {
	Node         string `json:"node"`
	TopicName    string `json:"topic_name"`
	ChannelName  string `json:"channel_name"`
	MessageCount int64  `json:"message_count"`
}

// counter is /api/counter: messages processed per channel per node.
func (s *Server) counter(ctx context.Context, w *warnings) (map[string]*counterStats, error) {
	producers, err := s.nodes(ctx, w)
	if err != nil {
		return nil, err
	}
	_, channels, err := s.ci.NSQDStats(ctx, producers, "", "", false)
	if err := s.check(w, "get nsqd stats", err); err != nil {
		return nil, err
	}
	out := map[string]*counterStats{}
	for _, c := range channels {
		for _, n := range c.NodeStats {
			key := c.TopicName + ":" + c.ChannelName + ":" + n.Node
			cs := out[key]
			if cs == nil {
				cs = &counterStats{Node: n.Node, TopicName: c.TopicName, ChannelName: c.ChannelName}
				out[key] = cs
			}
			cs.MessageCount += n.MessageCount
		}
	}
	return out, nil
}

// overview is the nsqx endpoint /api/overview: every topic aggregated over
// the nodes with rates, and cluster totals, for the topics page and the
// cluster chart in one round of queries.
type overview struct {
	Topics  []*topicSummary `json:"topics"`
	Totals  totals          `json:"totals"`
	Message string          `json:"message"`
}

type topicSummary struct {
	TopicName     string   `json:"topic_name"`
	Depth         int64    `json:"depth"`
	MemoryDepth   int64    `json:"memory_depth"`
	BackendDepth  int64    `json:"backend_depth"`
	MessageCount  int64    `json:"message_count"`
	MessageRate   *float64 `json:"message_rate"` // per second; null until known
	ChannelDepth  int64    `json:"channel_depth"`
	InFlightCount int64    `json:"in_flight_count"`
	DeferredCount int64    `json:"deferred_count"`
	RequeueCount  int64    `json:"requeue_count"`
	TimeoutCount  int64    `json:"timeout_count"`
	ChannelCount  int      `json:"channel_count"`
	ClientCount   int      `json:"client_count"`
	NodeCount     int      `json:"node_count"`
	Paused        bool     `json:"paused"`
	// Inactive is a topic the lookupds know that no nsqd produces.
	Inactive bool `json:"inactive"`
}

type totals struct {
	Topics        int      `json:"topics"`
	Channels      int      `json:"channels"`
	Nodes         int      `json:"nodes"`
	Clients       int      `json:"clients"`
	MessageCount  int64    `json:"message_count"`
	MessageRate   *float64 `json:"message_rate"`
	Depth         int64    `json:"depth"`
	ChannelDepth  int64    `json:"channel_depth"`
	InFlightCount int64    `json:"in_flight_count"`
	DeferredCount int64    `json:"deferred_count"`
}

func (s *Server) overview(ctx context.Context, w *warnings) (*overview, error) {
	lookupds, nsqds := s.addrs()
	var (
		names    []string
		namesErr error
		wg       sync.WaitGroup
	)
	wg.Go(func() { names, namesErr = s.ci.Topics(ctx, lookupds, nsqds) })
	producers, err := s.nodes(ctx, w)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if err := s.check(w, "get topics", namesErr); err != nil {
		return nil, err
	}
	perNode, _, err := s.ci.NSQDStats(ctx, producers, "", "", false)
	if err := s.check(w, "get nsqd stats", err); err != nil {
		return nil, err
	}
	o := &overview{Topics: []*topicSummary{}}
	o.Totals.Nodes = len(producers)
	seen := map[string]bool{}
	for _, t := range clusterinfo.AggregateTopics(perNode) {
		seen[t.TopicName] = true
		ts := &topicSummary{
			TopicName:    t.TopicName,
			Depth:        t.Depth,
			MemoryDepth:  t.MemoryDepth,
			BackendDepth: t.BackendDepth,
			MessageCount: t.MessageCount,
			ChannelCount: len(t.Channels),
			NodeCount:    len(t.NodeStats),
			Paused:       t.Paused,
		}
		for _, c := range t.Channels {
			ts.ChannelDepth += c.Depth
			ts.InFlightCount += c.InFlightCount
			ts.DeferredCount += c.DeferredCount
			ts.RequeueCount += c.RequeueCount
			ts.TimeoutCount += c.TimeoutCount
			ts.ClientCount += c.ClientCount
		}
		ts.MessageRate = s.rate("t:"+t.TopicName, t.MessageCount)
		o.Topics = append(o.Topics, ts)
		o.Totals.Channels += ts.ChannelCount
		o.Totals.Clients += ts.ClientCount
		o.Totals.MessageCount += ts.MessageCount
		o.Totals.Depth += ts.Depth
		o.Totals.ChannelDepth += ts.ChannelDepth
		o.Totals.InFlightCount += ts.InFlightCount
		o.Totals.DeferredCount += ts.DeferredCount
	}
	for _, n := range names {
		if !seen[n] {
			o.Topics = append(o.Topics, &topicSummary{TopicName: n, Inactive: true})
		}
	}
	slices.SortFunc(o.Topics, func(a, b *topicSummary) int { return cmp.Compare(a.TopicName, b.TopicName) })
	o.Totals.Topics = len(o.Topics)
	// A partial answer undercounts; do not let it look like a rate drop.
	if w.empty() {
		o.Totals.MessageRate = s.rate("total", o.Totals.MessageCount)
	}
	o.Message = w.message()
	return o, nil
}

// rate observes a counter and returns its rate, or nil while unknown.
func (s *Server) rate(key string, count int64) *float64 {
	r, ok := s.rates.observe(key, count)
	if !ok {
		return nil
	}
	return &r
}
