package bench

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/nsqx/nsqx/wire"
)

// readerClient returns a client whose reads come from r.
func readerClient(r io.Reader) *client {
	return &client{r: bufio.NewReaderSize(r, readBufferSize), w: bufio.NewWriter(io.Discard)}
}

func TestReadFrame(t *testing.T) {
	small := []byte("hello")
	big := bytes.Repeat([]byte("x"), readBufferSize+100) // larger than the reader's buffer
	var stream []byte
	stream = wire.AppendFrame(stream, wire.FrameResponse, wire.OK)
	stream = wire.AppendMessage(stream, 42, 3, wire.EncodeID(7), small)
	stream = wire.AppendFrame(stream, wire.FrameMessage, big)
	stream = wire.AppendFrame(stream, wire.FrameError, []byte("E_INVALID bad"))

	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(stream) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			c := readerClient(mk())
			typ, data, err := c.readFrame()
			if err != nil || typ != wire.FrameResponse || !bytes.Equal(data, wire.OK) {
				t.Fatalf("frame 1 = %d %q %v, want OK", typ, data, err)
			}
			typ, data, err = c.readFrame()
			if err != nil || typ != wire.FrameMessage {
				t.Fatalf("frame 2 = %d %v, want a message", typ, err)
			}
			m, err := wire.DecodeMessage(data)
			if err != nil || m.Timestamp != 42 || m.Attempts != 3 || m.ID != wire.EncodeID(7) || !bytes.Equal(m.Body, small) {
				t.Errorf("message = %+v %v", m, err)
			}
			typ, data, err = c.readFrame()
			if err != nil || typ != wire.FrameMessage || !bytes.Equal(data, big) {
				t.Fatalf("frame 3 = %d, %d bytes, %v; want %d bytes", typ, len(data), err, len(big))
			}
			typ, data, err = c.readFrame()
			if err != nil || typ != wire.FrameError || string(data) != "E_INVALID bad" {
				t.Fatalf("frame 4 = %d %q %v", typ, data, err)
			}
			if _, _, err := c.readFrame(); err != io.EOF {
				t.Errorf("after the last frame: %v, want EOF", err)
			}
		})
	}
}

func TestReadFrameBadSize(t *testing.T) {
	for _, size := range []uint32{0, 3, 0xffffffff, maxFrameSize + 5} {
		b := []byte{byte(size >> 24), byte(size >> 16), byte(size >> 8), byte(size), 0, 0, 0, 0}
		if _, _, err := readerClient(bytes.NewReader(b)).readFrame(); err == nil {
			t.Errorf("readFrame(size %d) = nil error", size)
		}
	}
}

// TestReadFrameAllocs pins the consumer's read path at zero allocations.
func TestReadFrameAllocs(t *testing.T) {
	frame := wire.AppendMessage(nil, 1, 1, wire.EncodeID(1), messageBody(200))
	stream := bytes.Repeat(frame, 1000)
	r := bytes.NewReader(stream)
	c := readerClient(r)
	allocs := testing.AllocsPerRun(500, func() {
		if r.Len() == 0 && c.r.Buffered() == 0 {
			r.Reset(stream)
		}
		if _, _, err := c.readFrame(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("readFrame allocates %v times per frame, want 0", allocs)
	}
}

func TestParseStatCPU(t *testing.T) {
	// The command name holds spaces and a parenthesis.
	stat := []byte("1234 (ns qd) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 1000 200\n")
	got, err := parseStatCPU(stat)
	if want := 325 * clockTick; err != nil || got != want {
		t.Errorf("parseStatCPU = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "1234 nsqd S 1", "1 (a) S 1 2"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) = nil error", bad)
		}
	}
}

func TestParseStatusRSS(t *testing.T) {
	status := []byte("Name:\tnsqd\nVmPeak:\t  9000 kB\nVmRSS:\t    1536 kB\nThreads:\t8\n")
	got, err := parseStatusRSS(status)
	if err != nil || got != 1536<<10 {
		t.Errorf("parseStatusRSS = %d, %v; want %d", got, err, 1536<<10)
	}
	if _, err := parseStatusRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("parseStatusRSS without VmRSS = nil error")
	}
}

func TestProcessUsageSelf(t *testing.T) {
	if _, err := processUsage(1); err != nil && strings.Contains(err.Error(), "no such file") {
		t.Skip("no /proc")
	}
	u, err := processUsage(os.Getpid())
	if err != nil || u.RSS <= 0 {
		t.Errorf("processUsage(self) = %+v, %v; want a positive RSS", u, err)
	}
}

func TestPercentiles(t *testing.T) {
	if p := percentiles(nil); p != nil {
		t.Errorf("percentiles(nil) = %+v, want nil", p)
	}
	ns := make([]int64, 1000)
	for i := range ns {
		ns[i] = int64(1000-i) * 1000 // 1..1000 µs, reversed
	}
	p := percentiles(ns)
	want := Percentiles{Count: 1000, P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000}
	if *p != want {
		t.Errorf("percentiles = %+v, want %+v", *p, want)
	}
	if p := percentiles([]int64{5000}); p.P50 != 5 || p.P999 != 5 {
		t.Errorf("percentiles of one sample = %+v", *p)
	}
}

func TestGroup3(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45000: "-45,000"} {
		if got := group3(n); got != want {
			t.Errorf("group3(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestCountBudget checks that publishers share a count exactly, the last
// batch shortened.
func TestCountBudget(t *testing.T) {
	b := batch{cmd: mpubCommand("t", 10, 8), msgs: 10}
	next := countBudget("t", b, 8, 25)
	var total int64
	var sizes []int64
	for {
		got, ok := next(context.Background())
		if !ok {
			break
		}
		total += got.msgs
		sizes = append(sizes, got.msgs)
		var n int
		cmd := got.cmd[len("MPUB t\n")+4:]
		if werr := wire.SplitMPUB(cmd, 100, 100, func([]byte) { n++ }); werr != nil || int64(n) != got.msgs {
			t.Errorf("batch of %d holds %d messages (%v)", got.msgs, n, werr)
		}
	}
	if total != 25 || len(sizes) != 3 || sizes[2] != 5 {
		t.Errorf("batches %v, want 10, 10, 5", sizes)
	}
}

// TestCeilingProtocol speaks to a Ceiling byte by byte: IDENTIFY, PUB,
// MPUB, SUB, RDY, FIN, CLS, and a bad command.
func TestCeilingProtocol(t *testing.T) {
	srv, err := StartCeiling(CeilingConfig{MessageSize: 16, MaxRDY: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := t.Context()
	c, err := dial(ctx, srv.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	maxRDY, err := c.identify(5*time.Second, nil)
	if err != nil || maxRDY != 10 {
		t.Fatalf("identify = %d, %v; want max_rdy_count 10", maxRDY, err)
	}
	expectOK := func(cmd []byte) {
		t.Helper()
		if err := c.send(cmd); err != nil {
			t.Fatal(err)
		}
		if resp, err := c.response(); err != nil || !bytes.Equal(resp, wire.OK) {
			t.Fatalf("%q: %q %v, want OK", cmd, resp, err)
		}
	}
	expectOK(wire.AppendCommand(nil, "PUB", []byte("one"), "t"))
	expectOK(mpubCommand("t", 4, 16))
	expectOK(wire.AppendCommand(nil, "SUB", nil, "t", "c"))
	if st := srv.Stats(); st.Published != 5 {
		t.Errorf("published = %d, want 5", st.Published)
	}
	if err := c.send([]byte("RDY 3\n")); err != nil {
		t.Fatal(err)
	}
	var ids []wire.ID
	for range 3 {
		typ, data, err := c.readFrame()
		if err != nil || typ != wire.FrameMessage {
			t.Fatalf("frame %d %v, want a message", typ, err)
		}
		m, _ := wire.DecodeMessage(data)
		if len(m.Body) != 16 {
			t.Errorf("body of %d bytes, want 16", len(m.Body))
		}
		ids = append(ids, m.ID)
	}
	// No more credit: FIN one, and exactly one more message comes.
	if err := c.send(wire.AppendCommand(nil, "FIN", nil, string(ids[0][:]))); err != nil {
		t.Fatal(err)
	}
	if typ, _, err := c.readFrame(); err != nil || typ != wire.FrameMessage {
		t.Fatalf("after FIN: frame %d %v, want a message", typ, err)
	}
	if err := c.send([]byte("CLS\n")); err != nil {
		t.Fatal(err)
	}
	if resp, err := c.response(); err != nil || !bytes.Equal(resp, wire.CloseWait) {
		t.Fatalf("CLS: %q %v, want CLOSE_WAIT", resp, err)
	}
	if st := srv.Stats(); st.Sent != 4 || st.Finished != 1 {
		t.Errorf("stats = %+v, want 4 sent, 1 finished", st)
	}
	if err := c.send([]byte("BOGUS\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.response(); err == nil || !strings.Contains(err.Error(), wire.ErrInvalid) {
		t.Errorf("BOGUS: %v, want E_INVALID", err)
	}
}

func TestCeilingBadMagic(t *testing.T) {
	srv, err := StartCeiling(CeilingConfig{MessageSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte("  V9"))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, data, err := wire.ReadFrame(nc, 1024)
	if err != nil || typ != wire.FrameError || !bytes.HasPrefix(data, []byte(wire.ErrBadProtocol)) {
		t.Errorf("bad magic: %d %q %v, want E_BAD_PROTOCOL", typ, data, err)
	}
}

// TestGated checks that publishers wait while the backlog is full and go
// on once consumers catch up.
func TestGated(t *testing.T) {
	var granted, delivered atomic.Int64
	b := batch{msgs: 10}
	next := gated(untilDone(b), &granted, &delivered, 2, 15)
	ctx := t.Context()
	for range 2 {
		if _, ok := next(ctx); !ok {
			t.Fatal("refused within the backlog")
		}
	}
	// 20 granted, nothing delivered on 2 channels: over the backlog.
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := next(stopped); ok {
		t.Error("granted over the backlog")
	}
	delivered.Add(20) // 10 per channel
	if _, ok := next(ctx); !ok {
		t.Error("refused after consumers caught up")
	}
}

func TestMedian(t *testing.T) {
	runs := []Result{
		{MsgsPerSec: 30}, {MsgsPerSec: 10}, {Error: "boom"}, {MsgsPerSec: 20}, {MsgsPerSec: 50},
	}
	if got := median(runs); got.MsgsPerSec != 30 || got.Runs != 5 {
		t.Errorf("median = %v msgs/s of %d runs, want 30 of 5", got.MsgsPerSec, got.Runs)
	}
	lat := []Result{
		{MsgsPerSec: 1, Latency: &Percentiles{P99: 9}},
		{MsgsPerSec: 3, Latency: &Percentiles{P99: 1}},
		{MsgsPerSec: 2, Latency: &Percentiles{P99: 5}},
	}
	if got := median(lat); got.Latency.P99 != 5 {
		t.Errorf("latency median p99 = %v, want 5", got.Latency.P99)
	}
	if got := median([]Result{{Error: "a"}, {Error: "b"}}); got.Error != "b" || got.Runs != 2 {
		t.Errorf("median of failures = %+v, want the last one", got)
	}
}
