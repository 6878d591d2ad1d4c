package nsqlookupd

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"zero inactive timeout, as NSQ", func(c *Config) { c.InactiveProducerTimeout = 0 }, ""},
		{"no tombstones", func(c *Config) { c.TombstoneLifetime = 0 }, ""},
		{"empty tcp address", func(c *Config) { c.TCPAddress = "" }, "--tcp-address: must not be empty"},
		{"empty http address", func(c *Config) { c.HTTPAddress = "" }, "--http-address: must not be empty"},
		{"zero handshake timeout", func(c *Config) { c.HandshakeTimeout = 0 }, "handshake timeout 0s must be > 0"},
		{"negative idle timeout", func(c *Config) { c.IdleTimeout = -time.Second }, "idle timeout -1s must be > 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.modify(cfg)
			err := cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
			if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New() = %v, want %q", err, tc.want)
			}
		})
	}
	// Every problem is reported at once.
	cfg := DefaultConfig()
	cfg.TCPAddress, cfg.HTTPAddress = "", ""
	if err := cfg.Validate(); err == nil || strings.Count(err.Error(), "must not be empty") != 2 {
		t.Errorf("Validate() = %v, want both addresses reported", err)
	}
}

func TestNewListenErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })

	cfg := testConfig(t)
	cfg.TCPAddress = busy.Addr().String()
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "listen --tcp-address "+busy.Addr().String()) {
		t.Errorf("New with a busy TCP port = %v, want a --tcp-address error", err)
	}

	// When HTTP fails, the TCP listener New already opened is released.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpAddr := free.Addr().String()
	free.Close()
	cfg = testConfig(t)
	cfg.TCPAddress = tcpAddr
	cfg.HTTPAddress = busy.Addr().String()
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "listen --http-address") {
		t.Errorf("New with a busy HTTP port = %v, want a --http-address error", err)
	}
	ln, err := net.Listen("tcp", tcpAddr)
	if err != nil {
		t.Errorf("TCP port %s not released after New failed: %v", tcpAddr, err)
	} else {
		ln.Close()
	}
}

func TestNilLogger(t *testing.T) {
	cfg := testConfig(t)
	cfg.Logger = nil
	s := startServer(t, cfg, nil)
	c := identified(t, s, "a", 4151)
	c.roundTrip("REGISTER t\n", "OK")
	c.roundTrip("BAD\n", "E_INVALID invalid command BAD")
}

// TestRunShutdown checks that ending Run's context closes the listeners and
// every kind of open connection, and that Run then returns nil.
func TestRunShutdown(t *testing.T) {
	s, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }() // ended by cancel below
	t.Cleanup(cancel)

	registered := identified(t, s, "a", 4151)
	registered.roundTrip("REGISTER t c\n", "OK")
	handshaking := dial(t, s) // sends nothing
	partial := dialV1(t, s)
	partial.write("REGIS") // half a command
	httpConn, err := net.Dial("tcp", s.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer httpConn.Close()
	// All three TCP connections must be accepted and tracked before the
	// shutdown starts, or the test would not cover closing them.
	waitFor(t, "the connections to be tracked", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 3 && len(s.httpNew) == 1
	})

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Run did not return after cancel")
	}
	// Nothing was in flight, so nothing should wait for a timeout.
	if d := time.Since(start); d >= httpShutdownTimeout {
		t.Errorf("shutdown took %v", d)
	}
	httpConn.SetDeadline(time.Now().Add(testTimeout))
	if rest, err := io.ReadAll(httpConn); err != nil || len(rest) > 0 {
		t.Errorf("HTTP connection without a request: got %q, %v after shutdown; want EOF", rest, err)
	}
	for name, c := range map[string]*v1Client{"registered": registered, "handshaking": handshaking, "partial": partial} {
		if rest, err := io.ReadAll(c.r); err != nil || len(rest) > 0 {
			t.Errorf("%s connection: got %q, %v after shutdown; want EOF", name, rest, err)
		}
	}
	for _, addr := range []net.Addr{s.TCPAddr(), s.HTTPAddr()} {
		if c, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
			c.Close()
			t.Errorf("listener %s still accepts after Run returned", addr)
		}
	}
	if got := s.reg.debug(); len(got) != 0 {
		t.Errorf("registrations left after shutdown: %v", got)
	}
}

func TestRunCancelledBeforeStart(t *testing.T) {
	s, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run(cancelled) = %v, want nil", err)
	}
}

// TestConcurrentPeers runs many peers registering, pinging and leaving
// while HTTP readers and writers work the same topics; run with -race.
func TestConcurrentPeers(t *testing.T) {
	s := startServer(t, nil, nil)
	const peers, rounds = 8, 20
	reply := wantReply(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, peers+2)
	for p := range peers {
		wg.Go(func() {
			conn, err := net.DialTimeout("tcp", s.TCPAddr().String(), testTimeout)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(testTimeout))
			c := &v1Client{conn: conn.(*net.TCPConn), r: newReader(conn)}
			script := []string{"  V1" + identifyCmd(peerBody(fmt.Sprint("p", p), 4151+p))}
			want := []string{reply}
			for r := range rounds {
				topic := fmt.Sprintf("t%d", r%4)
				script = append(script, "REGISTER "+topic+" c"+fmt.Sprint(p%3)+"\n", "PING\n",
					"REGISTER e#ephemeral c#ephemeral\n", "UNREGISTER e#ephemeral c#ephemeral\n", "UNREGISTER "+topic+"\n")
				want = append(want, "OK", "OK", "OK", "OK", "OK")
			}
			for i, cmd := range script {
				if _, err := io.WriteString(conn, cmd); err != nil {
					errs <- err
					return
				}
				if got, err := c.read(); err != nil || got != want[i] {
					errs <- fmt.Errorf("peer %d: %q = %q, %v; want %q", p, cmd, got, err, want[i])
					return
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for i := range rounds {
				reqs := []string{"GET /lookup?topic=t1", "GET /nodes", "GET /debug", "GET /topics", "GET /channels?topic=t2",
					fmt.Sprintf("POST /topic/tombstone?topic=t%d&node=p%d:%d", i%4, i%peers, 4151+i%peers),
					fmt.Sprintf("POST /channel/create?topic=h%d&channel=c", i),
					fmt.Sprintf("POST /topic/delete?topic=h%d", i)}
				for _, req := range reqs {
					method, path, _ := strings.Cut(req, " ")
					r, err := request(s, method, path)
					if err == nil && r.code != 200 && r.code != 404 {
						err = fmt.Errorf("%s = %d %s", req, r.code, r.body)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitFor(t, "all peers to be gone", func() bool { return get(t, s, "/debug") == "{}" })
	if got, want := get(t, s, "/topics"), `{"topics":["t0","t1","t2","t3"]}`; got != want {
		t.Errorf("/topics = %s, want %s", got, want)
	}
}
