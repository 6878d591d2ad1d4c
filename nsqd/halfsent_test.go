package nsqd_test

import (
	"encoding/binary"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/wire"
)

// TestHalfSentBodiesPinLittleMemory: clients that announce a maximal MPUB
// body and send a few bytes of it cost what they sent, not the announced
// size (100 × 5 MiB would be 500 MiB).
func TestHalfSentBodiesPinLittleMemory(t *testing.T) {
	n := nsqtest.StartNSQD(t, nil)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const clients = 100
	var conns []net.Conn
	for i := 0; i < clients; i++ {
		c := nsqtest.Dial(t, n.TCPAddr)
		b := append([]byte(nil), wire.MagicV2...)
		b = append(b, "MPUB t\n"...)
		b = binary.BigEndian.AppendUint32(b, uint32(n.Config.MaxBodySize))
		b = append(b, make([]byte, 100)...) // 100 of the announced 5 MiB
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Watch the heap for a second: allocating the announced bodies would
	// show at once.
	limit := before.HeapAlloc + 64<<20
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > limit {
			t.Fatalf("heap grew by %d MiB with %d half-sent MPUBs", (ms.HeapAlloc-before.HeapAlloc)>>20, clients)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// nsqd still serves everyone else.
	c := nsqtest.Dial(t, n.TCPAddr)
	c.Write(append(append([]byte(nil), wire.MagicV2...), wire.AppendCommand(nil, "PUB", []byte("x"), "other")...))
	typ, data, err := wire.ReadFrame(c, 1024)
	if err != nil || typ != wire.FrameResponse || string(data) != "OK" {
		t.Fatalf("PUB beside half-sent MPUBs = %d %q %v, want OK", typ, data, err)
	}
	for _, c := range conns {
		c.Close()
	}
}
