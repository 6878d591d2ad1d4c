package nsqd

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nsqx/nsqx/internal/logging"
	"github.com/nsqx/nsqx/internal/version"
)

// What the HTTP API needs from the Server beyond its public methods: the
// NSQ shape of /stats, its text form, and the options behind /config.

// statsText is NSQ's plain-text /stats report.
func (s *Server) statsText(st Stats, now time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n", version.String("nsqd"))
	fmt.Fprintf(&b, "start_time %v\n", s.startTime.Format(time.RFC3339))
	fmt.Fprintf(&b, "uptime %s\n", now.Sub(s.startTime))
	fmt.Fprintf(&b, "\nHealth: %s\n", st.Health)
	if m := st.Memory; m != nil {
		b.WriteString("\nMemory:\n")
		for _, kv := range []struct {
			k string
			v uint64
		}{
			{"heap_objects", m.HeapObjects},
			{"heap_idle_bytes", m.HeapIdleBytes},
			{"heap_in_use_bytes", m.HeapInUseBytes},
			{"heap_released_bytes", m.HeapReleasedBytes},
			{"gc_pause_usec_100", m.GCPauseUsec100},
			{"gc_pause_usec_99", m.GCPauseUsec99},
			{"gc_pause_usec_95", m.GCPauseUsec95},
			{"next_gc_bytes", m.NextGCBytes},
			{"gc_total_runs", uint64(m.GCTotalRuns)},
		} {
			fmt.Fprintf(&b, "   %-25s\t%d\n", kv.k, kv.v)
		}
	}
	if len(st.Topics) == 0 {
		b.WriteString("\nTopics: None\n")
	} else {
		b.WriteString("\nTopics:")
	}
	for _, t := range st.Topics {
		prefix := "   "
		if t.Paused {
			prefix = "*P "
		}
		fmt.Fprintf(&b, "\n%s[%-15s] depth: %-5d be-depth: %-5d msgs: %-8d e2e%%: %s\n",
			prefix, t.TopicName, t.Depth, t.BackendDepth, t.MessageCount, t.E2E.text())
		for _, c := range t.Channels {
			prefix := "      "
			if c.Paused {
				prefix = "   *P "
			}
			fmt.Fprintf(&b, "%s[%-25s] depth: %-5d be-depth: %-5d inflt: %-4d def: %-4d re-q: %-5d timeout: %-5d msgs: %-8d e2e%%: %s\n",
				prefix, c.ChannelName, c.Depth, c.BackendDepth, c.InFlightCount, c.DeferredCount,
				c.RequeueCount, c.TimeoutCount, c.MessageCount, c.E2E.text())
			for _, cl := range c.Clients {
				fmt.Fprintf(&b, "        %s\n", cl.text(now))
			}
		}
	}
	if len(st.Producers) == 0 {
		b.WriteString("\nProducers: None\n")
	} else {
		b.WriteString("\nProducers:\n")
		for _, cl := range st.Producers {
			fmt.Fprintf(&b, "   %s\n", cl.text(now))
		}
	}
	return b.Bytes()
}

// text is the percentiles' values, human-readable, as the text /stats
// shows them.
func (p Percentiles) text() string {
	vals := make([]string, 0, len(p.Percentiles))
	for _, item := range p.Percentiles {
		vals = append(vals, humanNanos(item["value"]))
	}
	return strings.Join(vals, ", ")
}

// humanNanos formats nanoseconds with one decimal in the largest unit
// (s, ms, us, ns) that the value exceeds.
func humanNanos(v float64) string {
	suffix := "ns"
	switch {
	case v > 1e9:
		v, suffix = v/1e9, "s"
	case v > 1e6:
		v, suffix = v/1e6, "ms"
	case v > 1e3:
		v, suffix = v/1e3, "us"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + suffix
}

// text is one client's line in the text /stats: a producer's messages per
// topic, or a consumer's state and counters.
func (c ClientStats) text(now time.Time) string {
	connected := now.Sub(time.Unix(c.ConnectTime, 0)).Truncate(time.Second)
	_, port, _ := net.SplitHostPort(c.RemoteAddress)
	id := c.Hostname + ":" + port + " " + c.UserAgent
	if len(c.PubCounts) > 0 {
		var total uint64
		topics := make([]string, 0, len(c.PubCounts))
		for _, pc := range c.PubCounts {
			total += pc.Count
			topics = append(topics, pc.Topic+"="+strconv.FormatUint(pc.Count, 10))
		}
		return fmt.Sprintf("[%s %-21s] msgs: %-8d topics: %s connected: %s",
			c.Version, id, total, strings.Join(topics, ","), connected)
	}
	return fmt.Sprintf("[%s %-21s] state: %d inflt: %-4d rdy: %-4d fin: %-8d re-q: %-8d msgs: %-8d connected: %s",
		c.Version, id, c.State, c.InFlightCount, c.ReadyCount, c.FinishCount, c.RequeueCount, c.MessageCount, connected)
}

// httpsPort is the port of --https-address, which the 403 TLS_REQUIRED
// answer points clients to.
func (s *Server) httpsPort() int {
	if a, ok := s.HTTPSAddr().(*net.TCPAddr); ok {
		return a.Port // the listener's, also when --https-address has port 0
	}
	_, port, err := net.SplitHostPort(s.cfg.HTTPSAddress)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return -1
	}
	return n
}

// parseLogLevel reads NSQ's level names in any case.
func parseLogLevel(s string) (slog.Level, bool) {
	l, err := logging.ParseLevel(s)
	return l, err == nil
}

// logLevelMu guards Config.LogLevel, the one option PUT /config changes in
// place (nsqlookupd_tcp_addresses lives in the lookupd client).
var logLevelMu sync.Mutex

// setLogLevel applies a log level set through PUT /config/log_level: to
// Config.LogLevelVar, which the logger filters by (cmd/nsqd sets it), and
// to what /config reports.
func (s *Server) setLogLevel(level slog.Level) {
	logLevelMu.Lock()
	s.cfg.LogLevel = level
	logLevelMu.Unlock()
	if lv := s.cfg.LogLevelVar; lv != nil {
		lv.Set(level)
	}
	s.log.Info("log level changed", "level", logging.LevelName(level))
}

func (s *Server) logLevel() slog.Level {
	logLevelMu.Lock()
	defer logLevelMu.Unlock()
	return s.cfg.LogLevel
}

// orEmpty makes a nil list marshal as [] (NSQ's defaults are empty lists).
func orEmpty[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// configValue returns an option by its NSQ config-file name (the flag name
// with '_' for '-', or NSQ's cfg tag), as GET /config/{opt} reports it:
// durations in nanoseconds, lists as JSON arrays.
func (s *Server) configValue(name string) (any, bool) {
	c := s.cfg
	var v any
	switch name {
	case "id":
		v = c.NodeID
	case "log_level":
		v = logging.LevelNumber(s.logLevel())
	case "log_prefix":
		v = c.LogPrefix
	case "log_format":
		v = c.LogFormat
	case "tcp_address":
		v = c.TCPAddress
	case "http_address":
		v = c.HTTPAddress
	case "https_address":
		v = c.HTTPSAddress
	case "broadcast_address":
		v = c.BroadcastAddress
	case "broadcast_tcp_port":
		v = c.BroadcastTCPPort
	case "broadcast_http_port":
		v = c.BroadcastHTTPPort
	case "nsqlookupd_tcp_addresses":
		v = orEmpty(s.LookupdAddrs())
	case "auth_http_addresses":
		v = orEmpty(c.AuthHTTPAddresses)
	case "auth_http_request_method":
		v = c.AuthHTTPRequestMethod
	case "http_client_connect_timeout":
		v = c.HTTPClientConnectTimeout
	case "http_client_request_timeout":
		v = c.HTTPClientRequestTimeout
	case "data_path":
		v = c.DataPath
	case "mem_queue_size":
		v = c.MemQueueSize
	case "max_bytes_per_file":
		v = c.MaxBytesPerFile
	case "sync_every":
		v = c.SyncEvery
	case "sync_timeout":
		v = c.SyncTimeout
	case "queue_scan_selection_count":
		v = c.QueueScanSelectionCount
	case "queue_scan_worker_pool_max":
		v = c.QueueScanWorkerPoolMax
	case "msg_timeout":
		v = c.MsgTimeout
	case "max_msg_timeout":
		v = c.MaxMsgTimeout
	case "max_msg_size":
		v = c.MaxMsgSize
	case "max_body_size":
		v = c.MaxBodySize
	case "max_req_timeout":
		v = c.MaxReqTimeout
	case "max_heartbeat_interval":
		v = c.MaxHeartbeatInterval
	case "max_rdy_count":
		v = c.MaxRdyCount
	case "max_output_buffer_size":
		v = c.MaxOutputBufferSize
	case "max_output_buffer_timeout":
		v = c.MaxOutputBufferTimeout
	case "min_output_buffer_timeout":
		v = c.MinOutputBufferTimeout
	case "output_buffer_timeout":
		v = c.OutputBufferTimeout
	case "max_channel_consumers":
		v = c.MaxChannelConsumers
	case "statsd_address":
		v = c.StatsdAddress
	case "statsd_prefix":
		v = c.StatsdPrefix
	case "statsd_interval":
		v = c.StatsdInterval
	case "statsd_mem_stats":
		v = c.StatsdMemStats
	case "statsd_udp_packet_size":
		v = c.StatsdUDPPacketSize
	case "statsd_exclude_ephemeral":
		v = c.StatsdExcludeEphemeral
	case "e2e_processing_latency_window_time":
		v = c.E2EProcessingLatencyWindowTime
	case "e2e_processing_latency_percentiles":
		v = orEmpty(c.E2EProcessingLatencyPercentiles)
	case "tls_cert":
		v = c.TLSCert
	case "tls_key":
		v = c.TLSKey
	case "tls_client_auth_policy":
		v = c.TLSClientAuthPolicy
	case "tls_root_ca_file":
		v = c.TLSRootCAFile
	case "tls_required":
		v = c.TLSRequired
	case "tls_min_version":
		v = c.TLSMinVersion
	case "deflate":
		v = c.DeflateEnabled
	case "max_deflate_level":
		v = c.MaxDeflateLevel
	case "snappy":
		v = c.SnappyEnabled
	case "enable_experiment":
		v = orEmpty(c.EnableExperiments)
	case "topology_region":
		v = c.TopologyRegion
	case "topology_zone":
		v = c.TopologyZone
	default:
		return nil, false
	}
	return v, true
}
