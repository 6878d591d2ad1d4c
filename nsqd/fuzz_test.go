package nsqd_test

import (
	"io"
	"testing"
	"time"

	"github.com/nsqx/nsqx/nsqd"
	"github.com/nsqx/nsqx/wire"
)

// FuzzProtocol feeds arbitrary bytes after the magic to a live nsqd, in
// pieces of split bytes (0: one write), then shuts the write side. The
// server must not panic, must close the connection within a few seconds
// (it has reached EOF whatever it was waiting for), and must still serve a
// fresh connection.
func FuzzProtocol(f *testing.F) {
	for _, tt := range commandTests {
		in := tt.in
		switch tt.state {
		case "sub":
			in = cat(line("SUB s c"), in)
		case "closing":
			in = cat(line("SUB s c"), line("CLS"), in)
		}
		f.Add(in, uint8(0))
	}
	f.Add(cat(
		line("SUB f c"), line("RDY 10"),
		wire.AppendCommand(nil, "PUB", []byte("x"), "f"),
		wire.AppendCommand(nil, "MPUB", mpubBody("y", "z"), "f"),
		line("FIN "+id0), line("TOUCH "+id0), line("REQ "+id0+" 10"), line("CLS"),
	), uint8(3))
	f.Add(cat(identifyCmd(`{"heartbeat_interval":1000,"output_buffer_size":-1}`), line("SUB f c"), line("RDY 2500")), uint8(1))

	s := startServer(f, "tcp", func(cfg *nsqd.Config) { cfg.MsgTimeout, cfg.MaxReqTimeout = time.Second, time.Second })
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		c := s.dial(t)
		// Drain replies concurrently so a chatty server never blocks on us.
		done := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, c.nc)
			done <- err
		}()
		piece := len(in)
		if split%8 > 0 {
			piece = int(split % 8)
		}
		for rest := in; len(rest) > 0; {
			n := min(piece, len(rest))
			if _, err := c.nc.Write(rest[:n]); err != nil {
				break // the server closed after a fatal error
			}
			rest = rest[n:]
		}
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("server still holds the connection 10s after EOF on input %q", in)
		}
		s.dial(t).ping()
	})
}
