package nsqd

import (
	"crypto/md5"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nsqx/nsqx/diskqueue"
	"github.com/nsqx/nsqx/internal/logging"
)

// Config holds every nsqd option. Field comments give the NSQ flag name.
// DefaultConfig returns NSQ 1.3's defaults; Validate checks ranges.
type Config struct {
	NodeID    int64      // --node-id (cfg "id")
	LogLevel  slog.Level // --log-level
	LogPrefix string     // --log-prefix
	LogFormat string     // --log-format: text or json (nsqx)

	TCPAddress        string   // --tcp-address: host:port or a unix socket path
	HTTPAddress       string   // --http-address: host:port, unix path, or "" to disable
	HTTPSAddress      string   // --https-address
	BroadcastAddress  string   // --broadcast-address
	BroadcastTCPPort  int      // --broadcast-tcp-port (0: the listener's port)
	BroadcastHTTPPort int      // --broadcast-http-port (0: the listener's port)
	LookupdTCPAddrs   []string // --lookupd-tcp-address (cfg nsqlookupd_tcp_addresses)

	HTTPClientConnectTimeout time.Duration // --http-client-connect-timeout
	HTTPClientRequestTimeout time.Duration // --http-client-request-timeout

	AuthHTTPAddresses     []string // --auth-http-address (cfg auth_http_addresses)
	AuthHTTPRequestMethod string   // --auth-http-request-method: get or post
	// AuthHTTPProtectStats makes GET /stats and /metrics need a secret too
	// when auth is on (--auth-http-protect-stats, nsqx only).
	AuthHTTPProtectStats bool
	// AuthAdminIdentities, when set with auth on, are the auth-server
	// identities that may change the server over HTTP: PUT /config and
	// /debug (--auth-admin-identity, nsqx only). Unset, any accepted
	// secret may, as NSQ's permissions know no administrator.
	AuthAdminIdentities []string

	DataPath        string        // --data-path
	MemQueueSize    int64         // --mem-queue-size
	MaxBytesPerFile int64         // --max-bytes-per-file
	SyncEvery       int64         // --sync-every
	SyncTimeout     time.Duration // --sync-timeout

	QueueScanWorkerPoolMax   int // --queue-scan-worker-pool-max (accepted; one scanner serves all)
	QueueScanSelectionCount  int // --queue-scan-selection-count (accepted; see above)
	QueueScanInterval        time.Duration
	QueueScanRefreshInterval time.Duration

	MsgTimeout    time.Duration // --msg-timeout
	MaxMsgTimeout time.Duration // --max-msg-timeout
	MaxMsgSize    int64         // --max-msg-size
	MaxBodySize   int64         // --max-body-size
	MaxReqTimeout time.Duration // --max-req-timeout
	ClientTimeout time.Duration // not a flag in NSQ; 60s; heartbeat default is half

	MaxHeartbeatInterval   time.Duration // --max-heartbeat-interval
	MaxRdyCount            int64         // --max-rdy-count
	MaxOutputBufferSize    int64         // --max-output-buffer-size
	MaxOutputBufferTimeout time.Duration // --max-output-buffer-timeout
	MinOutputBufferTimeout time.Duration // --min-output-buffer-timeout
	OutputBufferTimeout    time.Duration // --output-buffer-timeout
	MaxChannelConsumers    int           // --max-channel-consumers (0: unlimited)

	StatsdAddress          string        // --statsd-address
	StatsdPrefix           string        // --statsd-prefix
	StatsdInterval         time.Duration // --statsd-interval
	StatsdMemStats         bool          // --statsd-mem-stats
	StatsdUDPPacketSize    int           // --statsd-udp-packet-size
	StatsdExcludeEphemeral bool          // --statsd-exclude-ephemeral

	E2EProcessingLatencyWindowTime  time.Duration // --e2e-processing-latency-window-time
	E2EProcessingLatencyPercentiles []float64     // --e2e-processing-latency-percentile

	TLSCert             string // --tls-cert
	TLSKey              string // --tls-key
	TLSClientAuthPolicy string // --tls-client-auth-policy: "", require, require-verify
	TLSRootCAFile       string // --tls-root-ca-file
	TLSRequired         int    // --tls-required: TLSNotRequired, TLSRequiredExceptHTTP, TLSRequired
	TLSMinVersion       uint16 // --tls-min-version

	DeflateEnabled  bool // --deflate
	MaxDeflateLevel int  // --max-deflate-level
	SnappyEnabled   bool // --snappy

	EnableExperiments []string // --enable-experiment
	TopologyRegion    string   // --topology-region
	TopologyZone      string   // --topology-zone

	// HandshakeTimeout closes a connection that has not sent the protocol
	// magic within this time (nsqx; NSQ waits for the first heartbeat
	// deadline).
	HandshakeTimeout time.Duration

	// Logger receives the daemon's logs; nil discards them.
	Logger *slog.Logger `toml:"-"`
	// LogLevelVar, when set, is the level Logger filters by: PUT
	// /config/log_level changes it along with LogLevel. Without it the
	// change is only reported.
	LogLevelVar *slog.LevelVar `toml:"-"`

	// FS is the filesystem the message logs are written through; nil
	// means the operating system's. Tests inject faults here.
	FS diskqueue.FS `toml:"-"`
}

// TLS-required modes, as NSQ numbers them.
const (
	TLSNotRequired        = 0
	TLSRequiredExceptHTTP = 1
	TLSRequired           = 2
)

// DefaultConfig returns NSQ 1.3's defaults.
func DefaultConfig() *Config {
	host, _ := os.Hostname()
	h := md5.New()
	io.WriteString(h, host)
	nodeID := int64(crc32.ChecksumIEEE(h.Sum(nil)) % 1024)
	cwd, _ := os.Getwd()
	return &Config{
		NodeID:    nodeID,
		LogLevel:  slog.LevelInfo,
		LogPrefix: "[nsqd] ",
		LogFormat: logging.FormatText,

		TCPAddress:       "0.0.0.0:4150",
		HTTPAddress:      "0.0.0.0:4151",
		HTTPSAddress:     "0.0.0.0:4152",
		BroadcastAddress: host,

		HTTPClientConnectTimeout: 2 * time.Second,
		HTTPClientRequestTimeout: 5 * time.Second,
		AuthHTTPRequestMethod:    "get",

		DataPath:        cwd,
		MemQueueSize:    10000,
		MaxBytesPerFile: 100 * 1024 * 1024,
		SyncEvery:       2500,
		SyncTimeout:     2 * time.Second,

		QueueScanWorkerPoolMax:   4,
		QueueScanSelectionCount:  20,
		QueueScanInterval:        100 * time.Millisecond,
		QueueScanRefreshInterval: 5 * time.Second,

		MsgTimeout:    60 * time.Second,
		MaxMsgTimeout: 15 * time.Minute,
		MaxMsgSize:    1024 * 1024,
		MaxBodySize:   5 * 1024 * 1024,
		MaxReqTimeout: time.Hour,
		ClientTimeout: 60 * time.Second,

		MaxHeartbeatInterval:   60 * time.Second,
		MaxRdyCount:            2500,
		MaxOutputBufferSize:    64 * 1024,
		MaxOutputBufferTimeout: 30 * time.Second,
		MinOutputBufferTimeout: 25 * time.Millisecond,
		OutputBufferTimeout:    250 * time.Millisecond,

		StatsdPrefix:        "nsq.%s",
		StatsdInterval:      60 * time.Second,
		StatsdMemStats:      true,
		StatsdUDPPacketSize: 508,

		E2EProcessingLatencyWindowTime: 10 * time.Minute,

		TLSMinVersion: 0x0303, // TLS 1.2: nsqx's default (NSQ: 1.0)

		DeflateEnabled:  true,
		MaxDeflateLevel: 6,
		SnappyEnabled:   true,

		HandshakeTimeout: 10 * time.Second,
	}
}

// Validate reports every invalid option, each naming its flag.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if c.NodeID < 0 || c.NodeID >= 1024 {
		bad("node-id", "%d must be in [0,1024)", c.NodeID)
	}
	if _, err := logging.ParseFormat(c.LogFormat); err != nil {
		bad("log-format", "%v", err)
	}
	if c.TCPAddress == "" {
		bad("tcp-address", "must not be empty")
	}
	if len(c.AuthAdminIdentities) > 0 && len(c.AuthHTTPAddresses) == 0 {
		bad("auth-admin-identity", "needs --auth-http-address (identities come from the auth server)")
	}
	if c.DataPath == "" {
		bad("data-path", "must not be empty")
	}
	if c.MemQueueSize < 0 {
		bad("mem-queue-size", "%d must be >= 0", c.MemQueueSize)
	}
	if c.MaxBytesPerFile <= 0 {
		bad("max-bytes-per-file", "%d must be > 0", c.MaxBytesPerFile)
	}
	if c.SyncEvery <= 0 {
		bad("sync-every", "%d must be > 0", c.SyncEvery)
	}
	if c.SyncTimeout <= 0 {
		bad("sync-timeout", "%v must be > 0", c.SyncTimeout)
	}
	if c.MsgTimeout <= 0 {
		bad("msg-timeout", "%v must be > 0", c.MsgTimeout)
	}
	if c.MaxMsgTimeout <= 0 {
		bad("max-msg-timeout", "%v must be > 0", c.MaxMsgTimeout)
	}
	if c.MaxMsgSize <= 0 || c.MaxMsgSize > 1<<30 {
		bad("max-msg-size", "%d must be in (0, 1GiB]", c.MaxMsgSize)
	}
	if c.MaxBodySize <= 0 || c.MaxBodySize > 1<<31-1 {
		bad("max-body-size", "%d must be in (0, 2GiB)", c.MaxBodySize)
	}
	if c.MaxReqTimeout < 0 {
		bad("max-req-timeout", "%v must be >= 0", c.MaxReqTimeout)
	}
	if c.MaxHeartbeatInterval <= 0 {
		bad("max-heartbeat-interval", "%v must be > 0", c.MaxHeartbeatInterval)
	}
	if c.MaxRdyCount < 1 {
		bad("max-rdy-count", "%d must be >= 1", c.MaxRdyCount)
	}
	if c.MaxOutputBufferSize <= 0 {
		bad("max-output-buffer-size", "%d must be > 0", c.MaxOutputBufferSize)
	}
	if c.MinOutputBufferTimeout <= 0 || c.MinOutputBufferTimeout > c.MaxOutputBufferTimeout {
		bad("min-output-buffer-timeout", "%v must be > 0 and <= --max-output-buffer-timeout", c.MinOutputBufferTimeout)
	}
	if c.OutputBufferTimeout < 0 {
		bad("output-buffer-timeout", "%v must be >= 0", c.OutputBufferTimeout)
	}
	if c.MaxChannelConsumers < 0 {
		bad("max-channel-consumers", "%d must be >= 0", c.MaxChannelConsumers)
	}
	if c.StatsdUDPPacketSize < 1 {
		bad("statsd-udp-packet-size", "%d must be >= 1", c.StatsdUDPPacketSize)
	}
	if c.StatsdInterval <= 0 {
		bad("statsd-interval", "%v must be > 0", c.StatsdInterval)
	}
	for _, p := range c.E2EProcessingLatencyPercentiles {
		if p <= 0 || p > 1 {
			bad("e2e-processing-latency-percentile", "%v must be in (0,1]", p)
		}
	}
	if len(c.E2EProcessingLatencyPercentiles) > 0 && c.E2EProcessingLatencyWindowTime <= 0 {
		bad("e2e-processing-latency-window-time", "%v must be > 0", c.E2EProcessingLatencyWindowTime)
	}
	if c.MaxDeflateLevel < 1 || c.MaxDeflateLevel > 9 {
		bad("max-deflate-level", "%d must be in [1,9]", c.MaxDeflateLevel)
	}
	switch c.AuthHTTPRequestMethod {
	case "get", "post":
	default:
		bad("auth-http-request-method", "%q must be get or post", c.AuthHTTPRequestMethod)
	}
	switch c.TLSClientAuthPolicy {
	case "", "require", "require-verify":
	default:
		bad("tls-client-auth-policy", "%q must be require or require-verify", c.TLSClientAuthPolicy)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls-cert", "--tls-cert and --tls-key must be given together")
	}
	if c.TLSRequired != TLSNotRequired && c.TLSCert == "" {
		bad("tls-required", "needs --tls-cert and --tls-key")
	}
	if c.HandshakeTimeout <= 0 {
		errs = append(errs, errors.New("handshake timeout must be > 0"))
	}
	return errors.Join(errs...)
}
