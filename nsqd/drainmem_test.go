package nsqd

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"
)

// TestDrainFromDiskMemory: a consumer draining a backlog from disk makes
// nsqd load the spilled segments back one by one; each must be let go as
// soon as the channel is past it, not kept until the next periodic sweep
// (which this test turns off). Before, draining at ~3 M msg/s held a
// second's worth of segments: hundreds of MB over --mem-queue-size.
func TestDrainFromDiskMemory(t *testing.T) {
	const (
		count = 60_000
		size  = 1 << 10 // 60 MiB of backlog
		bound = 32 << 20
	)
	cfg := DefaultConfig()
	cfg.TCPAddress, cfg.HTTPAddress, cfg.DataPath = "127.0.0.1:0", "", t.TempDir()
	cfg.MemQueueSize = 100
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.scanner.releaseEvery = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	tp, err := srv.Topic("drain")
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("d"), size)
	const batch = 100
	mpub := binary.BigEndian.AppendUint32(nil, batch)
	for range batch {
		mpub = binary.BigEndian.AppendUint32(mpub, size)
		mpub = append(mpub, body...)
	}
	for range count / batch {
		if err := tp.PublishMPUB(mpub); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the background spiller to bring the log within budget.
	deadline := time.Now().Add(20 * time.Second)
	for tp.log.bytes.Load() > bound/2 {
		if time.Now().After(deadline) {
			t.Fatalf("backlog still holds %d bytes in memory after 20s", tp.log.bytes.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}

	c, err := nsq.NewConsumer("drain", "c", nsq.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(log.New(io.Discard, "", 0), nsq.LogLevelError)
	c.ChangeMaxInFlight(200)
	var got, peak atomic.Int64
	all := make(chan struct{})
	c.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		if b := tp.log.bytes.Load(); b > peak.Load() {
			peak.Store(b) // one handler goroutine: no lost update
		}
		if got.Add(1) == count {
			close(all)
		}
		return nil
	}))
	if err := c.ConnectToNSQD(srv.TCPAddr().String()); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	select {
	case <-all:
	case <-time.After(60 * time.Second):
		t.Fatalf("received %d of %d messages in 60s", got.Load(), count)
	}
	if p := peak.Load(); p > bound {
		t.Errorf("resident log memory peaked at %d MiB while draining %d MiB from disk, want at most %d MiB",
			p>>20, int64(count*size)>>20, bound>>20)
	}
	t.Logf("peak resident log memory %.1f MiB while draining %d MiB", float64(peak.Load())/(1<<20), count*size>>20)
}
