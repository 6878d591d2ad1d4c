package nsqd

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/snappy"

	"github.com/nsqx/nsqx/wire"
)

// writeCounter is a server-side connection that records the size of every
// write nsqd makes to the socket.
type writeCounter struct {
	net.Conn
	mu     sync.Mutex
	writes []int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, len(p))
	w.mu.Unlock()
	return w.Conn.Write(p)
}

func (w *writeCounter) CloseWrite() error { return w.Conn.(*net.TCPConn).CloseWrite() }

// take returns the writes so far and forgets them.
func (w *writeCounter) take() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	ws := w.writes
	w.writes = nil
	return ws
}

type countingListener struct {
	net.Listener
	conns chan *writeCounter
}

func (l countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	wc := &writeCounter{Conn: nc}
	l.conns <- wc
	return wc, nil
}

// TestCompressedOutputWrites: with snappy or deflate, each reply and each
// batch of messages reaches the socket in one write, not in the small
// pieces a compressor produces (stream identifier, chunk header, sync
// marker). Each piece used to be a write of its own (a TLS record of its
// own under TLS), and pynsq over tornado 6 fails on a read that
// decompresses to nothing (pynsq issue 258), which those pieces caused on
// every deflate connection.
func TestCompressedOutputWrites(t *testing.T) {
	for _, codec := range []string{"snappy", "deflate"} {
		t.Run(codec, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.TCPAddress, cfg.HTTPAddress, cfg.DataPath = "127.0.0.1:0", "", t.TempDir()
			srv, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			conns := make(chan *writeCounter, 1)
			srv.tcpLn = countingListener{srv.tcpLn, conns}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			})

			nc, err := net.DialTimeout("tcp", srv.TCPAddr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(20 * time.Second))
			var sc *writeCounter
			select {
			case sc = <-conns:
			case <-time.After(5 * time.Second):
				t.Fatal("nsqd accepted no connection")
			}

			ident := map[string]any{"feature_negotiation": true, codec: true}
			body, _ := json.Marshal(ident)
			nc.Write(wire.MagicV2)
			nc.Write(wire.AppendCommand(nil, "IDENTIFY", body))
			br := bufio.NewReader(nc)
			typ, data := readFrame(t, br)
			if typ != wire.FrameResponse || !json.Valid(data) {
				t.Fatalf("IDENTIFY reply: type %d %q", typ, data)
			}

			// From here on both directions are compressed. Whatever the
			// client reader buffered past the JSON reply belongs to the
			// compressed stream.
			rest := io.MultiReader(bytesOf(br), nc)
			var in *bufio.Reader
			var out io.Writer
			var flush func()
			if codec == "snappy" {
				in = bufio.NewReader(snappy.NewReader(rest))
				sw := snappy.NewBufferedWriter(nc)
				out, flush = sw, func() { sw.Flush() }
			} else {
				in = bufio.NewReader(flate.NewReader(rest))
				fw, _ := flate.NewWriter(nc, 6)
				out, flush = fw, func() { fw.Flush() }
			}
			if typ, data := readFrame(t, in); typ != wire.FrameResponse || string(data) != "OK" {
				t.Fatalf("compressed OK: type %d %q", typ, data)
			}
			if ws := sc.take(); len(ws) != 2 {
				t.Errorf("the upgrade took %d socket writes %v, want 2 (the JSON reply, then the compressed OK)", len(ws), ws)
			}

			// A batch of messages is one write too.
			tp, err := srv.Topic("w")
			if err != nil {
				t.Fatal(err)
			}
			for range 50 {
				tp.Publish([]byte("a message body of some length"), 0)
			}
			out.Write(wire.AppendCommand(nil, "SUB", nil, "w", "c"))
			flush()
			if typ, data := readFrame(t, in); typ != wire.FrameResponse || string(data) != "OK" {
				t.Fatalf("SUB: type %d %q", typ, data)
			}
			sc.take()
			out.Write([]byte("RDY 50\n"))
			flush()
			for i := range 50 {
				if typ, _ := readFrame(t, in); typ != wire.FrameMessage {
					t.Fatalf("frame %d: type %d, want a message", i, typ)
				}
			}
			if ws := sc.take(); len(ws) > 2 {
				t.Errorf("50 messages took %d socket writes %v, want at most 2", len(ws), ws)
			}
		})
	}
}

// bytesOf returns what br has buffered.
func bytesOf(br *bufio.Reader) io.Reader {
	b, _ := br.Peek(br.Buffered())
	return &onceReader{b: b}
}

type onceReader struct{ b []byte }

func (r *onceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func readFrame(t *testing.T, r io.Reader) (int32, []byte) {
	t.Helper()
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	size := binary.BigEndian.Uint32(hdr[:4])
	if size < 4 || size > 1<<20 {
		t.Fatalf("frame size %d", size)
	}
	data := make([]byte, size-4)
	if _, err := io.ReadFull(r, data); err != nil {
		t.Fatalf("read frame body: %v", err)
	}
	return int32(binary.BigEndian.Uint32(hdr[4:])), data
}
