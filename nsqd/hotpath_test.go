package nsqd

import (
	"encoding/binary"
	"testing"
	"time"
)

// benchTopic is a memory-only topic with no server around it.
func benchTopic(tb testing.TB) *Topic {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.MemQueueSize = 1 << 40
	hooks := &topicHooks{
		persist:       func() {},
		newStore:      func(string) *logStore { return nil },
		storeFailed:   func(error) {},
		storeOK:       func() {},
		memQueueLimit: cfg.MemQueueSize,
	}
	return newTopic("bench", cfg, newScanner(func() []*Topic { return nil }), hooks)
}

func benchConsumer(id uint64) *conn {
	c := &conn{id: id}
	c.ifl.reset()
	c.msgTimeoutNs.Store(int64(time.Minute))
	c.state.Store(stateSubscribed)
	return c
}

func mpubBody(n, size int) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	for i := 0; i < n; i++ {
		b = binary.BigEndian.AppendUint32(b, uint32(size))
		b = append(b, make([]byte, size)...)
	}
	return b
}

// BenchmarkTopicPublishMPUB: one MPUB of 200 × 200 B into a topic's log.
func BenchmarkTopicPublishMPUB(b *testing.B) {
	t := benchTopic(b)
	body := mpubBody(200, 200)
	b.SetBytes(200 * 200)
	b.ReportAllocs()
	for b.Loop() {
		if err := t.PublishMPUB(body); err != nil {
			b.Fatal(err)
		}
		t.log.release(t.log.tail.Load()) // keep memory flat
	}
}

// BenchmarkChannelTakeFinish: a consumer takes a batch of 100 messages and
// finishes them, as a pump and a read loop do.
func BenchmarkChannelTakeFinish(b *testing.B) {
	t := benchTopic(b)
	ch, _ := t.Channel("c")
	cn := benchConsumer(1)
	ch.addConsumer(cn, 0)
	body := mpubBody(100, 200)
	batch := make([]delivery, 0, 100)
	ids := make([]uint64, 0, 100)
	errs := make([]error, 100)
	b.SetBytes(100 * 200)
	b.ReportAllocs()
	for b.Loop() {
		t.PublishMPUB(body)
		batch = ch.take(cn, 100, time.Now().UnixNano(), batch[:0])
		ids = ids[:0]
		for _, d := range batch {
			ids = append(ids, d.id)
		}
		if n := ch.finish(cn, ids, errs); n != len(ids) {
			b.Fatalf("finished %d of %d", n, len(ids))
		}
		t.release()
	}
}

// TestHotPathDoesNotAllocate pins publish, take and finish at zero
// allocations per message (amortised: segments are allocated per MiB).
func TestHotPathDoesNotAllocate(t *testing.T) {
	top := benchTopic(t)
	ch, _ := top.Channel("c")
	cn := benchConsumer(1)
	ch.addConsumer(cn, 0)
	body := mpubBody(100, 200)
	one := make([]byte, 200)
	batch := make([]delivery, 0, 100)
	ids := make([]uint64, 0, 100)
	errs := make([]error, 100)
	mpubTakeFin := func() {
		top.PublishMPUB(body)
		batch = ch.take(cn, 100, time.Now().UnixNano(), batch[:0])
		ids = ids[:0]
		for _, d := range batch {
			ids = append(ids, d.id)
		}
		ch.finish(cn, ids, errs)
	}
	// Warm up the slab, map and segment sizes.
	for i := 0; i < 50; i++ {
		mpubTakeFin()
	}
	cases := []struct {
		name string
		f    func()
	}{
		{"PUB", func() { top.Publish(one, 0) }},
		{"MPUB of 100", func() { top.PublishMPUB(body) }},
		{"take 100 + FIN 100", mpubTakeFin},
	}
	for _, tc := range cases {
		if n := testing.AllocsPerRun(200, tc.f); n > 0 {
			t.Errorf("%s: %v allocations per run, want 0", tc.name, n)
		}
	}
}
