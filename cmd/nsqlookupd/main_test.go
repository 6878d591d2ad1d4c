package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/logging"
	"github.com/nsqx/nsqx/internal/version"
	"github.com/nsqx/nsqx/nsqlookupd"
)

const testTimeout = 10 * time.Second

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nsqlookupd.cfg")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	opts, err := parse(nil, nil)
	if err != nil {
		t.Fatalf("parse(nil) = %v", err)
	}
	host, _ := os.Hostname()
	want := nsqlookupd.Config{
		TCPAddress:              "0.0.0.0:4160",
		HTTPAddress:             "0.0.0.0:4161",
		BroadcastAddress:        host,
		InactiveProducerTimeout: 300 * time.Second,
		TombstoneLifetime:       45 * time.Second,
		HandshakeTimeout:        nsqlookupd.DefaultConfig().HandshakeTimeout,
		IdleTimeout:             nsqlookupd.DefaultConfig().IdleTimeout,
	}
	if *opts.cfg != want {
		t.Errorf("parse(nil) config = %+v, want %+v", *opts.cfg, want)
	}
	if opts.logLevel != slog.LevelInfo || opts.logPrefix != "[nsqlookupd] " || opts.version {
		t.Errorf("parse(nil) = level %v, prefix %q, version %v; want INFO, %q, false",
			opts.logLevel, opts.logPrefix, opts.version, "[nsqlookupd] ")
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		arg   string
		check func(o *options) bool
	}{
		{"--tcp-address=127.0.0.1:1", func(o *options) bool { return o.cfg.TCPAddress == "127.0.0.1:1" }},
		{"--http-address=127.0.0.1:2", func(o *options) bool { return o.cfg.HTTPAddress == "127.0.0.1:2" }},
		{"--broadcast-address=lookupd-0", func(o *options) bool { return o.cfg.BroadcastAddress == "lookupd-0" }},
		{"--inactive-producer-timeout=90s", func(o *options) bool { return o.cfg.InactiveProducerTimeout == 90*time.Second }},
		{"--inactive-producer-timeout=1500", func(o *options) bool { return o.cfg.InactiveProducerTimeout == 1500*time.Millisecond }},
		{"--inactive-producer-timeout=0", func(o *options) bool { return o.cfg.InactiveProducerTimeout == 0 }},
		{"--tombstone-lifetime=-1s", func(o *options) bool { return o.cfg.TombstoneLifetime == -time.Second }},
		{"--tombstone-lifetime=1m", func(o *options) bool { return o.cfg.TombstoneLifetime == time.Minute }},
		{"--tombstone-lifetime=0", func(o *options) bool { return o.cfg.TombstoneLifetime == 0 }},
		{"--log-level=debug", func(o *options) bool { return o.logLevel == slog.LevelDebug }},
		{"--log-level=WARN", func(o *options) bool { return o.logLevel == slog.LevelWarn }},
		{"--log-level=error", func(o *options) bool { return o.logLevel == slog.LevelError }},
		{"--log-level=fatal", func(o *options) bool { return o.logLevel == logging.LevelFatal }},
		{"--log-format=json", func(o *options) bool { return o.logFormat == "json" }},
		{"--log-prefix=", func(o *options) bool { return o.logPrefix == "" }},
		{"-log-prefix=[x] ", func(o *options) bool { return o.logPrefix == "[x] " }},
		{"--verbose", func(o *options) bool { return true }},
		{"--version", func(o *options) bool { return o.version }},
	}
	for _, tc := range tests {
		t.Run(tc.arg, func(t *testing.T) {
			opts, err := parse([]string{tc.arg}, nil)
			if err != nil {
				t.Fatalf("parse(%q) = %v", tc.arg, err)
			}
			if !tc.check(opts) {
				t.Errorf("parse(%q) did not set its option: %+v", tc.arg, *opts.cfg)
			}
		})
	}
}

// TestPrecedence checks flag > environment > config file > default.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "tcp_address = \"file:1\"\ntombstone_lifetime = \"3s\"\nlog_prefix = \"file \"\n")
	tests := []struct {
		name       string
		args       []string
		env        []string
		wantTCP    string
		wantTomb   time.Duration
		wantPrefix string
	}{
		{"default", nil, nil, "0.0.0.0:4160", 45 * time.Second, "[nsqlookupd] "},
		{"file", []string{"--config=" + file}, nil, "file:1", 3 * time.Second, "file "},
		{"config from env", nil, []string{"NSQLOOKUPD_CONFIG=" + file}, "file:1", 3 * time.Second, "file "},
		{"env over file", []string{"--config=" + file},
			[]string{"NSQLOOKUPD_TCP_ADDRESS=env:1", "NSQLOOKUPD_TOMBSTONE_LIFETIME=4s"}, "env:1", 4 * time.Second, "file "},
		{"flag over env", []string{"--config=" + file, "--tcp-address=flag:1"},
			[]string{"NSQLOOKUPD_TCP_ADDRESS=env:1", "NSQLOOKUPD_LOG_PREFIX=env "}, "flag:1", 3 * time.Second, "env "},
		{"other prefixes ignored", nil, []string{"NSQD_TCP_ADDRESS=nsqd:1", "TCP_ADDRESS=x:1"}, "0.0.0.0:4160", 45 * time.Second, "[nsqlookupd] "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := parse(tc.args, tc.env)
			if err != nil {
				t.Fatalf("parse(%q, %q) = %v", tc.args, tc.env, err)
			}
			if opts.cfg.TCPAddress != tc.wantTCP || opts.cfg.TombstoneLifetime != tc.wantTomb || opts.logPrefix != tc.wantPrefix {
				t.Errorf("parse(%q, %q) = tcp %q, tombstone %v, prefix %q; want %q, %v, %q", tc.args, tc.env,
					opts.cfg.TCPAddress, opts.cfg.TombstoneLifetime, opts.logPrefix, tc.wantTCP, tc.wantTomb, tc.wantPrefix)
			}
		})
	}
}

// TestConfigFileNSQ reads a config file written for NSQ's nsqlookupd,
// with a duration as an integer, which NSQ reads as milliseconds.
func TestConfigFileNSQ(t *testing.T) {
	file := writeFile(t, `
log_level = "warn"
log_prefix = "[lookupd] "
verbose = false
tcp_address = "127.0.0.1:14160"
http_address = "127.0.0.1:14161"
broadcast_address = "lookupd-1.example"
inactive_producer_timeout = 120000
tombstone_lifetime = "30s"
`)
	opts, err := parse([]string{"--config", file}, nil)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	c := opts.cfg
	if c.TCPAddress != "127.0.0.1:14160" || c.HTTPAddress != "127.0.0.1:14161" || c.BroadcastAddress != "lookupd-1.example" ||
		c.InactiveProducerTimeout != 2*time.Minute || c.TombstoneLifetime != 30*time.Second ||
		opts.logLevel != slog.LevelWarn || opts.logPrefix != "[lookupd] " {
		t.Errorf("config file gave %+v, level %v, prefix %q", *c, opts.logLevel, opts.logPrefix)
	}
}

func TestInvalid(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.cfg")
	tests := []struct {
		name string
		args []string
		env  []string
		want string // in stderr
	}{
		{"bad duration", []string{"--tombstone-lifetime=soon"}, nil, `invalid value "soon" for flag -tombstone-lifetime`},
		{"bad level", []string{"--log-level=loud"}, nil, `invalid value "loud" for flag -log-level`},
		{"empty tcp address", []string{"--tcp-address="}, nil, "--tcp-address: must not be empty"},
		{"empty http address", []string{"--http-address="}, nil, "--http-address: must not be empty"},
		{"unknown flag", []string{"--data-path=/x"}, nil, "flag provided but not defined: -data-path"},
		{"positional argument", []string{"extra"}, nil, `unexpected argument "extra"`},
		{"bad env value", nil, []string{"NSQLOOKUPD_INACTIVE_PRODUCER_TIMEOUT=never"}, "NSQLOOKUPD_INACTIVE_PRODUCER_TIMEOUT"},
		{"missing config file", []string{"--config=" + missing}, nil, "missing.cfg"},
		{"bad file value", []string{"--config=" + writeFile(t, "tombstone_lifetime = \"x\"\n")}, nil, "tombstone_lifetime"},
		{"bad toml", []string{"--config=" + writeFile(t, "tcp_address = \n")}, nil, "nsqlookupd.cfg"},
		{"listen fails", []string{"--tcp-address=256.0.0.1:1"}, nil, "listen --tcp-address 256.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			args := append([]string{"--http-address=127.0.0.1:0"}, tc.args...)
			if code := serve(ctx, args, tc.env, &stdout, &stderr); code != 1 {
				t.Errorf("serve(%q, %q) = %d, want 1", args, tc.env, code)
			}
			if !strings.Contains(stderr.String(), tc.want) || !strings.HasPrefix(stderr.String(), "nsqlookupd: ") {
				t.Errorf("serve(%q, %q) stderr = %q, want a line containing %q", args, tc.env, stderr.String(), tc.want)
			}
		})
	}
}

// TestUnknownFileKey: a config file key that names no flag is ignored, as
// NSQ ignores it, and named in a warning.
func TestUnknownFileKey(t *testing.T) {
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	args := []string{"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0", "--config=" + writeFile(t, "mem_queue_size = 1\ntombstone_lifetime = \"10s\"\n")}
	if code := serve(ctx, args, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("serve(%q) = %d, want 0; stderr %q", args, code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "level=WARN") || !strings.Contains(stderr.String(), "options=mem_queue_size") {
		t.Errorf("stderr = %q, want a warning naming mem_queue_size", stderr.String())
	}
}

func TestVersion(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
	}{
		{"flag", []string{"--version"}, nil},
		{"with an invalid option", []string{"--version", "--tcp-address="}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := serve(context.Background(), tc.args, tc.env, &stdout, &stderr); code != 0 {
				t.Errorf("serve(%q) = %d, want 0 (stderr %q)", tc.args, code, stderr.String())
			}
			if want := version.String("nsqlookupd") + "\n"; stdout.String() != want {
				t.Errorf("serve(%q) stdout = %q, want %q", tc.args, stdout.String(), want)
			}
		})
	}
	// The environment cannot ask for the version (it would stop a server
	// from starting), so this one starts and stops normally.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"}
	if code := serve(ctx, args, []string{"NSQLOOKUPD_VERSION=true"}, &stdout, &stderr); code != 0 || stdout.Len() != 0 {
		t.Errorf("serve with NSQLOOKUPD_VERSION=true = %d, stdout %q; want 0 and no version", code, stdout.String())
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := serve(context.Background(), []string{"-h"}, nil, &stdout, &stderr); code != 0 {
		t.Errorf("serve(-h) = %d, want 0", code)
	}
	for _, flag := range []string{"-config", "-log-level", "-log-prefix", "-log-format", "-verbose", "-version", "-tcp-address",
		"-http-address", "-broadcast-address", "-inactive-producer-timeout", "-tombstone-lifetime", "NSQLOOKUPD_"} {
		if !strings.Contains(stdout.String(), flag) {
			t.Errorf("usage lacks %s:\n%s", flag, stdout.String())
		}
	}
	if !strings.Contains(stdout.String(), "(default info)") {
		t.Errorf("usage does not show the --log-level default:\n%s", stdout.String())
	}
}

func TestLogger(t *testing.T) {
	tests := []struct {
		level  slog.Level
		prefix string
		want   []string // level names logged, in order
	}{
		{slog.LevelDebug, "[nsqlookupd] ", []string{"DEBUG", "INFO", "WARN", "ERROR"}},
		{slog.LevelInfo, "", []string{"INFO", "WARN", "ERROR"}},
		{slog.LevelError, "p ", []string{"ERROR"}},
		{logging.LevelFatal, "p ", nil},
	}
	for _, tc := range tests {
		t.Run(tc.level.String()+"/"+tc.prefix, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := logging.New(&buf, logging.Options{Level: tc.level, Prefix: tc.prefix})
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("d")
			log.Info("i")
			log.Warn("w")
			log.Error("e")
			var got []string
			for line := range strings.Lines(buf.String()) {
				if !strings.HasPrefix(line, tc.prefix+"time=") {
					t.Errorf("line %q lacks prefix %q", line, tc.prefix)
				}
				m := regexp.MustCompile(`level=(\w+)`).FindStringSubmatch(line)
				if m == nil {
					t.Fatalf("line %q has no level", line)
				}
				got = append(got, m[1])
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("logged levels %v, want %v", got, tc.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the server's log writes and the
// test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitForLog polls the log until re matches, returning its first group.
func waitForLog(t *testing.T, log *syncBuffer, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		if m := re.FindStringSubmatch(log.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("log never matched %s:\n%s", re, log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestServeUntilCancelled runs the server, checks both listeners answer,
// and checks that ending the context shuts it down with exit code 0.
func TestServeUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout io.Writer = io.Discard
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	args := []string{"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0", "--log-prefix=[t] ", "--broadcast-address=b.test"}
	go func() { done <- serve(ctx, args, nil, stdout, stderr) }() // ended by cancel below

	httpAddr := waitForLog(t, stderr, regexp.MustCompile(`(?m)^\[t\] .*msg="HTTP listening" addr=(\S+)`))
	tcpAddr := waitForLog(t, stderr, regexp.MustCompile(`(?m)^\[t\] .*msg="TCP listening" addr=(\S+)`))
	checkServing(t, httpAddr, tcpAddr)

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve = %d after cancel, want 0; log:\n%s", code, stderr.String())
		}
	case <-time.After(testTimeout):
		t.Fatal("serve did not return after cancel")
	}
	if _, err := net.DialTimeout("tcp", tcpAddr, time.Second); err == nil {
		t.Errorf("TCP listener %s still open after shutdown", tcpAddr)
	}
}

// checkServing checks that HTTP answers /ping and TCP speaks V1.
func checkServing(t *testing.T, httpAddr, tcpAddr string) {
	t.Helper()
	client := &http.Client{Timeout: testTimeout}
	res, err := client.Get("http://" + httpAddr + "/ping")
	if err != nil {
		t.Fatalf("GET /ping: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "OK" {
		t.Errorf("GET /ping = %d %q, want 200 OK", res.StatusCode, body)
	}
	conn, err := net.DialTimeout("tcp", tcpAddr, testTimeout)
	if err != nil {
		t.Fatalf("dial TCP: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := conn.Write([]byte("  V1PING\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "\x00\x00\x00\x02OK" {
		t.Errorf("PING = %q, %v; want size 2 and OK", got, err)
	}
}
