package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/version"
	"github.com/nsqx/nsqx/nsqadmin"
)

const testTimeout = 10 * time.Second

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nsqadmin.cfg")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	opts, err := parse([]string{"--lookupd-http-address=127.0.0.1:4161"}, nil)
	if err != nil {
		t.Fatalf("parse = %v", err)
	}
	c := opts.cfg
	want := nsqadmin.DefaultConfig()
	if c.HTTPAddress != "0.0.0.0:4171" || c.BasePath != "/" || c.StatsdPrefix != "nsq.%s" ||
		c.StatsdCounterFormat != "stats.counters.%s.count" || c.StatsdGaugeFormat != "stats.gauges.%s" ||
		c.StatsdInterval != 60*time.Second || c.HTTPClientConnectTimeout != 2*time.Second ||
		c.HTTPClientRequestTimeout != 5*time.Second || c.AllowConfigFromCIDR != "127.0.0.1/8" ||
		c.ACLHTTPHeader != "X-Forwarded-User" || len(c.AdminUsers) != 0 || c.GraphiteURL != "" ||
		c.ProxyGraphite || c.NotificationHTTPEndpoint != "" || c.HTTPClientTLSInsecureSkipVerify {
		t.Errorf("defaults = %+v, want NSQ's (%+v)", *c, *want)
	}
	if c.LogLevel.Level() != slog.LevelInfo || opts.logPrefix != "[nsqadmin] " || opts.version {
		t.Errorf("level %v, prefix %q, version %v", c.LogLevel.Level(), opts.logPrefix, opts.version)
	}
}

func TestFlags(t *testing.T) {
	const l = "--lookupd-http-address=l:1"
	tests := []struct {
		args  []string
		check func(o *options) bool
	}{
		{[]string{l, "--http-address=127.0.0.1:9"}, func(o *options) bool { return o.cfg.HTTPAddress == "127.0.0.1:9" }},
		{[]string{l, "--base-path=/admin"}, func(o *options) bool { return o.cfg.BasePath == "/admin" }},
		{[]string{l, "--lookupd-http-address=l:2", "--lookupd-http-address=l:3,l:4"}, func(o *options) bool {
			return reflect.DeepEqual(o.cfg.LookupdHTTPAddresses, []string{"l:1", "l:2", "l:3", "l:4"})
		}},
		{[]string{"--nsqd-http-address=n:1", "-nsqd-http-address", "n:2"}, func(o *options) bool {
			return reflect.DeepEqual(o.cfg.NSQDHTTPAddresses, []string{"n:1", "n:2"})
		}},
		{[]string{l, "--graphite-url=http://g:8080", "--proxy-graphite"}, func(o *options) bool {
			return o.cfg.GraphiteURL == "http://g:8080" && o.cfg.ProxyGraphite
		}},
		{[]string{l, "--statsd-prefix=p.%s", "--statsd-counter-format=c.%s", "--statsd-gauge-format=", "--statsd-interval=10s"}, func(o *options) bool {
			return o.cfg.StatsdPrefix == "p.%s" && o.cfg.StatsdCounterFormat == "c.%s" && o.cfg.StatsdGaugeFormat == "" && o.cfg.StatsdInterval == 10*time.Second
		}},
		{[]string{l, "--notification-http-endpoint=http://hook/x"}, func(o *options) bool { return o.cfg.NotificationHTTPEndpoint == "http://hook/x" }},
		{[]string{l, "--http-client-connect-timeout=1500", "--http-client-request-timeout=9s"}, func(o *options) bool {
			return o.cfg.HTTPClientConnectTimeout == 1500*time.Millisecond && o.cfg.HTTPClientRequestTimeout == 9*time.Second
		}},
		{[]string{l, "--http-client-tls-insecure-skip-verify", "--http-client-tls-root-ca-file=ca.pem", "--http-client-tls-cert=c.pem", "--http-client-tls-key=k.pem"}, func(o *options) bool {
			return o.cfg.HTTPClientTLSInsecureSkipVerify && o.cfg.HTTPClientTLSRootCAFile == "ca.pem" && o.cfg.HTTPClientTLSCert == "c.pem" && o.cfg.HTTPClientTLSKey == "k.pem"
		}},
		{[]string{l, "--allow-config-from-cidr=10.0.0.0/8"}, func(o *options) bool { return o.cfg.AllowConfigFromCIDR == "10.0.0.0/8" }},
		{[]string{l, "--http-client-auth-secret=s3"}, func(o *options) bool { return o.cfg.HTTPClientAuthSecret == "s3" }},
		{[]string{l, "--acl-http-header=X-User", "--admin-user=a", "--admin-user=b"}, func(o *options) bool {
			return o.cfg.ACLHTTPHeader == "X-User" && reflect.DeepEqual(o.cfg.AdminUsers, []string{"a", "b"})
		}},
		{[]string{l, "--dev-static-dir=/tmp/x"}, func(o *options) bool { return o.cfg.DevStaticDir == "/tmp/x" }},
		{[]string{l, "--log-level=debug"}, func(o *options) bool { return o.cfg.LogLevel.Level() == slog.LevelDebug }},
		{[]string{l, "--log-level=FATAL"}, func(o *options) bool { return o.cfg.LogLevel.Level() == nsqadmin.LevelFatal }},
		{[]string{l, "--log-prefix="}, func(o *options) bool { return o.logPrefix == "" }},
		{[]string{l, "--verbose"}, func(o *options) bool { return true }},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			opts, err := parse(tc.args, nil)
			if err != nil {
				t.Fatalf("parse(%q) = %v", tc.args, err)
			}
			if !tc.check(opts) {
				t.Errorf("parse(%q) did not set its option: %+v", tc.args, *opts.cfg)
			}
		})
	}
}

// TestPrecedence checks flag > environment > config file > default, and
// NSQ's TOML names of the repeatable flags.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, `nsqlookupd_http_addresses = ["file:1", "file:2"]
admin_users = ["fileadmin"]
http_address = "file:4171"
statsd_interval = 30000
log_level = "warn"
`)
	tests := []struct {
		name     string
		args     []string
		env      []string
		lookupds []string
		admins   []string
		addr     string
		level    slog.Level
	}{
		{"file", []string{"--config=" + file}, nil, []string{"file:1", "file:2"}, []string{"fileadmin"}, "file:4171", slog.LevelWarn},
		{"config from env", nil, []string{"NSQADMIN_CONFIG=" + file}, []string{"file:1", "file:2"}, []string{"fileadmin"}, "file:4171", slog.LevelWarn},
		{"env over file", []string{"--config=" + file},
			[]string{"NSQADMIN_LOOKUPD_HTTP_ADDRESS=env:1,env:2", "NSQADMIN_ADMIN_USER=envadmin", "NSQADMIN_LOG_LEVEL=error"},
			[]string{"env:1", "env:2"}, []string{"envadmin"}, "file:4171", slog.LevelError},
		{"flag over env", []string{"--config=" + file, "--lookupd-http-address=flag:1", "--http-address=flag:4171"},
			[]string{"NSQADMIN_LOOKUPD_HTTP_ADDRESS=env:1", "NSQADMIN_HTTP_ADDRESS=env:4171"},
			[]string{"flag:1"}, []string{"fileadmin"}, "flag:4171", slog.LevelWarn},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := parse(tc.args, tc.env)
			if err != nil {
				t.Fatalf("parse(%q, %q) = %v", tc.args, tc.env, err)
			}
			c := opts.cfg
			if !reflect.DeepEqual(c.LookupdHTTPAddresses, tc.lookupds) || !reflect.DeepEqual(c.AdminUsers, tc.admins) ||
				c.HTTPAddress != tc.addr || c.LogLevel.Level() != tc.level {
				t.Errorf("parse = lookupds %v admins %v addr %q level %v; want %v %v %q %v",
					c.LookupdHTTPAddresses, c.AdminUsers, c.HTTPAddress, c.LogLevel.Level(), tc.lookupds, tc.admins, tc.addr, tc.level)
			}
			if c.StatsdInterval != 30*time.Second {
				t.Errorf("statsd_interval = 30000 (ms) gave %v", c.StatsdInterval)
			}
		})
	}
	nsqdFile := writeFile(t, `nsqd_http_addresses = ["n:1"]`)
	opts, err := parse([]string{"--config=" + nsqdFile}, nil)
	if err != nil || !reflect.DeepEqual(opts.cfg.NSQDHTTPAddresses, []string{"n:1"}) {
		t.Errorf("nsqd_http_addresses from TOML = %v, %v", opts, err)
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		args []string
		env  []string
		want string
	}{
		{nil, nil, "--nsqd-http-address or --lookupd-http-address required"},
		{[]string{"--lookupd-http-address=l:1", "--nsqd-http-address=n:1"}, nil, "not both"},
		{[]string{"--lookupd-http-address=l:1"}, []string{"NSQADMIN_NSQD_HTTP_ADDRESS=n:1"}, "not both"},
		{[]string{"--lookupd-http-address=l:1", "--http-client-tls-cert=c.pem"}, nil, "must be given together"},
		{[]string{"--lookupd-http-address=l:1", "--allow-config-from-cidr=bad"}, nil, "--allow-config-from-cidr"},
		{[]string{"--lookupd-http-address=l:1", "--log-level=loud"}, nil, "unknown level"},
		{[]string{"--lookupd-http-address=l:1", "--statsd-interval=soon"}, nil, "statsd-interval"},
		{[]string{"--lookupd-http-address=l:1", "--no-such-flag"}, nil, "no-such-flag"},
		{[]string{"--lookupd-http-address=l:1", "stray"}, nil, "unexpected argument"},
		{[]string{"--config=" + "/nonexistent/nsqadmin.cfg"}, nil, "config file"},
	}
	for _, tc := range tests {
		_, err := parse(tc.args, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parse(%q, %q) = %v, want an error containing %q", tc.args, tc.env, err, tc.want)
		}
	}
	// The TOML key is NSQ's (lookupd_http_addresses); the flag name is
	// not a key, and an unknown key is ignored, as NSQ ignores it.
	bad := writeFile(t, "lookupd_http_address = [\"l:1\"]\n")
	if _, err := parse([]string{"--config=" + bad}, nil); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("a TOML key that is the flag name, not NSQ's alias: err = %v, want the address still missing", err)
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := serve(context.Background(), []string{"--version"}, nil, &out, &errOut); code != 0 {
		t.Errorf("--version exit = %d", code)
	}
	if got := strings.TrimSpace(out.String()); got != version.String("nsqadmin") {
		t.Errorf("--version printed %q", got)
	}
	out.Reset()
	if code := serve(context.Background(), []string{"-h"}, nil, &out, &errOut); code != 0 {
		t.Errorf("-h exit = %d", code)
	}
	for _, want := range []string{"Usage: nsqadmin", "-lookupd-http-address", "-admin-user", "-base-path", "NSQADMIN_"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	errOut.Reset()
	if code := serve(context.Background(), nil, nil, io.Discard, &errOut); code != 1 {
		t.Errorf("no addresses: exit = %d, want 1", code)
	}
	if !strings.HasPrefix(errOut.String(), "nsqadmin: ") {
		t.Errorf("error output = %q", errOut.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitForLog(t *testing.T, buf *syncBuffer, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(buf.String()); m != nil {
			return m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no log line matching %s in:\n%s", re, buf.String())
	return ""
}

// TestServe runs the server from the command line until its context ends,
// with the log prefix and a runtime log-level change.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	args := []string{"--http-address=127.0.0.1:0", "--nsqd-http-address=127.0.0.1:1", "--log-prefix=[adm] "}
	go func() { done <- serve(ctx, args, nil, io.Discard, stderr) }() // ended by cancel below
	addr := waitForLog(t, stderr, regexp.MustCompile(`msg="HTTP listening" addr=(\S+)`))
	resp, err := http.Get("http://" + addr + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "OK" {
		t.Errorf("/ping = %q", b)
	}
	req, _ := http.NewRequest("PUT", "http://"+addr+"/config/log_level", strings.NewReader("debug"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT /config/log_level = %v, %v", resp, err)
	}
	http.Get("http://" + addr + "/api/topics") // logs at debug level now
	waitForLog(t, stderr, regexp.MustCompile(`(level=DEBUG)`))
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve = %d after cancel, want 0; log:\n%s", code, stderr.String())
		}
	case <-time.After(testTimeout):
		t.Fatal("serve did not return after cancel")
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if !strings.HasPrefix(line, "[adm] ") {
			t.Errorf("log line without prefix: %q", line)
		}
	}
}
