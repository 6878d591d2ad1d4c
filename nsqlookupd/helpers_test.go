package nsqlookupd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// testTimeout bounds every wait in these tests; nothing should come close.
const testTimeout = 10 * time.Second

// testConfig is a config for a server on loopback ports chosen by the
// kernel, logging to the test's output.
func testConfig(t *testing.T) *Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.TCPAddress = "127.0.0.1:0"
	cfg.HTTPAddress = "127.0.0.1:0"
	cfg.BroadcastAddress = "lookupd.test"
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	return cfg
}

// startServer runs a server until the test ends. clock, when not nil,
// replaces the registry's time source.
func startServer(t *testing.T, cfg *Config, clock *fakeClock) *Server {
	t.Helper()
	if cfg == nil {
		cfg = testConfig(t)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if clock != nil {
		s.reg.now = clock.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }() // stopped by the cleanup below
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(testTimeout):
			t.Errorf("Run did not return after cancel")
		}
	})
	return s
}

// fakeClock is a settable time source for the registry.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// resp encodes one V1 response as the server sends it.
func resp(data string) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(len(data)))
	return string(b[:]) + data
}

// sized prefixes body with its int32 length, as IDENTIFY's body is sent.
func sized(n int32, body string) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(n))
	return string(b[:]) + body
}

// identifyCmd is a complete IDENTIFY command with body.
func identifyCmd(body string) string { return "IDENTIFY\n" + sized(int32(len(body)), body) }

// peerBody is an IDENTIFY body as nsqd sends it.
func peerBody(broadcast string, httpPort int) string {
	return fmt.Sprintf(`{"version":"1.3.0","tcp_port":4150,"http_port":%d,"hostname":"host-%s",`+
		`"broadcast_address":%q,"topology_zone":"z1","topology_region":"r1"}`, httpPort, broadcast, broadcast)
}

// wantReply is the IDENTIFY reply s should send, built independently of
// the server's code.
func wantReply(t *testing.T, s *Server) string {
	t.Helper()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`{"broadcast_address":"lookupd.test","hostname":%q,"http_port":%d,"tcp_port":%d,"version":"1.3.0"}`,
		host, s.HTTPAddr().(*net.TCPAddr).Port, s.TCPAddr().(*net.TCPAddr).Port)
}

// v1Client speaks raw protocol V1.
type v1Client struct {
	t    *testing.T
	conn *net.TCPConn
	r    *bufio.Reader
}

func newReader(conn net.Conn) *bufio.Reader { return bufio.NewReader(conn) }

// dial connects without sending the magic.
func dial(t *testing.T, s *Server) *v1Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.TCPAddr().String(), testTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(testTimeout))
	return &v1Client{t: t, conn: conn.(*net.TCPConn), r: newReader(conn)}
}

// dialV1 connects and sends the magic.
func dialV1(t *testing.T, s *Server) *v1Client {
	t.Helper()
	c := dial(t, s)
	c.write("  V1")
	return c
}

// identified connects, identifies as broadcast:httpPort and checks the reply.
func identified(t *testing.T, s *Server, broadcast string, httpPort int) *v1Client {
	t.Helper()
	c := dialV1(t, s)
	c.roundTrip(identifyCmd(peerBody(broadcast, httpPort)), wantReply(t, s))
	return c
}

func (c *v1Client) write(data string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, data); err != nil {
		c.t.Fatalf("write %q: %v", data, err)
	}
}

// read reads one response.
func (c *v1Client) read() (string, error) {
	var b [4]byte
	if _, err := io.ReadFull(c.r, b[:]); err != nil {
		return "", err
	}
	n := binary.BigEndian.Uint32(b[:])
	if n > 1<<20 {
		return "", fmt.Errorf("response size %d", n)
	}
	data := make([]byte, n)
	_, err := io.ReadFull(c.r, data)
	return string(data), err
}

// roundTrip sends data and checks the one response.
func (c *v1Client) roundTrip(data, want string) {
	c.t.Helper()
	c.write(data)
	got, err := c.read()
	if err != nil || got != want {
		c.t.Fatalf("after %q: got %q, %v; want %q", data, got, err, want)
	}
}

// expectClosed checks that the server closed the connection with nothing
// more to say.
func (c *v1Client) expectClosed() {
	c.t.Helper()
	rest, err := io.ReadAll(c.r)
	if err != nil || len(rest) > 0 {
		c.t.Fatalf("want EOF, got %q, %v", rest, err)
	}
}

// conversation writes input, half-closes, and returns everything the
// server sent until it closed the connection.
func (c *v1Client) conversation(input string) string {
	c.t.Helper()
	c.write(input)
	if err := c.conn.CloseWrite(); err != nil {
		c.t.Fatalf("CloseWrite: %v", err)
	}
	out, err := io.ReadAll(c.r)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		c.t.Fatalf("read: %v (got %q)", err, out)
	}
	return string(out)
}

// httpResult is one HTTP exchange.
type httpResult struct {
	code   int
	header http.Header
	body   string
}

// do sends one request and fails the test on a transport error or a
// response without X-NSQ-Content-Type.
func do(t *testing.T, s *Server, method, path string) httpResult {
	t.Helper()
	r, err := request(s, method, path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// request is do for goroutines other than the test's: it returns errors.
func request(s *Server, method, path string) (httpResult, error) {
	req, err := http.NewRequest(method, "http://"+s.HTTPAddr().String()+path, nil)
	if err != nil {
		return httpResult{}, err
	}
	client := &http.Client{Timeout: testTimeout}
	res, err := client.Do(req)
	if err != nil {
		return httpResult{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return httpResult{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	r := httpResult{code: res.StatusCode, header: res.Header, body: string(body)}
	// Every response, whatever its route or status, must carry this, or
	// go-nsq falls back to the legacy response wrapper.
	if got := res.Header.Get("X-NSQ-Content-Type"); got != "nsq; version=1.0" {
		return r, fmt.Errorf("%s %s: X-NSQ-Content-Type = %q, want %q", method, path, got, "nsq; version=1.0")
	}
	return r, nil
}

// get returns the body of a GET that must answer 200.
func get(t *testing.T, s *Server, path string) string {
	t.Helper()
	r := do(t, s, "GET", path)
	if r.code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, r.code, r.body)
	}
	return r.body
}

// post sends a POST that must answer 200.
func post(t *testing.T, s *Server, path string) {
	t.Helper()
	if r := do(t, s, "POST", path); r.code != http.StatusOK {
		t.Fatalf("POST %s = %d %s", path, r.code, r.body)
	}
}

// waitFor polls cond until it holds or the test timeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// producerJSON is one producer as /lookup lists it, for a peer from
// peerBody.
func producerJSON(remote, broadcast string, httpPort int) string {
	return fmt.Sprintf(`{"remote_address":%q,"hostname":"host-%s","broadcast_address":%q,"tcp_port":4150,`+
		`"http_port":%d,"version":"1.3.0","topology_zone":"z1","topology_region":"r1"}`,
		remote, broadcast, broadcast, httpPort)
}

func (c *v1Client) localAddr() string { return c.conn.LocalAddr().String() }

func joinJSON(items ...string) string { return "[" + strings.Join(items, ",") + "]" }
