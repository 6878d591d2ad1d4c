package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nsqx/nsqx/internal/cliconfig"
	"github.com/nsqx/nsqx/internal/logging"
	"github.com/nsqx/nsqx/nsqd"
)

// layers says where nsqd reads options from besides the command line. The
// aliases are the TOML keys NSQ gives under another name than the flag's.
var layers = cliconfig.Layers{
	EnvPrefix: "NSQD_",
	Aliases: map[string]string{
		"node-id":                           "id",
		"lookupd-tcp-address":               "nsqlookupd_tcp_addresses",
		"auth-http-address":                 "auth_http_addresses",
		"e2e-processing-latency-percentile": "e2e_processing_latency_percentiles",
		"enable-experiment":                 "enable_experiment",
	},
	Repeatable: map[string]bool{
		"lookupd-tcp-address":               true,
		"auth-http-address":                 true,
		"e2e-processing-latency-percentile": true,
		"enable-experiment":                 true,
	},
	Ignore: map[string]bool{"version": true},
}

// newFlagSet binds every nsqd flag to a field of cfg, with cfg's current
// values as the defaults. Parsing the returned set (directly or through
// layers.Apply) writes straight into cfg. The flags --config, --version,
// --verbose and --worker-id have no Config field; read --config and
// --version back with Lookup.
func newFlagSet(cfg *nsqd.Config) *flag.FlagSet {
	fs := flag.NewFlagSet("nsqd", flag.ContinueOnError)

	// basic
	fs.String("config", "", "path to a TOML `file` of options (keys are flag names with '_' for '-')")
	fs.Bool("version", false, "print the version and exit")
	fs.Var(logging.LevelFlag{P: &cfg.LogLevel}, "log-level", "least severe `level` to log: debug, info, warn, error or fatal")
	fs.StringVar(&cfg.LogPrefix, "log-prefix", cfg.LogPrefix, "text put at the start of every log line (with --log-format=json, a \"prefix\" field)")
	fs.Var(logging.FormatFlag{P: &cfg.LogFormat}, "log-format", "log line `format`: text, or json for one JSON object per line")
	fs.Bool("verbose", false, "deprecated, does nothing (use --log-level)")
	fs.Int64Var(&cfg.NodeID, "node-id", cfg.NodeID, "node number in [0,1024) put into message IDs (TOML key: id; the default is derived from the hostname)")
	fs.Bool("worker-id", false, "deprecated, does nothing (use --node-id)")

	// network
	fs.StringVar(&cfg.TCPAddress, "tcp-address", cfg.TCPAddress, "host:port or unix socket path for TCP clients")
	fs.StringVar(&cfg.HTTPAddress, "http-address", cfg.HTTPAddress, "host:port or unix socket path for HTTP clients (empty: no HTTP)")
	fs.StringVar(&cfg.HTTPSAddress, "https-address", cfg.HTTPSAddress, "host:port for HTTPS clients (used only with --tls-cert and --tls-key)")
	fs.StringVar(&cfg.BroadcastAddress, "broadcast-address", cfg.BroadcastAddress, "address registered with nsqlookupd; the hostname by default")
	fs.IntVar(&cfg.BroadcastTCPPort, "broadcast-tcp-port", cfg.BroadcastTCPPort, "TCP port registered with nsqlookupd (0: the port listened on)")
	fs.IntVar(&cfg.BroadcastHTTPPort, "broadcast-http-port", cfg.BroadcastHTTPPort, "HTTP port registered with nsqlookupd (0: the port listened on)")
	fs.Var(cliconfig.StringList{V: &cfg.LookupdTCPAddrs}, "lookupd-tcp-address", "nsqlookupd TCP `address`; repeat or separate with commas (TOML key: nsqlookupd_tcp_addresses)")
	durVar(fs, &cfg.HTTPClientConnectTimeout, "http-client-connect-timeout", "connect timeout of HTTP requests to nsqlookupd and auth servers")
	durVar(fs, &cfg.HTTPClientRequestTimeout, "http-client-request-timeout", "whole-request timeout of HTTP requests to nsqlookupd and auth servers")

	// auth
	fs.Var(cliconfig.StringList{V: &cfg.AuthHTTPAddresses}, "auth-http-address", "auth server `address`, host:port or a full URL; repeat or separate with commas (TOML key: auth_http_addresses)")
	fs.StringVar(&cfg.AuthHTTPRequestMethod, "auth-http-request-method", cfg.AuthHTTPRequestMethod, "HTTP method of auth queries: get or post")
	fs.BoolVar(&cfg.AuthHTTPProtectStats, "auth-http-protect-stats", cfg.AuthHTTPProtectStats, "with auth on, GET /stats and /metrics need a secret too (nsqx; NSQ's monitoring tools send none)")
	fs.Var(cliconfig.StringList{V: &cfg.AuthAdminIdentities}, "auth-admin-identity", "with auth on, only this auth-server `identity` may PUT /config or use /debug over HTTP; repeat or separate with commas (nsqx; unset: any accepted secret)")

	// disk queue
	fs.StringVar(&cfg.DataPath, "data-path", cfg.DataPath, "directory for queue files and metadata; the working directory by default")
	fs.Int64Var(&cfg.MemQueueSize, "mem-queue-size", cfg.MemQueueSize, "messages kept in memory per topic and per channel before spilling to disk")
	fs.Int64Var(&cfg.MaxBytesPerFile, "max-bytes-per-file", cfg.MaxBytesPerFile, "size in bytes at which a queue file is rolled")
	fs.Int64Var(&cfg.SyncEvery, "sync-every", cfg.SyncEvery, "fsync a queue after this many writes")
	durVar(fs, &cfg.SyncTimeout, "sync-timeout", "fsync a queue at least this often")
	fs.IntVar(&cfg.QueueScanWorkerPoolMax, "queue-scan-worker-pool-max", cfg.QueueScanWorkerPoolMax, "accepted for compatibility; nsqx runs one scanner")
	fs.IntVar(&cfg.QueueScanSelectionCount, "queue-scan-selection-count", cfg.QueueScanSelectionCount, "accepted for compatibility; nsqx runs one scanner")

	// messages
	durVar(fs, &cfg.MsgTimeout, "msg-timeout", "time a message may stay in flight before it is requeued, unless the client asks otherwise")
	durVar(fs, &cfg.MaxMsgTimeout, "max-msg-timeout", "largest in-flight timeout a client may ask for")
	fs.Int64Var(&cfg.MaxMsgSize, "max-msg-size", cfg.MaxMsgSize, "largest message body in bytes")
	durVar(fs, &cfg.MaxReqTimeout, "max-req-timeout", "largest delay of REQ, DPUB and /pub?defer")
	fs.Int64Var(&cfg.MaxBodySize, "max-body-size", cfg.MaxBodySize, "largest MPUB, IDENTIFY or AUTH body in bytes")

	// clients
	durVar(fs, &cfg.MaxHeartbeatInterval, "max-heartbeat-interval", "largest heartbeat interval a client may ask for")
	fs.Int64Var(&cfg.MaxRdyCount, "max-rdy-count", cfg.MaxRdyCount, "largest RDY count a client may send")
	fs.Int64Var(&cfg.MaxOutputBufferSize, "max-output-buffer-size", cfg.MaxOutputBufferSize, "largest output buffer in bytes a client may ask for")
	durVar(fs, &cfg.MaxOutputBufferTimeout, "max-output-buffer-timeout", "longest output flush interval a client may ask for")
	durVar(fs, &cfg.MinOutputBufferTimeout, "min-output-buffer-timeout", "shortest output flush interval a client may ask for")
	durVar(fs, &cfg.OutputBufferTimeout, "output-buffer-timeout", "output flush interval of clients that do not ask for one")
	fs.IntVar(&cfg.MaxChannelConsumers, "max-channel-consumers", cfg.MaxChannelConsumers, "most consumers per channel on this nsqd (0: no limit)")

	// statsd
	fs.StringVar(&cfg.StatsdAddress, "statsd-address", cfg.StatsdAddress, "UDP host:port of a statsd daemon to push to (empty: no push)")
	durVar(fs, &cfg.StatsdInterval, "statsd-interval", "time between statsd pushes")
	fs.BoolVar(&cfg.StatsdMemStats, "statsd-mem-stats", cfg.StatsdMemStats, "also push memory and GC figures to statsd")
	fs.StringVar(&cfg.StatsdPrefix, "statsd-prefix", cfg.StatsdPrefix, "prefix of statsd keys; %s becomes this node's host key")
	fs.IntVar(&cfg.StatsdUDPPacketSize, "statsd-udp-packet-size", cfg.StatsdUDPPacketSize, "largest statsd UDP packet in bytes")
	fs.BoolVar(&cfg.StatsdExcludeEphemeral, "statsd-exclude-ephemeral", cfg.StatsdExcludeEphemeral, "leave ephemeral topics and channels out of statsd")

	// end-to-end latency
	fs.Var(floatList{&cfg.E2EProcessingLatencyPercentiles}, "e2e-processing-latency-percentile", "a `quantile` in (0,1] of processing latency to track; repeat or separate with commas (TOML key: e2e_processing_latency_percentiles)")
	durVar(fs, &cfg.E2EProcessingLatencyWindowTime, "e2e-processing-latency-window-time", "time window the latency quantiles cover")

	// TLS
	fs.StringVar(&cfg.TLSCert, "tls-cert", cfg.TLSCert, "certificate `file` (PEM)")
	fs.StringVar(&cfg.TLSKey, "tls-key", cfg.TLSKey, "private key `file` (PEM)")
	fs.StringVar(&cfg.TLSClientAuthPolicy, "tls-client-auth-policy", cfg.TLSClientAuthPolicy, "client certificates: require (any) or require-verify (signed by --tls-root-ca-file); implies --tls-required")
	fs.StringVar(&cfg.TLSRootCAFile, "tls-root-ca-file", cfg.TLSRootCAFile, "CA `file` (PEM) for client certificates and for HTTPS auth servers")
	fs.Var(tlsRequiredValue{&cfg.TLSRequired}, "tls-required", "require TLS: true, false, or tcp-https (TCP and HTTPS only, plain HTTP still allowed)")
	fs.Var(tlsVersionValue{&cfg.TLSMinVersion}, "tls-min-version", "oldest TLS `version` accepted: tls1.0, tls1.1, tls1.2 or tls1.3")

	// compression
	fs.BoolVar(&cfg.DeflateEnabled, "deflate", cfg.DeflateEnabled, "let clients negotiate deflate compression")
	fs.IntVar(&cfg.MaxDeflateLevel, "max-deflate-level", cfg.MaxDeflateLevel, "highest deflate level in [1,9] a client may ask for")
	fs.BoolVar(&cfg.SnappyEnabled, "snappy", cfg.SnappyEnabled, "let clients negotiate snappy compression")

	// experiments
	fs.Var(cliconfig.StringList{V: &cfg.EnableExperiments}, "enable-experiment", "turn on an experimental `feature` (topology-aware-consumption); repeatable (TOML key: enable_experiment)")
	fs.StringVar(&cfg.TopologyRegion, "topology-region", cfg.TopologyRegion, "region of this nsqd, for topology-aware consumption")
	fs.StringVar(&cfg.TopologyZone, "topology-zone", cfg.TopologyZone, "zone of this nsqd, for topology-aware consumption")

	return fs
}

// tlsRequiredValue is --tls-required. Like NSQ's it is a boolean flag (a
// bare --tls-required means true) that also takes "tcp-https".
type tlsRequiredValue struct{ p *int }

func (v tlsRequiredValue) IsBoolFlag() bool { return true }

func (v tlsRequiredValue) String() string {
	if v.p == nil {
		return "false"
	}
	switch *v.p {
	case nsqd.TLSNotRequired:
		return "false"
	case nsqd.TLSRequiredExceptHTTP:
		return "tcp-https"
	case nsqd.TLSRequired:
		return "true"
	}
	return strconv.Itoa(*v.p)
}

func (v tlsRequiredValue) Set(s string) error {
	if strings.EqualFold(s, "tcp-https") {
		*v.p = nsqd.TLSRequiredExceptHTTP
		return nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true, false or tcp-https", s)
	}
	if b {
		*v.p = nsqd.TLSRequired
	} else {
		*v.p = nsqd.TLSNotRequired
	}
	return nil
}

var tlsVersions = []struct {
	name    string
	version uint16
}{
	{"tls1.0", tls.VersionTLS10},
	{"tls1.1", tls.VersionTLS11},
	{"tls1.2", tls.VersionTLS12},
	{"tls1.3", tls.VersionTLS13},
}

// tlsVersionValue is --tls-min-version. An empty value leaves the default,
// as NSQ's example config file relies on (tls_min_version = "").
type tlsVersionValue struct{ p *uint16 }

func (v tlsVersionValue) String() string {
	if v.p == nil {
		return ""
	}
	for _, t := range tlsVersions {
		if t.version == *v.p {
			return t.name
		}
	}
	return fmt.Sprintf("0x%04x", *v.p)
}

func (v tlsVersionValue) Set(s string) error {
	if s == "" {
		return nil
	}
	for _, t := range tlsVersions {
		if strings.EqualFold(s, t.name) {
			*v.p = t.version
			return nil
		}
	}
	return fmt.Errorf("unknown TLS version %q (want tls1.0, tls1.1, tls1.2 or tls1.3)", s)
}

// floatList is --e2e-processing-latency-percentile: repeatable, each value
// a comma-separated list. Like NSQ, the list is kept sorted from the
// highest quantile down, which is the order /stats reports them in.
type floatList struct{ p *[]float64 }

func (v floatList) String() string {
	if v.p == nil {
		return ""
	}
	s := make([]string, len(*v.p))
	for i, f := range *v.p {
		s[i] = strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strings.Join(s, ",")
}

func (v floatList) Set(s string) error {
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		f, err := strconv.ParseFloat(part, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", part)
		}
		*v.p = append(*v.p, f)
	}
	slices.SortStableFunc(*v.p, func(a, b float64) int {
		switch {
		case a > b:
			return -1
		case a < b:
			return 1
		}
		return 0
	})
	return nil
}

// durVar defines a durationValue flag; "duration" names its argument in
// the usage text.
func durVar(fs *flag.FlagSet, p *time.Duration, name, usage string) {
	fs.Var(durationValue{p}, name, usage+" (a `duration`)")
}

// durationValue is a duration flag. It takes a Go duration ("60s", "250ms")
// or a bare integer, which counts milliseconds: NSQ's config loader reads an
// integer TOML value of a duration option as milliseconds (msg_timeout =
// 60000 is one minute), so existing files keep their meaning. The same rule
// holds on the command line and in NSQD_* variables, so that one spelling
// means one thing everywhere.
type durationValue struct{ p *time.Duration }

func (v durationValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v durationValue) Set(s string) error {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > math.MaxInt64/int64(time.Millisecond) || n < math.MinInt64/int64(time.Millisecond) {
			return fmt.Errorf("%d milliseconds is out of range", n)
		}
		*v.p = time.Duration(n) * time.Millisecond
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (like 60s or 250ms) or an integer of milliseconds", s)
	}
	*v.p = d
	return nil
}
