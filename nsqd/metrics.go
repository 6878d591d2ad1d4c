package nsqd

import (
	"io/fs"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nsqx/nsqx/diskqueue"
	"github.com/nsqx/nsqx/internal/metrics"
)

// Prometheus metrics (GET /metrics). A custom collector reads the same
// snapshot /stats reports, at scrape time: nothing on the publish or
// delivery path updates a metric. Counters that already exist (per topic,
// channel and connection) are read. The only metric observed as it happens
// is the fsync latency histogram, one observation per fsync.
//
// The per-nsqd totals (published, delivered, …) are sums over the live
// topics and connections plus what deleted topics and closed connections
// had counted by the time they went (topicClosed, connClosed), so they
// never go down while nsqd runs.

// Label names.
var (
	lTopic   = []string{"topic"}
	lChannel = []string{"topic", "channel"}
)

func desc(name, help string, labels []string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descTopicDepth        = desc("nsqd_topic_depth", "Messages held by the topic that no channel has taken yet (/stats depth).", lTopic)
	descTopicBackendDepth = desc("nsqd_topic_backend_depth", "Part of nsqd_topic_depth that is on disk only (/stats backend_depth).", lTopic)
	descTopicMessages     = desc("nsqd_topic_messages_total", "Messages published to the topic since it was created or nsqd started.", lTopic)
	descTopicBytes        = desc("nsqd_topic_message_bytes_total", "Bytes of message bodies published to the topic.", lTopic)
	descTopicPaused       = desc("nsqd_topic_paused", "1 while the topic is paused, else 0.", lTopic)
	descTopicChannels     = desc("nsqd_topic_channels", "Channels of the topic.", lTopic)
	descTopicE2E          = desc("nsqd_topic_e2e_processing_latency_seconds", "Time from publish to FIN over the latency window, at each configured quantile, across the topic's channels.", []string{"topic", "quantile"})
	descTopicE2ECount     = desc("nsqd_topic_e2e_processing_latency_samples", "FINs the topic's latency quantiles are computed from (those within the window).", lTopic)

	descChanDepth        = desc("nsqd_channel_depth", "Messages queued in the channel for delivery, requeued ones included, deferred and in-flight ones not.", lChannel)
	descChanBackendDepth = desc("nsqd_channel_backend_depth", "Part of nsqd_channel_depth that is on disk only.", lChannel)
	descChanInFlight     = desc("nsqd_channel_in_flight", "Messages delivered to consumers and not yet finished, requeued or timed out.", lChannel)
	descChanDeferred     = desc("nsqd_channel_deferred", "Messages waiting for a DPUB or REQ delay to pass.", lChannel)
	descChanMessages     = desc("nsqd_channel_messages_total", "Messages that reached the channel.", lChannel)
	descChanRequeued     = desc("nsqd_channel_requeued_total", "Messages consumers requeued (REQ).", lChannel)
	descChanTimedOut     = desc("nsqd_channel_timed_out_total", "In-flight messages requeued because their timeout passed.", lChannel)
	descChanConsumers    = desc("nsqd_channel_consumers", "Connections subscribed to the channel.", lChannel)
	descChanPaused       = desc("nsqd_channel_paused", "1 while the channel is paused, else 0.", lChannel)
	descChanE2E          = desc("nsqd_channel_e2e_processing_latency_seconds", "Time from publish to FIN over the latency window, at each configured quantile.", []string{"topic", "channel", "quantile"})
	descChanE2ECount     = desc("nsqd_channel_e2e_processing_latency_samples", "FINs the channel's latency quantiles are computed from (those within the window).", lChannel)

	descConnections    = desc("nsqd_connections", "Open client connections (TCP and unix socket).", nil)
	descAccepted       = desc("nsqd_connections_accepted_total", "Client connections accepted.", nil)
	descPublished      = desc("nsqd_published_messages_total", "Messages published over TCP and HTTP, to every topic.", nil)
	descPublishedBytes = desc("nsqd_published_bytes_total", "Bytes of message bodies published, to every topic.", nil)
	descDelivered      = desc("nsqd_delivered_messages_total", "Messages sent to consumers, redeliveries included.", nil)
	descFinished       = desc("nsqd_finished_messages_total", "Messages consumers finished (FIN).", nil)
	descRequeued       = desc("nsqd_requeued_messages_total", "Messages consumers requeued (REQ).", nil)
	descLogDisk        = desc("nsqd_log_disk_bytes", "Bytes of message logs on disk: segments, channel progress and journals under <data-path>/nsqx.", nil)
	descLogMemory      = desc("nsqd_log_memory_bytes", "Bytes of message log segments resident in memory.", nil)
	descCorrupt        = desc("nsqd_corrupt_records_total", "Damaged records found on disk and skipped.", nil)
	descHealthy        = desc("nsqd_healthy", "1 while /ping answers OK, 0 after a storage failure.", nil)
)

// totals are the per-nsqd counters kept across deleted topics and closed
// connections.
type totals struct {
	published, publishedBytes, corrupt uint64 // from topics
	delivered, finished, requeued      uint64 // from connections
}

func (a *totals) add(b totals) {
	a.published += b.published
	a.publishedBytes += b.publishedBytes
	a.corrupt += b.corrupt
	a.delivered += b.delivered
	a.finished += b.finished
	a.requeued += b.requeued
}

// raise sets each field of a to the larger of a's and b's.
func (a *totals) raise(b totals) {
	a.published = max(a.published, b.published)
	a.publishedBytes = max(a.publishedBytes, b.publishedBytes)
	a.corrupt = max(a.corrupt, b.corrupt)
	a.delivered = max(a.delivered, b.delivered)
	a.finished = max(a.finished, b.finished)
	a.requeued = max(a.requeued, b.requeued)
}

func topicTotals(t *Topic) totals {
	return totals{
		published:      t.log.tail.Load() - t.created,
		publishedBytes: t.msgBytes.Load(),
		corrupt:        t.log.corrupt.Load(),
	}
}

func connTotals(c *conn) totals {
	return totals{delivered: c.msgCount.Load(), finished: c.finCount.Load(), requeued: c.reqCount.Load()}
}

// collector is one Server's Prometheus registry and collector.
type collector struct {
	s       *Server
	reg     *prometheus.Registry
	handler http.Handler
	fsync   prometheus.Histogram

	// mu serialises Collect with topicClosed and connClosed, so a topic
	// or connection is summed either live or as retired, never both.
	mu      sync.Mutex
	retired totals // of deleted topics and closed connections
	last    totals // last reported: a total never goes down
}

func newCollector(s *Server) *collector {
	m := &collector{
		s:   s,
		reg: metrics.NewRegistry(),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "nsqd_fsync_duration_seconds",
			Help: "Time taken by each fsync of a file or directory under the data path.",
			// 50µs to ~1.6s.
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}),
	}
	m.reg.MustRegister(m, m.fsync)
	m.handler = metrics.Handler(m.reg, s.log)
	return m
}

// topicClosed records a deleted topic's counts. Called once the topic is
// out of Server.topics and closed.
func (m *collector) topicClosed(t *Topic) {
	m.mu.Lock()
	m.retired.add(topicTotals(t))
	m.mu.Unlock()
}

// connClosed records a closed connection's counts. Called once the
// connection is out of Server.conns.
func (m *collector) connClosed(c *conn) {
	m.mu.Lock()
	m.retired.add(connTotals(c))
	m.mu.Unlock()
}

// Describe sends nothing: the collector is unchecked, as its label values
// (topics, channels, quantiles) are only known at scrape time.
func (m *collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads a snapshot of the server.
func (m *collector) Collect(ch chan<- prometheus.Metric) {
	s := m.s
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	latency := func(d, count *prometheus.Desc, p Percentiles, labels ...string) {
		if p.Percentiles == nil {
			return // no --e2e-processing-latency-percentile
		}
		for _, q := range p.Percentiles {
			ls := append(labels[:len(labels):len(labels)], strconv.FormatFloat(q["quantile"], 'f', -1, 64))
			gauge(d, q["value"]/1e9, ls...)
		}
		gauge(count, float64(p.Count), labels...)
	}

	st := s.Stats(StatsFilter{})
	for _, t := range st.Topics {
		gauge(descTopicDepth, float64(t.Depth), t.TopicName)
		gauge(descTopicBackendDepth, float64(t.BackendDepth), t.TopicName)
		counter(descTopicMessages, float64(t.MessageCount), t.TopicName)
		counter(descTopicBytes, float64(t.MessageBytes), t.TopicName)
		gauge(descTopicPaused, boolFloat(t.Paused), t.TopicName)
		gauge(descTopicChannels, float64(len(t.Channels)), t.TopicName)
		latency(descTopicE2E, descTopicE2ECount, t.E2E, t.TopicName)
		for _, c := range t.Channels {
			l := []string{t.TopicName, c.ChannelName}
			gauge(descChanDepth, float64(c.Depth), l...)
			gauge(descChanBackendDepth, float64(c.BackendDepth), l...)
			gauge(descChanInFlight, float64(c.InFlightCount), l...)
			gauge(descChanDeferred, float64(c.DeferredCount), l...)
			counter(descChanMessages, float64(c.MessageCount), l...)
			counter(descChanRequeued, float64(c.RequeueCount), l...)
			counter(descChanTimedOut, float64(c.TimeoutCount), l...)
			gauge(descChanConsumers, float64(c.ClientCount), l...)
			gauge(descChanPaused, boolFloat(c.Paused), l...)
			latency(descChanE2E, descChanE2ECount, c.E2E, l...)
		}
	}

	var resident int64
	m.mu.Lock()
	topics := s.topicList()
	conns := s.connList()
	sum := m.retired
	for _, t := range topics {
		sum.add(topicTotals(t))
		resident += t.log.bytes.Load()
	}
	for _, c := range conns {
		sum.add(connTotals(c))
	}
	m.last.raise(sum)
	sum = m.last
	m.mu.Unlock()

	gauge(descConnections, float64(len(conns)))
	counter(descAccepted, float64(s.nextConnID.Load()))
	counter(descPublished, float64(sum.published))
	counter(descPublishedBytes, float64(sum.publishedBytes))
	counter(descDelivered, float64(sum.delivered))
	counter(descFinished, float64(sum.finished))
	counter(descRequeued, float64(sum.requeued))
	counter(descCorrupt, float64(sum.corrupt))
	gauge(descLogMemory, float64(resident))
	gauge(descLogDisk, float64(dirBytes(s.storeRoot())))
	gauge(descHealthy, boolFloat(s.Health() == "OK"))
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// dirBytes is the total size of the regular files under dir (0 if it does
// not exist). It reads the directory tree at scrape time: a few entries
// per topic.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // a file removed meanwhile, or a directory
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// timeFsyncs wraps fsys so that every file and directory fsync is timed
// into the nsqd_fsync_duration_seconds histogram.
func (m *collector) timeFsyncs(fsys diskqueue.FS) diskqueue.FS {
	return timedFS{FS: fsys, h: m.fsync}
}

type timedFS struct {
	diskqueue.FS
	h prometheus.Histogram
}

func (f timedFS) Create(name string) (diskqueue.File, error) {
	file, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &timedFile{File: file, h: f.h}, nil
}

func (f timedFS) Open(name string) (diskqueue.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return &timedFile{File: file, h: f.h}, nil
}

func (f timedFS) SyncDir(dir string) error {
	start := time.Now()
	err := f.FS.SyncDir(dir)
	f.h.Observe(time.Since(start).Seconds())
	return err
}

type timedFile struct {
	diskqueue.File
	h prometheus.Histogram
}

func (f *timedFile) Sync() error {
	start := time.Now()
	err := f.File.Sync()
	f.h.Observe(time.Since(start).Seconds())
	return err
}
