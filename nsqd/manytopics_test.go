package nsqd_test

import (
	"bufio"
	"fmt"
	"runtime"
	"testing"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
	"github.com/nsqx/nsqx/wire"
)

// TestManyTopicsCostNoGoroutines: a client creating thousands of topics
// costs memory in proportion (a few KiB each) and no goroutine per topic.
func TestManyTopicsCostNoGoroutines(t *testing.T) {
	n := nsqtest.StartNSQD(t, nil)
	c := nsqtest.Dial(t, n.TCPAddr)
	r := bufio.NewReader(c)
	c.Write(wire.MagicV2)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	const topics = 3000
	for i := 0; i < topics; i += 100 {
		var b []byte
		for j := i; j < i+100; j++ {
			b = wire.AppendCommand(b, "PUB", []byte("x"), fmt.Sprintf("topic-%d", j))
		}
		c.Write(b)
		for j := 0; j < 100; j++ {
			if typ, data, err := wire.ReadFrame(r, 1024); err != nil || typ != wire.FrameResponse {
				t.Fatalf("PUB %d: %d %q %v", i+j, typ, data, err)
			}
		}
	}
	if got := len(n.Stats(nsqd.StatsFilter{}).Topics); got != topics {
		t.Fatalf("%d topics, want %d", got, topics)
	}
	if g := runtime.NumGoroutine(); g > g0+20 {
		t.Fatalf("goroutines went from %d to %d for %d topics", g0, g, topics)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if per := int64(after.HeapAlloc-before.HeapAlloc) / topics; per > 32<<10 {
		t.Fatalf("%d bytes of heap per topic, want at most 32 KiB", per)
	}
}
