package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/internal/toolflags/tooltest"
	"github.com/nsqx/nsqx/nsqd"
)

func TestFlags(t *testing.T) {
	src := "--nsqd-tcp-address=127.0.0.1:1"
	post := "--post=http://127.0.0.1:1/"
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // regexp
		stderr string // regexp
	}{
		{"help", []string{"-h"}, 0, `(?s)^Usage: nsq_to_http .*\n  -channel channel\n.*\(default "nsq_to_http"\).*\n  -content-type string\n.*\(default "application/octet-stream"\).*\n  -http-client-connect-timeout duration\n.*\(default 2s\).*\n  -http-client-request-timeout duration\n.*\(default 20s\).*\n  -mode value\n.*\(default hostpool\).*\n  -n int\n.*\(default 100\).*\n  -sample fraction\n.*\(default 1\).*\n  -status-every int\n.*\(default 250\)`, `^$`},
		{"version", []string{"--version"}, 0, `^nsq_to_http v1\.3\.0 \(nsqx `, `^$`},
		{"no topic", []string{src, post}, 2, `^$`, `--topic and --channel are required`},
		{"no url", []string{src, "--topic=t"}, 2, `^$`, `--get or --post required`},
		{"both urls", []string{src, "--topic=t", post, "--get=http://x/%s"}, 2, `^$`, `use --get or --post, not both`},
		{"get without %s", []string{src, "--topic=t", "--get=http://x/"}, 2, `^$`, `must contain %s exactly once`},
		{"not http", []string{src, "--topic=t", "--post=ftp://x/"}, 2, `^$`, `not an http:// or https:// URL`},
		{"bad header", []string{src, "--topic=t", post, "--header=nocolon"}, 2, `^$`, `--header "nocolon": want key:value`},
		{"content-type with get", []string{src, "--topic=t", "--get=http://x/%s", "--content-type=text/plain"}, 2, `^$`, `--content-type only used with --post`},
		{"sample", []string{src, "--topic=t", post, "--sample=1.5"}, 2, `^$`, `--sample must be between 0.0 and 1.0`},
		{"mode", []string{src, "--topic=t", post, "--mode=all"}, 2, `^$`, `unknown mode "all"`},
		{"no source", []string{"--topic=t", post}, 2, `^$`, `--nsqd-tcp-address or --lookupd-http-address required`},
		{"unreachable", []string{src, "--topic=t", post}, 1, `^$`, `connect to nsqd`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := tooltest.Exec(t, run, nil, tt.args...)
			if code != tt.code {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tt.args, code, tt.code, stderr)
			}
			if !regexp.MustCompile(tt.stdout).MatchString(stdout) {
				t.Errorf("run(%q) stdout = %q, want match for %q", tt.args, stdout, tt.stdout)
			}
			if !regexp.MustCompile(tt.stderr).MatchString(stderr) {
				t.Errorf("run(%q) stderr = %q, want match for %q", tt.args, stderr, tt.stderr)
			}
		})
	}
}

// request is what an endpoint saw.
type request struct {
	method, body, query, contentType, custom, userAgent string
}

// endpoint is a test HTTP server that records requests and answers with
// status(body, attempt), attempt counting from 1 per distinct body.
type endpoint struct {
	*httptest.Server
	status func(body string, attempt int) int

	mu       sync.Mutex
	ok       []request // requests answered 2xx
	attempts map[string]int
}

func newEndpoint(t *testing.T, status func(body string, attempt int) int) *endpoint {
	e := &endpoint{status: status, attempts: map[string]int{}}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req := request{r.Method, string(b), r.URL.Query().Get("data"), r.Header.Get("Content-Type"), r.Header.Get("X-Custom"), r.Header.Get("User-Agent")}
		key := req.body + req.query
		e.mu.Lock()
		e.attempts[key]++
		code := e.status(key, e.attempts[key])
		if code/100 == 2 {
			e.ok = append(e.ok, req)
		}
		e.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(e.Close)
	return e
}

func ok(string, int) int { return http.StatusOK }

func (e *endpoint) delivered() []request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.ok)
}

func (e *endpoint) waitDelivered(t *testing.T, n int) []request {
	t.Helper()
	nsqtest.Eventually(t, tooltest.Timeout, fmt.Sprintf("%d deliveries", n), func() bool { return len(e.delivered()) >= n })
	return e.delivered()
}

// channelState returns a channel's depth, its in-flight and deferred
// messages together, and its requeue count.
func channelState(n *nsqtest.NSQD, topic, channel string) (depth int64, held int, requeued uint64) {
	s := n.Stats(nsqd.StatsFilter{Topic: topic, Channel: channel})
	for _, tp := range s.Topics {
		for _, c := range tp.Channels {
			if tp.TopicName == topic && c.ChannelName == channel {
				return c.Depth, c.InFlightCount + c.DeferredCount, c.RequeueCount
			}
		}
	}
	return -1, -1, 0
}

func waitDrained(t *testing.T, n *nsqtest.NSQD, topic string) {
	t.Helper()
	nsqtest.Eventually(t, tooltest.Timeout, topic+" drained", func() bool {
		d, f, _ := channelState(n, topic, "nsq_to_http")
		return d == 0 && f == 0
	})
}

func publish(t *testing.T, n *nsqtest.NSQD, topic string, bodies ...string) {
	tooltest.CreateChannel(t, n.TCPAddr, topic, "nsq_to_http")
	var bs [][]byte
	for _, b := range bodies {
		bs = append(bs, []byte(b))
	}
	tooltest.Publish(t, n.TCPAddr, topic, bs...)
}

func bodies(prefix string, n int) []string {
	var s []string
	for i := range n {
		s = append(s, fmt.Sprintf("%s %d & é/?=%%s", prefix, i))
	}
	return s
}

// TestPost delivers every message once as a POST body, with the headers.
func TestPost(t *testing.T) {
	n := tooltest.StartNSQD(t)
	e := newEndpoint(t, ok)
	want := bodies("post", 200)
	publish(t, n, "post", want...)
	r := tooltest.Start(t, run, nil, "--nsqd-tcp-address="+n.TCPAddr, "--topic=post",
		"--post="+e.URL+"/in", "--content-type=text/plain", "--header=X-Custom: yes", "--status-every=50")
	got := e.waitDelivered(t, len(want))
	waitDrained(t, n, "post")
	if code := r.Stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var gotBodies []string
	for _, req := range got {
		gotBodies = append(gotBodies, req.body)
		if req.method != "POST" || req.contentType != "text/plain" || req.custom != "yes" || req.userAgent != "nsq_to_http v1.3.0" {
			t.Errorf("request %+v: want POST, text/plain, X-Custom yes, nsq_to_http v1.3.0", req)
			break
		}
	}
	slices.Sort(gotBodies)
	slices.Sort(want)
	if !slices.Equal(gotBodies, want) {
		t.Errorf("delivered %d bodies, want each of the %d messages once", len(gotBodies), len(want))
	}
	if !strings.Contains(r.Stderr.String(), `msg=status dest=aggregate requests=200`) {
		t.Errorf("no status line for 200 requests in the log:\n%s", r.Stderr)
	}
}

// TestGet puts the escaped message into the URL.
func TestGet(t *testing.T) {
	n := tooltest.StartNSQD(t)
	e := newEndpoint(t, ok)
	want := bodies("get", 20)
	publish(t, n, "get", want...)
	r := tooltest.Start(t, run, nil, "--nsqd-tcp-address="+n.TCPAddr, "--topic=get", "--get="+e.URL+"/hit?data=%s&x=%7e")
	got := e.waitDelivered(t, len(want))
	waitDrained(t, n, "get")
	if code := r.Stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var queries []string
	for _, req := range got {
		if req.method != "GET" || req.body != "" {
			t.Errorf("request %+v, want a GET without body", req)
		}
		queries = append(queries, req.query)
	}
	slices.Sort(queries)
	slices.Sort(want)
	if !slices.Equal(queries, want) {
		t.Errorf("GET data = %q, want %q", queries, want)
	}
}

// TestRequeue: an endpoint that fails the first two attempts of every
// message still gets each one, and nsqd counts the requeues.
func TestRequeue(t *testing.T) {
	n := tooltest.StartNSQD(t)
	e := newEndpoint(t, func(_ string, attempt int) int {
		if attempt <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	want := bodies("requeue", 10)
	publish(t, n, "requeue", want...)
	r := tooltest.Start(t, run, nil, "--nsqd-tcp-address="+n.TCPAddr, "--topic=requeue", "--post="+e.URL,
		"--consumer-opt=default_requeue_delay,0", "--consumer-opt=max_backoff_duration,0")
	got := e.waitDelivered(t, len(want))
	waitDrained(t, n, "requeue")
	if code := r.Stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if len(got) != len(want) {
		t.Errorf("%d successful deliveries, want %d", len(got), len(want))
	}
	if _, _, req := channelState(n, "requeue", "nsq_to_http"); req != 20 {
		t.Errorf("requeue count %d, want 20 (two per message)", req)
	}
}

// TestModes spreads messages over two endpoints in round-robin mode and
// routes around a failing one in hostpool mode.
func TestModes(t *testing.T) {
	n := tooltest.StartNSQD(t)
	a, b := newEndpoint(t, ok), newEndpoint(t, ok)
	want := bodies("rr", 10)
	publish(t, n, "rr", want...)
	r := tooltest.Start(t, run, nil, "--nsqd-tcp-address="+n.TCPAddr, "--topic=rr",
		"--post="+a.URL, "--post="+b.URL, "--mode=round-robin", "-n=1")
	waitDrained(t, n, "rr")
	r.Stop(t)
	if na, nb := len(a.delivered()), len(b.delivered()); na != 5 || nb != 5 {
		t.Errorf("round-robin: %d and %d requests, want 5 and 5", na, nb)
	}

	bad := newEndpoint(t, func(string, int) int { return http.StatusInternalServerError })
	good := newEndpoint(t, ok)
	want = bodies("pool", 50)
	publish(t, n, "pool", want...)
	r = tooltest.Start(t, run, nil, "--nsqd-tcp-address="+n.TCPAddr, "--topic=pool",
		"--post="+bad.URL, "--post="+good.URL, "--mode=hostpool", "-n=1",
		"--consumer-opt=default_requeue_delay,0", "--consumer-opt=max_backoff_duration,0")
	good.waitDelivered(t, len(want))
	waitDrained(t, n, "pool")
	r.Stop(t)
	bad.mu.Lock()
	failed := len(bad.attempts)
	bad.mu.Unlock()
	if failed > 1 {
		t.Errorf("hostpool sent %d messages to the failing endpoint, want at most 1 before it is left out", failed)
	}
}

// TestSampleZero finishes every message without sending it.
func TestSampleZero(t *testing.T) {
	n := tooltest.StartNSQD(t)
	e := newEndpoint(t, ok)
	publish(t, n, "sample", bodies("sample", 20)...)
	r := tooltest.Start(t, run, nil, "--nsqd-tcp-address="+n.TCPAddr, "--topic=sample", "--post="+e.URL, "--sample=0")
	waitDrained(t, n, "sample")
	r.Stop(t)
	if got := e.delivered(); len(got) != 0 {
		t.Errorf("%d requests with --sample=0, want none", len(got))
	}
}
