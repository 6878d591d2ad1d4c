package nsqd_test

// nsqd.Check on real data paths: nsqd writes one, the test damages copies
// of it in each way Check must report, and checks that Check changes
// nothing and that its depths are what nsqd itself reports.

import (
	"bytes"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
	"github.com/nsqx/nsqx/wire"
)

// chkSubscribe subscribes over the raw protocol with RDY rdy.
func chkSubscribe(t *testing.T, addr, topic, channel string, rdy int) *chkConn {
	t.Helper()
	c := &chkConn{t: t, nc: nsqtest.Dial(t, addr)}
	c.write(wire.MagicV2)
	c.write(wire.AppendCommand(nil, "SUB", nil, topic, channel))
	c.expectOK()
	c.write(wire.AppendCommand(nil, "RDY", nil, strconv.Itoa(rdy)))
	return c
}

type chkConn struct {
	t  *testing.T
	nc interface {
		Write([]byte) (int, error)
		Read([]byte) (int, error)
	}
}

func (c *chkConn) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *chkConn) frame() (int32, []byte) {
	c.t.Helper()
	for {
		typ, data, err := wire.ReadFrame(c.nc, 1<<20)
		if err != nil {
			c.t.Fatalf("read frame: %v", err)
		}
		if typ == wire.FrameResponse && string(data) == "_heartbeat_" {
			c.write(wire.AppendCommand(nil, "NOP", nil))
			continue
		}
		return typ, data
	}
}

func (c *chkConn) expectOK() {
	c.t.Helper()
	if typ, data := c.frame(); typ != wire.FrameResponse || string(data) != "OK" {
		c.t.Fatalf("got frame %d %q, want OK", typ, data)
	}
}

func (c *chkConn) message() wire.Message {
	c.t.Helper()
	typ, data := c.frame()
	if typ != wire.FrameMessage {
		c.t.Fatalf("got frame %d %q, want a message", typ, data)
	}
	m, err := wire.DecodeMessage(data)
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// chkDataPath has nsqd write a data path and stop cleanly:
//
//   - orders: 200 messages over several segments and a DPUB due in an
//     hour; channel billing took 4, finished 3 and had 1 in flight at
//     shutdown; channel audit took nothing.
//   - idle: 2 messages, no channel.
//   - held: channel c with 1 message, then paused with 2 more.
func chkDataPath(t *testing.T) string {
	dir := t.TempDir()
	cfg, _ := importConfig(t, dir, 10000)
	n := nsqtest.StartNSQDConfig(t, cfg)
	orders, err := n.Topic("orders")
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"billing", "audit"} {
		if _, err := orders.Channel(ch); err != nil {
			t.Fatal(err)
		}
	}
	var bodies []string
	for i := range 200 {
		bodies = append(bodies, corruptBody(i))
	}
	publishBodies(t, n, "orders", bodies)
	if err := orders.Publish([]byte("later"), time.Hour); err != nil {
		t.Fatal(err)
	}
	c := chkSubscribe(t, n.TCPAddr, "orders", "billing", 4)
	var fins []byte
	for i := range 4 {
		m := c.message()
		if i < 3 {
			fins = wire.AppendCommand(fins, "FIN", nil, string(m.ID[:]))
		}
	}
	c.write(append(wire.AppendCommand(nil, "RDY", nil, "0"), fins...))
	nsqtest.Eventually(t, 5*time.Second, "billing settled", func() bool {
		cs, ok := channelStats(n, "orders", "billing")
		_, fins := sumClients(cs)
		return ok && cs.InFlightCount == 1 && fins == 3
	})

	publishBodies(t, n, "idle", []string{"i0", "i1"})
	held, err := n.Topic("held")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.Channel("c"); err != nil {
		t.Fatal(err)
	}
	publishBodies(t, n, "held", []string{"h0"})
	held.Pause()
	publishBodies(t, n, "held", []string{"h1", "h2"})
	n.Stop(t)
	return dir
}

// chkSnapshot is every file's mode, size, modification time and content.
func chkSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		sum := ""
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum = string(sha256.New().Sum(b))
		}
		out[p] = fi.Mode().String() + fi.ModTime().String() + strconv.FormatInt(fi.Size(), 10) + sum
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// chkRun runs Check on dir, fails the test if it changed anything, and
// returns its verdict and report.
func chkRun(t *testing.T, dir string) (bool, string) {
	t.Helper()
	before := chkSnapshot(t, dir)
	var out bytes.Buffer
	ok, err := nsqd.Check(dir, &out)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	t.Logf("Check report:\n%s", out.String())
	after := chkSnapshot(t, dir)
	if len(before) != len(after) {
		t.Errorf("Check changed the set of files: %d before, %d after", len(before), len(after))
	}
	for p, v := range before {
		if after[p] != v {
			t.Errorf("Check changed %s", p)
		}
	}
	return ok, out.String()
}

var chkChannelLine = regexp.MustCompile(`(?m)^  channel (\S+)(?: \(paused\))?: depth (\d+) .*deferred (\d+)$`)

func TestCheckClean(t *testing.T) {
	dir := chkDataPath(t)
	ok, out := chkRun(t, dir)
	if !ok {
		t.Fatalf("Check of a clean data path found problems")
	}
	for _, want := range []string{
		"nsqd.dat: 3 topics, 3 channels",
		"topic orders: 201 messages retained in ",
		"  channel billing: depth 197 (196 queued, 1 requeued or in flight at shutdown), deferred 1\n",
		"  channel audit: depth 200 (200 queued, 0 requeued or in flight at shutdown), deferred 1\n",
		"topic idle: 2 messages retained",
		"  no channels: 2 messages held for the first channel\n",
		"topic held (paused): 3 messages retained",
		"  2 messages held at the paused topic\n",
		"  channel c: depth 1 ",
		"\nno damage found\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}

	// nsqd, started on the same data path, reports the same depths. (After
	// a restart nsqd counts a DPUB record no cursor has reached yet as
	// depth, not deferred: its due time is only in the log, so compare
	// the sums.)
	cfg, _ := importConfig(t, dir, 10000)
	n := nsqtest.StartNSQDConfig(t, cfg)
	matches := chkChannelLine.FindAllStringSubmatch(out, -1)
	if len(matches) != 3 {
		t.Fatalf("report has %d channel lines, want 3", len(matches))
	}
	for _, m := range matches {
		topic := "orders"
		if m[1] == "c" {
			topic = "held"
		}
		cs := mustChannelStats(t, n, topic, m[1])
		depth, _ := strconv.ParseInt(m[2], 10, 64)
		deferred, _ := strconv.ParseInt(m[3], 10, 64)
		if cs.Depth+int64(cs.DeferredCount) != depth+deferred || cs.Depth < depth {
			t.Errorf("%s/%s: Check says depth %s deferred %s; nsqd says %d, %d", topic, m[1], m[2], m[3], cs.Depth, cs.DeferredCount)
		}
	}

	// Checking while nsqd runs works, says so, and leaves nsqd its lock.
	ok, out = chkRun(t, dir)
	if !ok || !strings.Contains(out, "an nsqd holds this data path") {
		t.Errorf("Check while nsqd runs: ok %v, report lacks the note", ok)
	}
	n.Stop(t)
	n = nsqtest.StartNSQDConfig(t, cfg)
	n.Stop(t)
}

// chkOrdersSegs returns the segment files of topic orders, oldest first.
func chkOrdersSegs(t *testing.T, dir string) []string {
	segs := segFiles(t, filepath.Join(dir, "nsqx", "orders"))
	if len(segs) < 3 {
		t.Fatalf("orders has %d segments, want several", len(segs))
	}
	return segs
}

func TestCheckDamage(t *testing.T) {
	clean := chkDataPath(t)
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   []string
	}{
		{"corrupt record", func(t *testing.T, dir string) {
			patchFile(t, chkOrdersSegs(t, dir)[0], func(b []byte) []byte {
				b[len(b)/2] ^= 0xff
				return b
			})
		}, []string{"DAMAGE nsqx/orders/00000000000000000001.seg: 1 record damaged or missing (skipped)"}},
		{"torn tail", func(t *testing.T, dir string) {
			segs := chkOrdersSegs(t, dir)
			patchFile(t, segs[len(segs)-1], func(b []byte) []byte { return b[:len(b)-5] })
		}, []string{"torn write at the end"}},
		{"bad header", func(t *testing.T, dir string) {
			patchFile(t, chkOrdersSegs(t, dir)[0], func(b []byte) []byte {
				copy(b, "GARBAGE!")
				return b
			})
		}, []string{"DAMAGE nsqx/orders/00000000000000000001.seg: bad segment header (records are placed by their own seqs)"}},
		{"header of another segment", func(t *testing.T, dir string) {
			segs := chkOrdersSegs(t, dir)
			second, err := os.ReadFile(segs[1])
			if err != nil {
				t.Fatal(err)
			}
			patchFile(t, segs[0], func(b []byte) []byte {
				copy(b, second[:24])
				return b
			})
		}, []string{"header names segment"}},
		{"unreadable progress", func(t *testing.T, dir string) {
			patchFile(t, filepath.Join(dir, "nsqx", "orders", "audit.chan"), func(b []byte) []byte {
				b[10] ^= 1
				return b
			})
		}, []string{"DAMAGE nsqx/orders/audit.chan: progress unreadable (bad channel state file: checksum mismatch)"}},
		{"garbled nsqd.dat", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "nsqd.dat"), []byte(`{"topics":[{"name":`), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"DAMAGE nsqd.dat: garbled"}},
		{"invalid name in nsqd.dat", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "nsqd.dat"), []byte(`{"topics":[{"name":"bad name!","channels":[]}],"version":"1.3.0"}`), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{`DAMAGE nsqd.dat: invalid topic name "bad name!"`}},
		{"segment moved aside", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "nsqx", "orders", "00000000000000009999.seg.bad"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"moved aside"}},
		{"NSQ files not imported", func(t *testing.T, dir string) {
			ts := time.Now().UnixNano()
			b := nsqd.AppendNSQRecord(nil, ts, 0, "0123456789abcdef", []byte("one"))
			b = nsqd.AppendNSQRecord(b, ts, 0, "0123456789abcde0", []byte("two"))
			b = append(b, nsqd.AppendNSQRecord(nil, ts, 0, "0123456789abcde1", []byte("three"))[:10]...)
			if err := os.WriteFile(filepath.Join(dir, nsqd.NSQDataFile("orders:billing", 0)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{
			"NSQ queue orders:billing: PENDING 2 messages in 1 file not yet imported",
			"nsqd will not import these until it is drained",
			"torn write at the end of the newest file",
		}},
		{"segments lost", func(t *testing.T, dir string) {
			for _, f := range chkOrdersSegs(t, dir) {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
		}, []string{
			"progress is 4 messages past the end of the log",
			"1 message (requeued, deferred or in flight) past the end of the log",
		}},
		{"interrupted import", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "nsqx", "idle", "nsq-import"), []byte("done\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"PENDING an NSQ import was interrupted (done)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, clean, dir) // crash_test.go
			tt.damage(t, dir)
			ok, out := chkRun(t, dir)
			if ok {
				t.Errorf("Check found no problem")
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("report lacks %q", w)
				}
			}
			if !regexp.MustCompile(`\n\d+ problems found \(`).MatchString(out) {
				t.Errorf("report lacks the problem count")
			}
			if strings.Contains(tt.name, "header") && strings.Contains(out, "damaged or missing") {
				t.Errorf("a damaged header alone loses no record, but the report says:\n%s", out)
			}
		})
	}
}

// TestCheckNSQDataPath checks an NSQ data path before its import: every
// queue is pending with what the import would take, and its damage shows.
func TestCheckNSQDataPath(t *testing.T) {
	f := ordersFixture(t)
	ok, out := chkRun(t, f.dir)
	if ok {
		t.Errorf("Check found nothing to import")
	}
	for _, want := range []string{
		"NSQ queue orders: PENDING 3 messages in 1 file",
		"NSQ queue orders:billing: PENDING 3 messages",
		"NSQ queue orders:audit: PENDING 5 messages in 2 files",
		"NSQ queue held:c: PENDING 1 message ",
		"NSQ queue solo: PENDING 2 messages",
		"1 data file before the read position (already consumed)",
		"1 damaged stretch of records",
		"torn write at the end of the newest file",
		"solo.diskqueue.meta.dat: no meta file",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}

	// After the import only the files kept aside are left to mention.
	cfg, _ := importConfig(t, f.dir, 10000)
	nsqtest.StartNSQDConfig(t, cfg).Stop(t)
	ok, out = chkRun(t, f.dir)
	if !ok || !strings.Contains(out, "nsq-imported/: 13 NSQ files already imported") {
		t.Errorf("after the import: ok %v; want ok and a note on nsq-imported/", ok)
	}
}
