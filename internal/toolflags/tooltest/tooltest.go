// Package tooltest runs the NSQ utilities in tests: a tool's run function
// in a goroutine with captured output, nsqlookupd next to nsqtest's nsqd,
// and go-nsq publishers and consumers to feed and check the tools.
package tooltest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
	"github.com/nsqx/nsqx/nsqlookupd"
)

// Timeout bounds every wait in the tools' tests.
const Timeout = 15 * time.Second

// RunFunc is a tool's run.
type RunFunc func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int

// Buffer is a bytes.Buffer safe for one writer and concurrent readers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Bytes returns a copy of the contents.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// Run is a tool running in the background.
type Run struct {
	Stdout, Stderr *Buffer
	cancel         context.CancelFunc
	done           chan int
	code           int
	finished       bool
}

// Start runs a tool with args and stdin (nil: empty) until it returns or
// Stop is called. The test fails if it is still running when the test
// ends.
func Start(t testing.TB, run RunFunc, stdin io.Reader, args ...string) *Run {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Run{Stdout: &Buffer{}, Stderr: &Buffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() { r.done <- run(ctx, args, stdin, r.Stdout, r.Stderr) }() // ended by Stop or the cleanup
	t.Cleanup(func() {
		if !r.finished {
			r.Stop(t)
		}
		if s := r.Stderr.String(); s != "" {
			t.Logf("stderr of %v:\n%s", args, s)
		}
	})
	return r
}

// Wait waits for the tool to return by itself and returns its exit code.
func (r *Run) Wait(t testing.TB) int {
	t.Helper()
	if r.finished {
		return r.code
	}
	select {
	case r.code = <-r.done:
		r.finished = true
		r.cancel()
		return r.code
	case <-time.After(Timeout):
		t.Fatalf("tool did not exit within %v; stderr:\n%s", Timeout, r.Stderr)
		return -1
	}
}

// Stop cancels the tool's context, as SIGINT would, and returns its exit
// code.
func (r *Run) Stop(t testing.TB) int {
	t.Helper()
	r.cancel()
	return r.Wait(t)
}

// Done reports whether the tool has returned, without waiting.
func (r *Run) Done() bool {
	if r.finished {
		return true
	}
	select {
	case r.code = <-r.done:
		r.finished = true
		return true
	default:
		return false
	}
}

// Exec runs a tool to completion and returns its exit code and output.
func Exec(t testing.TB, run RunFunc, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	r := Start(t, run, stdin, args...)
	code = r.Wait(t)
	return code, r.Stdout.String(), r.Stderr.String()
}

// StartNSQD starts an nsqd, registering with the lookupds at lookupdTCP.
func StartNSQD(t testing.TB, lookupdTCP ...string) *nsqtest.NSQD {
	t.Helper()
	return nsqtest.StartNSQD(t, func(c *nsqd.Config) { c.LookupdTCPAddrs = lookupdTCP })
}

// Lookupd is a running nsqlookupd.
type Lookupd struct {
	TCPAddr, HTTPAddr string
}

// StartLookupd starts an nsqlookupd on loopback until the test ends.
func StartLookupd(t testing.TB) *Lookupd {
	t.Helper()
	cfg := nsqlookupd.DefaultConfig()
	cfg.TCPAddress = "127.0.0.1:0"
	cfg.HTTPAddress = "127.0.0.1:0"
	cfg.BroadcastAddress = "127.0.0.1"
	cfg.Logger = nsqtest.Logger(t)
	s, err := nsqlookupd.New(cfg)
	if err != nil {
		t.Fatalf("nsqlookupd.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }() // stopped by the cleanup
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("nsqlookupd Run: %v", err)
			}
		case <-time.After(Timeout):
			t.Errorf("nsqlookupd did not stop")
		}
	})
	return &Lookupd{TCPAddr: s.TCPAddr().String(), HTTPAddr: s.HTTPAddr().String()}
}

// WaitLookup waits until the lookupd lists a producer of topic.
func (l *Lookupd) WaitLookup(t testing.TB, topic string) {
	t.Helper()
	nsqtest.Eventually(t, Timeout, "lookupd to list a producer of "+topic, func() bool {
		resp, err := http.Get("http://" + l.HTTPAddr + "/lookup?topic=" + topic)
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200 && strings.Contains(string(body), `"broadcast_address"`)
	})
}

// WaitChannel waits until the lookupd lists a channel of topic matching
// re and returns its name.
func (l *Lookupd) WaitChannel(t testing.TB, topic string, re *regexp.Regexp) string {
	t.Helper()
	var name string
	nsqtest.Eventually(t, Timeout, "lookupd to list a channel of "+topic+" matching "+re.String(), func() bool {
		resp, err := http.Get("http://" + l.HTTPAddr + "/channels?topic=" + topic)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Channels []string `json:"channels"`
		}
		if json.NewDecoder(resp.Body).Decode(&body) != nil {
			return false
		}
		for _, c := range body.Channels {
			if re.MatchString(c) {
				name = c
				return true
			}
		}
		return false
	})
	return name
}

// nsqLogger sends go-nsq's warnings to the test output.
func nsqLogger(t testing.TB) *log.Logger { return log.New(t.Output(), "go-nsq ", 0) }

// Publish publishes bodies to topic on the nsqd at tcpAddr, in order.
func Publish(t testing.TB, tcpAddr, topic string, bodies ...[]byte) {
	t.Helper()
	p, err := nsq.NewProducer(tcpAddr, nsq.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	p.SetLogger(nsqLogger(t), nsq.LogLevelWarning)
	defer p.Stop()
	if len(bodies) == 0 {
		return
	}
	const batch = 500
	for len(bodies) > 0 {
		n := min(batch, len(bodies))
		if err := p.MultiPublish(topic, bodies[:n]); err != nil {
			t.Fatalf("publish to %s: %v", topic, err)
		}
		bodies = bodies[n:]
	}
}

// CreateChannel makes topic and channel exist on the nsqd at tcpAddr by
// subscribing to it briefly without taking any message.
func CreateChannel(t testing.TB, tcpAddr, topic, channel string) {
	t.Helper()
	cfg := nsq.NewConfig()
	cfg.MaxInFlight = 0
	c, err := nsq.NewConsumer(topic, channel, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(nsqLogger(t), nsq.LogLevelError)
	c.AddHandler(nsq.HandlerFunc(func(*nsq.Message) error { return nil }))
	if err := c.ConnectToNSQD(tcpAddr); err != nil {
		t.Fatalf("subscribe %s/%s: %v", topic, channel, err)
	}
	c.Stop()
	select {
	case <-c.StopChan:
	case <-time.After(Timeout):
		t.Fatalf("consumer did not stop")
	}
}

// Consume reads n messages of topic on channel from the nsqd at tcpAddr,
// finishing each, and fails the test if they do not arrive in time.
// Messages beyond the n-th are requeued.
func Consume(t testing.TB, tcpAddr, topic, channel string, n int) [][]byte {
	t.Helper()
	cfg := nsq.NewConfig()
	cfg.MaxInFlight = min(n, 100)
	c, err := nsq.NewConsumer(topic, channel, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(nsqLogger(t), nsq.LogLevelWarning)
	var mu sync.Mutex
	var got [][]byte
	enough := make(chan struct{})
	c.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) >= n {
			m.DisableAutoResponse()
			m.RequeueWithoutBackoff(0)
			return nil
		}
		got = append(got, bytes.Clone(m.Body))
		if len(got) == n {
			close(enough)
		}
		return nil
	}))
	if err := c.ConnectToNSQD(tcpAddr); err != nil {
		t.Fatal(err)
	}
	select {
	case <-enough:
	case <-time.After(Timeout):
		mu.Lock()
		t.Errorf("got %d of %d messages from %s/%s", len(got), n, topic, channel)
		mu.Unlock()
	}
	c.ChangeMaxInFlight(0)
	c.Stop()
	<-c.StopChan
	mu.Lock()
	defer mu.Unlock()
	return got
}
