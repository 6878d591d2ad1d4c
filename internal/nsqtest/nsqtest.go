// Package nsqtest starts real nsqx daemons on loopback for tests and gives
// small helpers to talk to them: raw protocol connections and polling.
package nsqtest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/nsqx/nsqx/nsqd"
)

// NSQD is a running nsqd.
type NSQD struct {
	*nsqd.Server
	Config   *nsqd.Config
	TCPAddr  string
	HTTPAddr string
	cancel   context.CancelFunc
	done     chan error
}

// Logger returns a logger writing to the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// DefaultConfig is nsqd's default config on 127.0.0.1:0 with a fresh data
// path and test logging.
func DefaultConfig(t testing.TB) *nsqd.Config {
	cfg := nsqd.DefaultConfig()
	cfg.TCPAddress = "127.0.0.1:0"
	cfg.HTTPAddress = "127.0.0.1:0"
	cfg.HTTPSAddress = "127.0.0.1:0"
	cfg.DataPath = t.TempDir()
	cfg.BroadcastAddress = "127.0.0.1"
	cfg.Logger = Logger(t)
	return cfg
}

// StartNSQD starts an nsqd with DefaultConfig changed by mutate (may be
// nil) and stops it when the test ends.
func StartNSQD(t testing.TB, mutate func(*nsqd.Config)) *NSQD {
	t.Helper()
	cfg := DefaultConfig(t)
	if mutate != nil {
		mutate(cfg)
	}
	return StartNSQDConfig(t, cfg)
}

// StartNSQDConfig starts an nsqd with exactly cfg.
func StartNSQDConfig(t testing.TB, cfg *nsqd.Config) *NSQD {
	t.Helper()
	srv, err := nsqd.New(cfg)
	if err != nil {
		t.Fatalf("nsqd.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &NSQD{Server: srv, Config: cfg, TCPAddr: srv.TCPAddr().String(), cancel: cancel, done: make(chan error, 1)}
	if a := srv.HTTPAddr(); a != nil {
		n.HTTPAddr = a.String()
	}
	go func() { n.done <- srv.Run(ctx) }()
	t.Cleanup(func() { n.Stop(t) })
	return n
}

// Stop stops the nsqd and waits for Run to return (at most 10 s).
func (n *NSQD) Stop(t testing.TB) {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.cancel = nil
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("nsqd Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("nsqd did not stop within 10s")
	}
}

// Eventually polls cond every 10 ms until it returns true or d passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Dial opens a TCP connection to addr with a deadline on every operation
// of d from now.
func Dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// IsClosed reports whether the peer closed c (a read returns EOF or a
// reset) within d.
func IsClosed(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	for {
		_, err := c.Read(b[:])
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}
