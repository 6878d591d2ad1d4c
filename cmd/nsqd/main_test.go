package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/logging"
	"github.com/nsqx/nsqx/internal/version"
	"github.com/nsqx/nsqx/nsqd"
)

// configDiff lists the fields in which got and want differ.
func configDiff(got, want *nsqd.Config) []string {
	var diffs []string
	g, w := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := range g.NumField() {
		name := g.Type().Field(i).Name
		if name == "Logger" {
			continue
		}
		if gf, wf := g.Field(i).Interface(), w.Field(i).Interface(); !reflect.DeepEqual(gf, wf) {
			diffs = append(diffs, fmt.Sprintf("%s = %#v, want %#v", name, gf, wf))
		}
	}
	return diffs
}

func checkConfig(t *testing.T, what string, got, want *nsqd.Config) {
	t.Helper()
	for _, d := range configDiff(got, want) {
		t.Errorf("%s: %s", what, d)
	}
}

// writeTOML writes a config file in a fresh temporary directory.
func writeTOML(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nsqd.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFlagDefaults checks that every flag exists, that there are no others,
// and that each prints NSQ's default (nsqx's where it deliberately differs).
func TestFlagDefaults(t *testing.T) {
	def := nsqd.DefaultConfig()
	want := map[string]string{
		"config":                             "",
		"version":                            "false",
		"log-level":                          "info",
		"log-prefix":                         "[nsqd] ",
		"log-format":                         "text",
		"verbose":                            "false",
		"node-id":                            strconv.FormatInt(def.NodeID, 10),
		"worker-id":                          "false",
		"tcp-address":                        "0.0.0.0:4150",
		"http-address":                       "0.0.0.0:4151",
		"https-address":                      "0.0.0.0:4152",
		"broadcast-address":                  def.BroadcastAddress,
		"broadcast-tcp-port":                 "0",
		"broadcast-http-port":                "0",
		"lookupd-tcp-address":                "",
		"http-client-connect-timeout":        "2s",
		"http-client-request-timeout":        "5s",
		"auth-http-address":                  "",
		"auth-http-request-method":           "get",
		"auth-http-protect-stats":            "false",
		"auth-admin-identity":                "",
		"data-path":                          def.DataPath,
		"mem-queue-size":                     "10000",
		"max-bytes-per-file":                 "104857600",
		"sync-every":                         "2500",
		"sync-timeout":                       "2s",
		"queue-scan-worker-pool-max":         "4",
		"queue-scan-selection-count":         "20",
		"msg-timeout":                        "1m0s",
		"max-msg-timeout":                    "15m0s",
		"max-msg-size":                       "1048576",
		"max-req-timeout":                    "1h0m0s",
		"max-body-size":                      "5242880",
		"max-heartbeat-interval":             "1m0s",
		"max-rdy-count":                      "2500",
		"max-output-buffer-size":             "65536",
		"max-output-buffer-timeout":          "30s",
		"min-output-buffer-timeout":          "25ms",
		"output-buffer-timeout":              "250ms",
		"max-channel-consumers":              "0",
		"statsd-address":                     "",
		"statsd-interval":                    "1m0s",
		"statsd-mem-stats":                   "true",
		"statsd-prefix":                      "nsq.%s",
		"statsd-udp-packet-size":             "508",
		"statsd-exclude-ephemeral":           "false",
		"e2e-processing-latency-percentile":  "",
		"e2e-processing-latency-window-time": "10m0s",
		"tls-cert":                           "",
		"tls-key":                            "",
		"tls-client-auth-policy":             "",
		"tls-root-ca-file":                   "",
		"tls-required":                       "false",
		"tls-min-version":                    "tls1.2", // nsqx default; NSQ's is tls1.0
		"deflate":                            "true",
		"max-deflate-level":                  "6",
		"snappy":                             "true",
		"enable-experiment":                  "",
		"topology-region":                    "",
		"topology-zone":                      "",
	}
	fs := newFlagSet(nsqd.DefaultConfig())
	for name, wantDef := range want {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("flag --%s is missing", name)
			continue
		}
		if f.DefValue != wantDef {
			t.Errorf("--%s default = %q, want %q", name, f.DefValue, wantDef)
		}
		if f.Usage == "" {
			t.Errorf("--%s has no usage text", name)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := want[f.Name]; !ok {
			t.Errorf("unexpected flag --%s", f.Name)
		}
	})
}

func TestLoadConfigDefaults(t *testing.T) {
	for _, args := range [][]string{nil, {"--verbose"}, {"-worker-id", "--verbose=false"}} {
		cfg, err := loadConfig(args, nil)
		if err != nil {
			t.Fatalf("loadConfig(%q) error: %v", args, err)
		}
		checkConfig(t, fmt.Sprintf("loadConfig(%q)", args), cfg, nsqd.DefaultConfig())
		if cfg.Logger != nil {
			t.Errorf("loadConfig(%q).Logger = %v, want nil", args, cfg.Logger)
		}
	}
}

// TestFlagsReachConfig sets every flag to a non-default value and checks
// that exactly the matching Config field changes.
func TestFlagsReachConfig(t *testing.T) {
	tests := []struct {
		args []string
		set  func(c *nsqd.Config)
	}{
		{[]string{"--log-level=debug"}, func(c *nsqd.Config) { c.LogLevel = slog.LevelDebug }},
		{[]string{"--log-prefix="}, func(c *nsqd.Config) { c.LogPrefix = "" }},
		{[]string{"--log-format=json"}, func(c *nsqd.Config) { c.LogFormat = "json" }},
		{[]string{"--node-id=1023"}, func(c *nsqd.Config) { c.NodeID = 1023 }},
		{[]string{"--tcp-address=/tmp/nsqd.sock"}, func(c *nsqd.Config) { c.TCPAddress = "/tmp/nsqd.sock" }},
		{[]string{"--http-address="}, func(c *nsqd.Config) { c.HTTPAddress = "" }},
		{[]string{"--https-address=127.0.0.1:1"}, func(c *nsqd.Config) { c.HTTPSAddress = "127.0.0.1:1" }},
		{[]string{"--broadcast-address=10.0.0.1"}, func(c *nsqd.Config) { c.BroadcastAddress = "10.0.0.1" }},
		{[]string{"--broadcast-tcp-port=14150"}, func(c *nsqd.Config) { c.BroadcastTCPPort = 14150 }},
		{[]string{"--broadcast-http-port=14151"}, func(c *nsqd.Config) { c.BroadcastHTTPPort = 14151 }},
		{[]string{"--lookupd-tcp-address=a:4160", "--lookupd-tcp-address", "b:4160,c:4160"}, func(c *nsqd.Config) { c.LookupdTCPAddrs = []string{"a:4160", "b:4160", "c:4160"} }},
		{[]string{"--http-client-connect-timeout=3s"}, func(c *nsqd.Config) { c.HTTPClientConnectTimeout = 3 * time.Second }},
		{[]string{"--http-client-request-timeout=7s"}, func(c *nsqd.Config) { c.HTTPClientRequestTimeout = 7 * time.Second }},
		{[]string{"--auth-http-address=a:4181", "--auth-http-address=https://b/auth"}, func(c *nsqd.Config) { c.AuthHTTPAddresses = []string{"a:4181", "https://b/auth"} }},
		{[]string{"--auth-http-request-method=post"}, func(c *nsqd.Config) { c.AuthHTTPRequestMethod = "post" }},
		{[]string{"--auth-http-protect-stats"}, func(c *nsqd.Config) { c.AuthHTTPProtectStats = true }},
		{[]string{"--auth-http-address=a:4181", "--auth-admin-identity=ops,oncall"}, func(c *nsqd.Config) {
			c.AuthHTTPAddresses, c.AuthAdminIdentities = []string{"a:4181"}, []string{"ops", "oncall"}
		}},
		{[]string{"--data-path=/var/lib/nsq"}, func(c *nsqd.Config) { c.DataPath = "/var/lib/nsq" }},
		{[]string{"--mem-queue-size=0"}, func(c *nsqd.Config) { c.MemQueueSize = 0 }},
		{[]string{"--max-bytes-per-file=4096"}, func(c *nsqd.Config) { c.MaxBytesPerFile = 4096 }},
		{[]string{"--sync-every=1"}, func(c *nsqd.Config) { c.SyncEvery = 1 }},
		{[]string{"--sync-timeout=3s"}, func(c *nsqd.Config) { c.SyncTimeout = 3 * time.Second }},
		{[]string{"--queue-scan-worker-pool-max=8"}, func(c *nsqd.Config) { c.QueueScanWorkerPoolMax = 8 }},
		{[]string{"--queue-scan-selection-count=40"}, func(c *nsqd.Config) { c.QueueScanSelectionCount = 40 }},
		{[]string{"--msg-timeout=90s"}, func(c *nsqd.Config) { c.MsgTimeout = 90 * time.Second }},
		{[]string{"--max-msg-timeout=20m"}, func(c *nsqd.Config) { c.MaxMsgTimeout = 20 * time.Minute }},
		{[]string{"--max-msg-size=2048"}, func(c *nsqd.Config) { c.MaxMsgSize = 2048 }},
		{[]string{"--max-req-timeout=2h"}, func(c *nsqd.Config) { c.MaxReqTimeout = 2 * time.Hour }},
		{[]string{"--max-body-size=6000000"}, func(c *nsqd.Config) { c.MaxBodySize = 6000000 }},
		{[]string{"--max-heartbeat-interval=30s"}, func(c *nsqd.Config) { c.MaxHeartbeatInterval = 30 * time.Second }},
		{[]string{"--max-rdy-count=100"}, func(c *nsqd.Config) { c.MaxRdyCount = 100 }},
		{[]string{"--max-output-buffer-size=1024"}, func(c *nsqd.Config) { c.MaxOutputBufferSize = 1024 }},
		{[]string{"--max-output-buffer-timeout=40s"}, func(c *nsqd.Config) { c.MaxOutputBufferTimeout = 40 * time.Second }},
		{[]string{"--min-output-buffer-timeout=50ms"}, func(c *nsqd.Config) { c.MinOutputBufferTimeout = 50 * time.Millisecond }},
		{[]string{"--output-buffer-timeout=100ms"}, func(c *nsqd.Config) { c.OutputBufferTimeout = 100 * time.Millisecond }},
		{[]string{"--max-channel-consumers=3"}, func(c *nsqd.Config) { c.MaxChannelConsumers = 3 }},
		{[]string{"--statsd-address=127.0.0.1:8125"}, func(c *nsqd.Config) { c.StatsdAddress = "127.0.0.1:8125" }},
		{[]string{"--statsd-interval=10s"}, func(c *nsqd.Config) { c.StatsdInterval = 10 * time.Second }},
		{[]string{"--statsd-mem-stats=false"}, func(c *nsqd.Config) { c.StatsdMemStats = false }},
		{[]string{"--statsd-prefix=x.%s"}, func(c *nsqd.Config) { c.StatsdPrefix = "x.%s" }},
		{[]string{"--statsd-udp-packet-size=1400"}, func(c *nsqd.Config) { c.StatsdUDPPacketSize = 1400 }},
		{[]string{"--statsd-exclude-ephemeral"}, func(c *nsqd.Config) { c.StatsdExcludeEphemeral = true }},
		{[]string{"--e2e-processing-latency-percentile=0.5", "--e2e-processing-latency-percentile=1.0,0.99"}, func(c *nsqd.Config) { c.E2EProcessingLatencyPercentiles = []float64{1, 0.99, 0.5} }},
		{[]string{"--e2e-processing-latency-window-time=1m"}, func(c *nsqd.Config) { c.E2EProcessingLatencyWindowTime = time.Minute }},
		{[]string{"--tls-cert=c.pem", "--tls-key=k.pem"}, func(c *nsqd.Config) { c.TLSCert, c.TLSKey = "c.pem", "k.pem" }},
		{[]string{"--tls-cert=c.pem", "--tls-key=k.pem", "--tls-client-auth-policy=require-verify"}, func(c *nsqd.Config) {
			c.TLSCert, c.TLSKey, c.TLSClientAuthPolicy, c.TLSRequired = "c.pem", "k.pem", "require-verify", nsqd.TLSRequired
		}},
		{[]string{"--tls-root-ca-file=ca.pem"}, func(c *nsqd.Config) { c.TLSRootCAFile = "ca.pem" }},
		{[]string{"--tls-cert=c.pem", "--tls-key=k.pem", "--tls-required"}, func(c *nsqd.Config) {
			c.TLSCert, c.TLSKey, c.TLSRequired = "c.pem", "k.pem", nsqd.TLSRequired
		}},
		{[]string{"--tls-min-version=tls1.3"}, func(c *nsqd.Config) { c.TLSMinVersion = tls.VersionTLS13 }},
		{[]string{"--deflate=false"}, func(c *nsqd.Config) { c.DeflateEnabled = false }},
		{[]string{"--max-deflate-level=9"}, func(c *nsqd.Config) { c.MaxDeflateLevel = 9 }},
		{[]string{"--snappy=false"}, func(c *nsqd.Config) { c.SnappyEnabled = false }},
		{[]string{"--enable-experiment=topology-aware-consumption"}, func(c *nsqd.Config) { c.EnableExperiments = []string{"topology-aware-consumption"} }},
		{[]string{"--topology-region=eu"}, func(c *nsqd.Config) { c.TopologyRegion = "eu" }},
		{[]string{"--topology-zone=eu-1a"}, func(c *nsqd.Config) { c.TopologyZone = "eu-1a" }},
	}
	covered := map[string]bool{"config": true, "version": true, "verbose": true, "worker-id": true}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got, err := loadConfig(tt.args, nil)
			if err != nil {
				t.Fatalf("loadConfig(%q) error: %v", tt.args, err)
			}
			want := nsqd.DefaultConfig()
			tt.set(want)
			checkConfig(t, fmt.Sprintf("loadConfig(%q)", tt.args), got, want)
		})
		for _, a := range tt.args {
			if name, ok := strings.CutPrefix(a, "--"); ok {
				name, _, _ = strings.Cut(name, "=")
				covered[name] = true
			}
		}
	}
	newFlagSet(nsqd.DefaultConfig()).VisitAll(func(f *flag.Flag) {
		if !covered[f.Name] {
			t.Errorf("flag --%s is not tested", f.Name)
		}
	})
}

func TestSpecialValues(t *testing.T) {
	const tlsFiles = "--tls-cert=c.pem --tls-key=k.pem "
	tests := []struct {
		args string // split on spaces
		get  func(c *nsqd.Config) any
		want any
	}{
		{"--log-level=debug", func(c *nsqd.Config) any { return c.LogLevel }, slog.LevelDebug},
		{"--log-level=INFO", func(c *nsqd.Config) any { return c.LogLevel }, slog.LevelInfo},
		{"--log-level=warn", func(c *nsqd.Config) any { return c.LogLevel }, slog.LevelWarn},
		{"--log-level=error", func(c *nsqd.Config) any { return c.LogLevel }, slog.LevelError},
		{"--log-level=fatal", func(c *nsqd.Config) any { return c.LogLevel }, logging.LevelFatal},
		{"--log-format=JSON", func(c *nsqd.Config) any { return c.LogFormat }, "json"},

		{tlsFiles + "--tls-required", func(c *nsqd.Config) any { return c.TLSRequired }, nsqd.TLSRequired},
		{tlsFiles + "--tls-required=true", func(c *nsqd.Config) any { return c.TLSRequired }, nsqd.TLSRequired},
		{tlsFiles + "--tls-required=1", func(c *nsqd.Config) any { return c.TLSRequired }, nsqd.TLSRequired},
		{tlsFiles + "--tls-required=false", func(c *nsqd.Config) any { return c.TLSRequired }, nsqd.TLSNotRequired},
		{tlsFiles + "--tls-required=0", func(c *nsqd.Config) any { return c.TLSRequired }, nsqd.TLSNotRequired},
		{tlsFiles + "--tls-required=tcp-https", func(c *nsqd.Config) any { return c.TLSRequired }, nsqd.TLSRequiredExceptHTTP},
		{tlsFiles + "--tls-required=TCP-HTTPS", func(c *nsqd.Config) any { return c.TLSRequired }, nsqd.TLSRequiredExceptHTTP},
		// A client-auth policy forces TLS on, but keeps an explicit tcp-https (as NSQ).
		{tlsFiles + "--tls-client-auth-policy=require", func(c *nsqd.Config) any { return c.TLSRequired }, nsqd.TLSRequired},
		{tlsFiles + "--tls-client-auth-policy=require --tls-required=false", func(c *nsqd.Config) any { return c.TLSRequired }, nsqd.TLSRequired},
		{tlsFiles + "--tls-client-auth-policy=require --tls-required=tcp-https", func(c *nsqd.Config) any { return c.TLSRequired }, nsqd.TLSRequiredExceptHTTP},

		{"--tls-min-version=tls1.0", func(c *nsqd.Config) any { return c.TLSMinVersion }, uint16(tls.VersionTLS10)},
		{"--tls-min-version=tls1.1", func(c *nsqd.Config) any { return c.TLSMinVersion }, uint16(tls.VersionTLS11)},
		{"--tls-min-version=TLS1.2", func(c *nsqd.Config) any { return c.TLSMinVersion }, uint16(tls.VersionTLS12)},
		{"--tls-min-version=tls1.3", func(c *nsqd.Config) any { return c.TLSMinVersion }, uint16(tls.VersionTLS13)},
		{"--tls-min-version=", func(c *nsqd.Config) any { return c.TLSMinVersion }, nsqd.DefaultConfig().TLSMinVersion},

		{"--e2e-processing-latency-percentile=0.99", func(c *nsqd.Config) any { return c.E2EProcessingLatencyPercentiles }, []float64{0.99}},
		{"--e2e-processing-latency-percentile=0.5,1.0,0.99", func(c *nsqd.Config) any { return c.E2EProcessingLatencyPercentiles }, []float64{1, 0.99, 0.5}},
		{"--e2e-processing-latency-percentile=0.5 --e2e-processing-latency-percentile=0.95,,0.999", func(c *nsqd.Config) any { return c.E2EProcessingLatencyPercentiles }, []float64{0.999, 0.95, 0.5}},

		// Durations: Go syntax, or an integer of milliseconds.
		{"--msg-timeout=1m30s", func(c *nsqd.Config) any { return c.MsgTimeout }, 90 * time.Second},
		{"--msg-timeout=90000", func(c *nsqd.Config) any { return c.MsgTimeout }, 90 * time.Second},
		{"--output-buffer-timeout=0", func(c *nsqd.Config) any { return c.OutputBufferTimeout }, time.Duration(0)},

		{"--lookupd-tcp-address=a:4160,,b:4160", func(c *nsqd.Config) any { return c.LookupdTCPAddrs }, []string{"a:4160", "b:4160"}},
		{"-node-id=0", func(c *nsqd.Config) any { return c.NodeID }, int64(0)},
		{"--verbose=true --worker-id", func(c *nsqd.Config) any { return c.LogLevel }, slog.LevelInfo},
	}
	for _, tt := range tests {
		args := strings.Split(tt.args, " ")
		cfg, err := loadConfig(args, nil)
		if err != nil {
			t.Errorf("loadConfig(%q) error: %v", args, err)
			continue
		}
		if got := tt.get(cfg); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("loadConfig(%q) = %#v, want %#v", args, got, tt.want)
		}
	}
}

// The config file used by the precedence tests, with NSQ-style keys.
const precedenceTOML = `
# an nsqd config file as NSQ users write them
id = 7
mem_queue_size = 0
sync_every = 10
max_rdy_count = 100
nsqlookupd_tcp_addresses = ["a:4160", "b:4160"]
auth_http_addresses = ["http://auth:4181/auth"]
tls_cert = "c.pem"
tls_key = "k.pem"
tls_required = "tcp-https"
tls_min_version = "tls1.3"
log_level = "debug"
msg_timeout = "90s"
max_msg_timeout = 1200000
statsd_mem_stats = false
statsd_prefix = "nsq.%s"
e2e_processing_latency_percentiles = [0.5, 0.99]
enable_experiment = ["topology-aware-consumption"]
`

func fileConfig() *nsqd.Config {
	c := nsqd.DefaultConfig()
	c.NodeID = 7
	c.MemQueueSize = 0
	c.SyncEvery = 10
	c.MaxRdyCount = 100
	c.LookupdTCPAddrs = []string{"a:4160", "b:4160"}
	c.AuthHTTPAddresses = []string{"http://auth:4181/auth"}
	c.TLSCert, c.TLSKey = "c.pem", "k.pem"
	c.TLSRequired = nsqd.TLSRequiredExceptHTTP
	c.TLSMinVersion = tls.VersionTLS13
	c.LogLevel = slog.LevelDebug
	c.MsgTimeout = 90 * time.Second
	c.MaxMsgTimeout = 20 * time.Minute // NSQ reads an integer duration as milliseconds
	c.StatsdMemStats = false
	c.E2EProcessingLatencyPercentiles = []float64{0.99, 0.5}
	c.EnableExperiments = []string{"topology-aware-consumption"}
	return c
}

// TestPrecedence checks flag > NSQD_* environment > TOML file > default.
func TestPrecedence(t *testing.T) {
	file := writeTOML(t, precedenceTOML)
	env := []string{
		"NSQD_MEM_QUEUE_SIZE=5",
		"NSQD_NODE_ID=9",
		"NSQD_LOOKUPD_TCP_ADDRESS=c:4160, d:4160",
		"NSQD_TLS_REQUIRED=true",
		"NSQD_MSG_TIMEOUT=2m",
		"NSQD_E2E_PROCESSING_LATENCY_PERCENTILE=0.9,0.8",
		"HOME=/root",    // not ours
		"NSQ_ID=1000",   // not ours either
		"NSQDX_ID=1000", // nor this
	}
	tests := []struct {
		name    string
		args    []string
		environ []string
		want    func() *nsqd.Config
	}{
		{"default", nil, nil, nsqd.DefaultConfig},
		{"file", []string{"--config=" + file}, nil, fileConfig},
		{"file named by NSQD_CONFIG", nil, []string{"NSQD_CONFIG=" + file}, fileConfig},
		{"env over file", []string{"--config", file}, env, func() *nsqd.Config {
			c := fileConfig()
			c.MemQueueSize = 5
			c.NodeID = 9
			c.LookupdTCPAddrs = []string{"c:4160", "d:4160"}
			c.TLSRequired = nsqd.TLSRequired
			c.MsgTimeout = 2 * time.Minute
			c.E2EProcessingLatencyPercentiles = []float64{0.9, 0.8}
			return c
		}},
		{"flag over env over file", []string{
			"--config=" + file,
			"--mem-queue-size=9",
			"--node-id=3",
			"--lookupd-tcp-address=e:4160",
			"--tls-required=false",
			"--sync-every=20",
		}, env, func() *nsqd.Config {
			c := fileConfig()
			c.MemQueueSize = 9
			c.NodeID = 3
			c.LookupdTCPAddrs = []string{"e:4160"}
			c.TLSRequired = nsqd.TLSNotRequired
			c.MsgTimeout = 2 * time.Minute
			c.E2EProcessingLatencyPercentiles = []float64{0.9, 0.8}
			c.SyncEvery = 20
			return c
		}},
		{"env without file", nil, []string{"NSQD_MEM_QUEUE_SIZE=0", "NSQD_DEFLATE=false", "NSQD_AUTH_HTTP_ADDRESS=x:1,y:2"}, func() *nsqd.Config {
			c := nsqd.DefaultConfig()
			c.MemQueueSize = 0
			c.DeflateEnabled = false
			c.AuthHTTPAddresses = []string{"x:1", "y:2"}
			return c
		}},
		{"flag over default", []string{"--mem-queue-size=1"}, []string{"NSQD_SYNC_EVERY=3"}, func() *nsqd.Config {
			c := nsqd.DefaultConfig()
			c.MemQueueSize = 1
			c.SyncEvery = 3
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadConfig(tt.args, tt.environ)
			if err != nil {
				t.Fatalf("loadConfig(%q, %q) error: %v", tt.args, tt.environ, err)
			}
			checkConfig(t, fmt.Sprintf("loadConfig(%q, %q)", tt.args, tt.environ), got, tt.want())
		})
	}
}

// TestConfigFileValues checks how TOML values of each kind are read.
func TestConfigFileValues(t *testing.T) {
	tests := []struct {
		toml string
		set  func(c *nsqd.Config)
	}{
		{`id = 0`, func(c *nsqd.Config) { c.NodeID = 0 }},
		{"tls_cert = 'c'\ntls_key = 'k'\ntls_required = true", func(c *nsqd.Config) { c.TLSCert, c.TLSKey, c.TLSRequired = "c", "k", nsqd.TLSRequired }},
		{"tls_required = false", func(c *nsqd.Config) {}},
		{"tls_cert = 'c'\ntls_key = 'k'\ntls_client_auth_policy = 'require'", func(c *nsqd.Config) {
			c.TLSCert, c.TLSKey, c.TLSClientAuthPolicy, c.TLSRequired = "c", "k", "require", nsqd.TLSRequired
		}},
		{`tls_min_version = ""`, func(c *nsqd.Config) {}},
		{`tls_min_version = "tls1.0"`, func(c *nsqd.Config) { c.TLSMinVersion = tls.VersionTLS10 }},
		{`log_level = "warn"`, func(c *nsqd.Config) { c.LogLevel = slog.LevelWarn }},
		{`log_prefix = ""`, func(c *nsqd.Config) { c.LogPrefix = "" }},
		{`sync_timeout = "500ms"`, func(c *nsqd.Config) { c.SyncTimeout = 500 * time.Millisecond }},
		{`sync_timeout = 500`, func(c *nsqd.Config) { c.SyncTimeout = 500 * time.Millisecond }},
		{`msg_timeout = "60000"`, func(c *nsqd.Config) { c.MsgTimeout = time.Minute }},
		{`e2e_processing_latency_window_time = "1h"`, func(c *nsqd.Config) { c.E2EProcessingLatencyWindowTime = time.Hour }},
		{`e2e_processing_latency_percentiles = [1.0, 0.95]`, func(c *nsqd.Config) { c.E2EProcessingLatencyPercentiles = []float64{1, 0.95} }},
		{`e2e_processing_latency_percentiles = [1, 0.5]`, func(c *nsqd.Config) { c.E2EProcessingLatencyPercentiles = []float64{1, 0.5} }},
		{`auth_http_request_method = "post"`, func(c *nsqd.Config) { c.AuthHTTPRequestMethod = "post" }},
		{`http_address = ""`, func(c *nsqd.Config) { c.HTTPAddress = "" }},
		{`snappy = false`, func(c *nsqd.Config) { c.SnappyEnabled = false }},
		{`max_deflate_level = 1`, func(c *nsqd.Config) { c.MaxDeflateLevel = 1 }},
		{`verbose = true`, func(c *nsqd.Config) {}},
		{`worker_id = true`, func(c *nsqd.Config) {}},
		// Keys that name no flag are ignored, as NSQ ignores them (the
		// daemon logs a warning naming them).
		{"mem_queue_size = 3\nbogus_option = 1\nstatsd_protocol = 'tcp'", func(c *nsqd.Config) { c.MemQueueSize = 3 }},
		{"", func(c *nsqd.Config) {}},
	}
	for _, tt := range tests {
		file := writeTOML(t, tt.toml)
		got, err := loadConfig([]string{"--config=" + file}, nil)
		if err != nil {
			t.Errorf("loadConfig with file %q: error: %v", tt.toml, err)
			continue
		}
		want := nsqd.DefaultConfig()
		tt.set(want)
		checkConfig(t, fmt.Sprintf("loadConfig with file %q", tt.toml), got, want)
	}
}

// TestInvalid checks that bad values fail with an error naming the flag,
// variable or file, and that run exits 1 and prints it.
func TestInvalid(t *testing.T) {
	garbled := writeTOML(t, "mem_queue_size = = 3\n[[")
	badValue := writeTOML(t, `max_deflate_level = "high"`)
	badRange := writeTOML(t, `max_deflate_level = 0`)
	badTLS := writeTOML(t, `tls_required = "sometimes"`)
	missing := filepath.Join(t.TempDir(), "missing.toml")
	tests := []struct {
		args    []string
		environ []string
		want    []string // substrings of the error
	}{
		{[]string{"--max-deflate-level=10"}, nil, []string{"--max-deflate-level"}},
		{[]string{"--max-deflate-level=0"}, nil, []string{"--max-deflate-level"}},
		{[]string{"--node-id=2000"}, nil, []string{"--node-id"}},
		{[]string{"--node-id=-1"}, nil, []string{"--node-id"}},
		{[]string{"--tls-min-version=ssl3.0"}, nil, []string{"-tls-min-version", "ssl3.0"}},
		{[]string{"--auth-http-request-method=put"}, nil, []string{"--auth-http-request-method", "put"}},
		{[]string{"--auth-admin-identity=ops"}, nil, []string{"--auth-admin-identity", "--auth-http-address"}},
		{[]string{"--log-level=loud"}, nil, []string{"-log-level", "loud"}},
		{[]string{"--log-format=xml"}, nil, []string{"-log-format", "xml"}},
		{[]string{"--tls-required=maybe"}, nil, []string{"-tls-required", "maybe"}},
		{[]string{"--tls-required"}, nil, []string{"--tls-required", "--tls-cert"}},
		{[]string{"--tls-client-auth-policy=require"}, nil, []string{"--tls-required"}},
		{[]string{"--tls-client-auth-policy=any", "--tls-cert=c", "--tls-key=k"}, nil, []string{"--tls-client-auth-policy"}},
		{[]string{"--msg-timeout=soon"}, nil, []string{"-msg-timeout", "soon"}},
		{[]string{"--msg-timeout=0"}, nil, []string{"--msg-timeout"}},
		{[]string{"--mem-queue-size=lots"}, nil, []string{"-mem-queue-size"}},
		{[]string{"--mem-queue-size=-1"}, nil, []string{"--mem-queue-size"}},
		{[]string{"--e2e-processing-latency-percentile=1.5"}, nil, []string{"--e2e-processing-latency-percentile"}},
		{[]string{"--e2e-processing-latency-percentile=0.9,abc"}, nil, []string{"-e2e-processing-latency-percentile", "abc"}},
		{[]string{"--no-such-flag"}, nil, []string{"no-such-flag"}},
		{[]string{"stray"}, nil, []string{"stray"}},
		{[]string{"--config=" + garbled}, nil, []string{garbled}},
		{[]string{"--config=" + badValue}, nil, []string{badValue, "max_deflate_level", "high"}},
		{[]string{"--config=" + badRange}, nil, []string{"--max-deflate-level"}},
		{[]string{"--config=" + badTLS}, nil, []string{badTLS, "tls_required"}},
		{[]string{"--config=" + missing}, nil, []string{missing}},
		{nil, []string{"NSQD_MEM_QUEUE_SIZE=lots"}, []string{"NSQD_MEM_QUEUE_SIZE", "lots"}},
		{nil, []string{"NSQD_LOG_LEVEL=chatty"}, []string{"NSQD_LOG_LEVEL", "chatty"}},
	}
	for _, tt := range tests {
		_, err := loadConfig(tt.args, tt.environ)
		if err == nil {
			t.Errorf("loadConfig(%q, %q) succeeded, want an error", tt.args, tt.environ)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("loadConfig(%q, %q) error %q does not mention %q", tt.args, tt.environ, err, w)
			}
		}
		if tt.environ != nil {
			continue // run reads the real environment
		}
		var stdout, stderr bytes.Buffer
		if code := run(tt.args, &stdout, &stderr); code != 1 {
			t.Errorf("run(%q) = %d, want 1", tt.args, code)
		}
		if !strings.HasPrefix(stderr.String(), "nsqd: ") || !strings.Contains(stderr.String(), tt.want[0]) {
			t.Errorf("run(%q) stderr = %q, want an \"nsqd: \" line mentioning %q", tt.args, stderr.String(), tt.want[0])
		}
		if stdout.Len() != 0 {
			t.Errorf("run(%q) stdout = %q, want nothing", tt.args, stdout.String())
		}
	}
}

func TestInvalidReportsAll(t *testing.T) {
	_, err := loadConfig([]string{"--max-deflate-level=10", "--node-id=5000"}, nil)
	if err == nil {
		t.Fatal("loadConfig succeeded, want an error")
	}
	for _, w := range []string{"--max-deflate-level", "--node-id"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestVersion(t *testing.T) {
	want := version.String("nsqd") + "\n"
	if !strings.HasPrefix(want, "nsqd v1.3.0 ") {
		t.Fatalf("version.String(nsqd) = %q, want it to start with %q", want, "nsqd v1.3.0 ")
	}
	for _, args := range [][]string{
		{"--version"},
		{"-version"},
		{"--version", "--max-deflate-level=10"}, // the version is printed whatever else is wrong
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 0 {
			t.Errorf("run(%q) = %d, want 0 (stderr %q)", args, code, stderr.String())
		}
		if stdout.String() != want {
			t.Errorf("run(%q) stdout = %q, want %q", args, stdout.String(), want)
		}
		if stderr.Len() != 0 {
			t.Errorf("run(%q) stderr = %q, want nothing", args, stderr.String())
		}
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{arg}, &stdout, &stderr); code != 0 {
			t.Errorf("run(%q) = %d, want 0", arg, code)
		}
		for _, w := range []string{"Usage: nsqd", "-mem-queue-size", "NSQD_", "(default 10000)", "-tls-min-version version"} {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("run(%q) stderr does not contain %q:\n%s", arg, w, stderr.String())
			}
		}
	}
}

// TestServe starts nsqd on loopback ports with an already-cancelled
// context: it should start, shut down at once and exit 0.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	args := []string{
		"--tcp-address=127.0.0.1:0",
		"--http-address=127.0.0.1:0",
		"--https-address=127.0.0.1:0",
		"--data-path=" + t.TempDir(),
		"--log-level=error",
	}
	var stdout, stderr bytes.Buffer
	code := serve(ctx, args, nil, &stdout, &stderr)
	if strings.Contains(stderr.String(), "not implemented yet") {
		t.Skip("nsqd.New is not implemented yet")
	}
	if code != 0 {
		t.Errorf("serve(%q) = %d, want 0; stderr:\n%s", args, code, stderr.String())
	}
}
