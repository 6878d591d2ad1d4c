package nsqd_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/faultfs"
	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// startOnFS starts a durable nsqd whose message logs live on fs.
func startOnFS(t *testing.T, fs *faultfs.FS, dataPath string, syncEvery int64) *nsqtest.NSQD {
	t.Helper()
	return nsqtest.StartNSQD(t, func(c *nsqd.Config) {
		c.FS = fs
		c.DataPath = dataPath
		c.MemQueueSize = 0
		c.SyncEvery = syncEvery
		c.SyncTimeout = 50 * time.Millisecond
	})
}

// drain consumes topic t/channel c until want bodies were seen or 10 s
// pass, and returns every body seen.
func drain(t *testing.T, addr string, want int) map[string]int {
	t.Helper()
	cfg := nsq.NewConfig()
	cfg.MaxInFlight = 1000
	c, err := nsq.NewConsumer("t", "c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(nil, nsq.LogLevelError)
	var mu sync.Mutex
	seen := map[string]int{}
	c.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		mu.Lock()
		seen[string(m.Body)]++
		mu.Unlock()
		return nil
	}))
	if err := c.ConnectToNSQD(addr); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= want {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	out := make(map[string]int, len(seen))
	for k, v := range seen {
		out[k] = v
	}
	return out
}

func missing(acked []string, seen map[string]int) []string {
	var out []string
	for _, b := range acked {
		if seen[b] == 0 {
			out = append(out, b)
		}
	}
	return out
}

// TestFaultCrashImages publishes through a durable nsqd and takes the image
// of its storage that a crash would leave at a random moment: a power cut
// with --sync-every=1, and kill -9 with the default --sync-every. A new
// nsqd on that image must deliver every publish acknowledged before it.
func TestFaultCrashImages(t *testing.T) {
	cases := []struct {
		name      string
		syncEvery int64
		image     func(*faultfs.FS) *faultfs.FS
	}{
		{"power cut, sync-every=1", 1, (*faultfs.FS).PowerCut},
		{"kill -9, sync-every=2500", 2500, (*faultfs.FS).ProcessCrash},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for round := 0; round < 3; round++ {
				fs := faultfs.New()
				dir := t.TempDir()
				n := startOnFS(t, fs, dir, tc.syncEvery)
				top, err := n.Topic("t")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := top.Channel("c"); err != nil {
					t.Fatal(err)
				}
				const total = 400
				cut := 50 + rand.IntN(total-100)
				var acked []string
				var image *faultfs.FS
				for i := 0; i < total; i++ {
					if i == cut {
						image = tc.image(fs)
					}
					body := fmt.Sprintf("r%d-m%d-%s", round, i, strings.Repeat("x", rand.IntN(300)))
					var err error
					if i%7 == 0 {
						err = top.PublishBodies([][]byte{[]byte(body + "-a"), []byte(body + "-b")})
						if err == nil && i < cut {
							acked = append(acked, body+"-a", body+"-b")
						}
					} else {
						err = top.Publish([]byte(body), 0)
						if err == nil && i < cut {
							acked = append(acked, body)
						}
					}
					if err != nil {
						t.Fatalf("publish %d: %v", i, err)
					}
				}
				n.Stop(t)
				n2 := startOnFS(t, image, dir, tc.syncEvery)
				if tp, err := n2.Topic("t"); err == nil {
					tp.Channel("c")
				}
				seen := drain(t, n2.TCPAddr, len(acked))
				if m := missing(acked, seen); len(m) > 0 {
					t.Fatalf("round %d (cut at %d): %d of %d acknowledged messages lost, first %q", round, cut, len(m), len(acked), m[0])
				}
				n2.Stop(t)
			}
		})
	}
}

// TestFaultWriteErrors injects EIO at the k-th storage operation and ENOSPC
// after a byte budget: a publish that hits the fault fails, /ping turns
// NOK, nothing acknowledged is lost, and publishing recovers by itself once
// the fault is gone.
func TestFaultWriteErrors(t *testing.T) {
	faults := []struct {
		name  string
		set   func(fs *faultfs.FS, k int)
		clear func(fs *faultfs.FS)
	}{
		{"EIO", func(fs *faultfs.FS, k int) { fs.FailAfter(k) }, func(fs *faultfs.FS) { fs.FailAfter(-1) }},
		{"ENOSPC", func(fs *faultfs.FS, k int) { fs.LimitSpace(int64(k * 97)) }, func(fs *faultfs.FS) { fs.LimitSpace(-1) }},
	}
	for _, f := range faults {
		for _, syncEvery := range []int64{1, 2500} {
			for _, k := range []int{0, 1, 3, 10, 40} {
				t.Run(fmt.Sprintf("%s/sync-every=%d/k=%d", f.name, syncEvery, k), func(t *testing.T) {
					fs := faultfs.New()
					dir := t.TempDir()
					n := startOnFS(t, fs, dir, syncEvery)
					top, _ := n.Topic("t")
					top.Channel("c")
					var acked []string
					failed := 0
					for i := 0; i < 30; i++ {
						body := fmt.Sprintf("before-%d", i)
						if top.Publish([]byte(body), 0) == nil {
							acked = append(acked, body)
						}
					}
					f.set(fs, k)
					for i := 0; i < 200; i++ {
						body := fmt.Sprintf("during-%d-%s", i, strings.Repeat("y", 50))
						if err := top.Publish([]byte(body), 0); err != nil {
							failed++
							if h := n.Health(); !strings.HasPrefix(h, "NOK - ") {
								t.Fatalf("health after a failed publish = %q, want NOK - ...", h)
							}
							continue
						}
						acked = append(acked, body)
					}
					if failed == 0 {
						t.Fatalf("no publish failed with %s after %d", f.name, k)
					}
					f.clear(fs)
					for i := 0; i < 20; i++ {
						body := fmt.Sprintf("after-%d", i)
						if err := top.Publish([]byte(body), 0); err != nil {
							t.Fatalf("publish after the fault cleared: %v", err)
						}
						acked = append(acked, body)
					}
					if h := n.Health(); h != "OK" {
						t.Fatalf("health after recovery = %q, want OK", h)
					}
					n.Stop(t)
					n2 := startOnFS(t, fs.ProcessCrash(), dir, syncEvery)
					if tp, err := n2.Topic("t"); err == nil {
						tp.Channel("c")
					}
					seen := drain(t, n2.TCPAddr, len(acked))
					if m := missing(acked, seen); len(m) > 0 {
						t.Fatalf("%d of %d acknowledged messages lost after %s, first %q", len(m), len(acked), f.name, m[0])
					}
					n2.Stop(t)
				})
			}
		}
	}
}

// TestFaultStartOnFullDisk: nsqd starts on a full disk with messages
// already stored, delivers them, refuses new publishes with /ping NOK, and
// takes publishes again once space returns, without a restart.
func TestFaultStartOnFullDisk(t *testing.T) {
	fs := faultfs.New()
	dir := t.TempDir()
	n := startOnFS(t, fs, dir, 1)
	top, _ := n.Topic("t")
	top.Channel("c")
	var acked []string
	for i := 0; i < 50; i++ {
		b := fmt.Sprintf("stored-%d", i)
		if err := top.Publish([]byte(b), 0); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, b)
	}
	n.Stop(t)

	full := fs.ProcessCrash()
	full.LimitSpace(0)
	n2 := startOnFS(t, full, dir, 1)
	top2, err := n2.Topic("t")
	if err != nil {
		t.Fatal(err)
	}
	if err := top2.Publish([]byte("no room"), 0); err == nil {
		t.Fatal("publish on a full disk succeeded")
	}
	if h := n2.Health(); !strings.HasPrefix(h, "NOK - ") {
		t.Fatalf("health on a full disk = %q, want NOK - ...", h)
	}
	seen := drain(t, n2.TCPAddr, len(acked))
	if m := missing(acked, seen); len(m) > 0 {
		t.Fatalf("%d stored messages not delivered on a full disk, first %q", len(m), m[0])
	}
	full.LimitSpace(-1)
	if err := top2.Publish([]byte("room again"), 0); err != nil {
		t.Fatalf("publish after space returned: %v", err)
	}
	if h := n2.Health(); h != "OK" {
		t.Fatalf("health after space returned = %q, want OK", h)
	}
}
