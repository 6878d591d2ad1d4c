package nsqlookupd

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nsqx/nsqx/internal/metrics"
)

// Prometheus metrics (GET /metrics): the registry's size, read at scrape
// time under its read lock, plus the Go runtime and process metrics.

var (
	descProducers = prometheus.NewDesc("nsqlookupd_producers",
		"nsqd nodes identified and active (pinged within --inactive-producer-timeout), as /nodes lists them.", nil, nil)
	descConnections = prometheus.NewDesc("nsqlookupd_connections",
		"Open TCP connections from nsqd nodes.", nil, nil)
	descTopics = prometheus.NewDesc("nsqlookupd_topics",
		"Topics registered, as /topics lists them.", nil, nil)
	descChannels = prometheus.NewDesc("nsqlookupd_channels",
		"Channels registered, over all topics.", nil, nil)
	descTombstones = prometheus.NewDesc("nsqlookupd_tombstones",
		"Producers of a topic hidden by /topic/tombstone whose tombstone is still in force.", nil, nil)
	descTopicProducers = prometheus.NewDesc("nsqlookupd_topic_producers",
		"Producers /lookup returns for the topic: active and not tombstoned.", []string{"topic"}, nil)
)

// registryCounts is the registry's size at one moment.
type registryCounts struct {
	producers, topics, channels, tombstones int
	topicProducers                          map[string]int
}

func (r *registry) counts() registryCounts {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	c := registryCounts{topics: len(r.topics), topicProducers: make(map[string]int, len(r.topics))}
	for _, pr := range r.clients {
		if r.active(pr.peer, now) {
			c.producers++
		}
	}
	for _, chans := range r.channels {
		c.channels += len(chans)
	}
	for topic, pp := range r.topics {
		n := 0
		for _, pr := range pp {
			switch {
			case r.isTombstoned(pr, now):
				c.tombstones++
			case r.active(pr.peer, now):
				n++
			}
		}
		c.topicProducers[topic] = n
	}
	return c
}

// collector reads a Server at scrape time.
type collector struct{ s *Server }

// Describe sends nothing: the collector is unchecked, as the topic labels
// are only known at scrape time.
func (collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	n := c.s.reg.counts()
	gauge(descProducers, n.producers)
	gauge(descTopics, n.topics)
	gauge(descChannels, n.channels)
	gauge(descTombstones, n.tombstones)
	for topic, v := range n.topicProducers {
		gauge(descTopicProducers, v, topic)
	}
	c.s.mu.Lock()
	conns := len(c.s.conns)
	c.s.mu.Unlock()
	gauge(descConnections, conns)
}

// metricsHandler serves GET /metrics from a registry of its own.
func (s *Server) metricsHandler() http.Handler {
	reg := metrics.NewRegistry()
	reg.MustRegister(collector{s})
	return metrics.Handler(reg, s.log)
}
