package nsqd_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// TestDiskFullTmpfs runs a durable nsqd on a small real tmpfs (when this
// machine lets the test mount one, as root in CI): publishing until the disk
// is full fails with an error and /ping NOK, nothing acknowledged is lost,
// and nsqd recovers by itself when space returns.
func TestDiskFullTmpfs(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })

	n := nsqtest.StartNSQD(t, func(c *nsqd.Config) {
		c.DataPath = dir
		c.MemQueueSize = 0
	})
	top, err := n.Topic("t")
	if err != nil {
		t.Fatal(err)
	}
	top.Channel("c")
	body := strings.Repeat("z", 1000)
	var acked []string
	failed := false
	for i := 0; i < 10000 && !failed; i++ { // 10 MB would overflow 4 MiB
		b := fmt.Sprintf("%d-%s", i, body)
		if err := top.Publish([]byte(b), 0); err != nil {
			failed = true
			continue
		}
		acked = append(acked, b)
	}
	if !failed {
		t.Fatal("filling a 4 MiB tmpfs never failed a publish")
	}
	resp, err := http.Get("http://" + n.HTTPAddr + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	ping, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.HasPrefix(string(ping), "NOK - ") {
		t.Fatalf("/ping on a full disk = %d %q, want 500 NOK - ...", resp.StatusCode, ping)
	}
	// Free space by consuming: finished segments are deleted.
	seen := drain(t, n.TCPAddr, len(acked))
	if m := missing(acked, seen); len(m) > 0 {
		t.Fatalf("%d of %d acknowledged messages lost on a full disk, first %.20q", len(m), len(acked), m[0])
	}
	nsqtest.Eventually(t, 10*time.Second, "a publish to succeed once space returns", func() bool {
		return top.Publish([]byte("after"), 0) == nil && n.Health() == "OK"
	})
	if fi, err := os.Stat(filepath.Join(dir, "nsqx", "t")); err != nil || !fi.IsDir() {
		t.Fatalf("topic directory: %v", err)
	}
}
