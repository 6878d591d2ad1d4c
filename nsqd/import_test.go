package nsqd_test

// Importing an NSQ 1.x --data-path: fixtures are NSQ diskqueue files
// written by the test from the documented format (export_import_test.go),
// nsqd starts on them, and go-nsq consumers must get exactly the messages
// NSQ still owed each channel, with their IDs, timestamps and attempts.

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// nsqMsg is a message in a fixture queue.
type nsqMsg struct {
	id       string
	ts       int64
	attempts uint16
	body     string
}

// nsqFixture builds an NSQ data path.
type nsqFixture struct {
	t    *testing.T
	dir  string
	next int
	msgs map[string]nsqMsg // by body
}

func newNSQFixture(t *testing.T, nsqdDat string) *nsqFixture {
	f := &nsqFixture{t: t, dir: t.TempDir(), msgs: map[string]nsqMsg{}}
	if nsqdDat != "" {
		f.write("nsqd.dat", []byte(nsqdDat))
	}
	return f
}

func (f *nsqFixture) write(name string, b []byte) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), b, 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// msg makes a message with a fresh NSQ-style ID, published an hour ago.
func (f *nsqFixture) msg(body string, attempts uint16) nsqMsg {
	f.next++
	m := nsqMsg{
		id:       fmt.Sprintf("%016x", 0x0c6a1b2c3d400000+f.next),
		ts:       time.Now().Add(-time.Hour).UnixNano() + int64(f.next),
		attempts: attempts,
		body:     body,
	}
	f.msgs[body] = m
	return m
}

func (f *nsqFixture) msgsOf(bodies ...string) []nsqMsg {
	out := make([]nsqMsg, len(bodies))
	for i, b := range bodies {
		out[i] = f.msg(b, 0)
	}
	return out
}

func appendNSQMsgs(b []byte, ms ...nsqMsg) []byte {
	for _, m := range ms {
		b = nsqd.AppendNSQRecord(b, m.ts, m.attempts, m.id, []byte(m.body))
	}
	return b
}

// queue writes a queue's data files and, unless meta is "", its meta file.
func (f *nsqFixture) queue(name string, files [][]byte, meta string) {
	for i, b := range files {
		f.write(nsqd.NSQDataFile(name, i), b)
	}
	if meta != "" {
		f.write(nsqd.NSQMetaFile(name), []byte(meta))
	}
}

// nsqFiles lists the NSQ diskqueue files in dir.
func nsqFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if strings.Contains(e.Name(), ".diskqueue.") {
			out = append(out, e.Name())
		}
	}
	return out
}

// importConfig is an nsqd config on dir whose log the returned logTee
// keeps.
func importConfig(t *testing.T, dir string, memQueueSize int64) (*nsqd.Config, *logTee) {
	cfg := nsqtest.DefaultConfig(t)
	cfg.DataPath = dir
	cfg.MemQueueSize = memQueueSize
	lt := &logTee{w: t.Output()}
	cfg.Logger = slog.New(slog.NewTextHandler(lt, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return cfg, lt
}

// consumeExactly subscribes to topic/channel, takes want messages (FINning
// each), checks that nothing else is left, and compares each with the
// fixture (when it is from the fixture): same ID and timestamp, and NSQ's
// attempts plus this delivery.
func consumeExactly(t *testing.T, n *nsqtest.NSQD, f *nsqFixture, topic, channel string, want ...string) {
	t.Helper()
	in := newInbox()
	c := startConsumer(t, n.TCPAddr, topic, channel, nil, 1, in.handler(false))
	defer stopConsumer(t, c)
	got := map[string]*nsq.Message{}
	var bodies []string
	for range want {
		r := in.next(t, 10*time.Second, fmt.Sprintf("%s/%s: have %q, want %q", topic, channel, bodies, want))
		bodies = append(bodies, string(r.msg.Body))
		got[string(r.msg.Body)] = r.msg
	}
	waitSettled(t, n, topic, channel, uint64(len(want)))
	select {
	case r := <-in:
		t.Fatalf("%s/%s: unexpected extra message %q", topic, channel, r.msg.Body)
	default:
	}
	sort.Strings(bodies)
	w := slices.Sorted(slices.Values(want))
	if !slices.Equal(bodies, w) {
		t.Fatalf("%s/%s got %q, want %q", topic, channel, bodies, w)
	}
	for body, m := range got {
		fm, ok := f.msgs[body]
		if !ok {
			continue // published to nsqx, not imported
		}
		if string(m.ID[:]) != fm.id || m.Timestamp != fm.ts || m.Attempts != fm.attempts+1 {
			t.Errorf("%s/%s %q: id %s ts %d attempts %d; want %s %d %d",
				topic, channel, body, m.ID[:], m.Timestamp, m.Attempts, fm.id, fm.ts, fm.attempts+1)
		}
	}
}

// ordersFixture is an NSQ data path after a clean NSQ shutdown:
//
//   - topic orders, channels billing, audit, archive. Its own queue has a
//     consumed file 0 and 3 unconsumed records of 5 in file 1.
//   - orders:billing: 2 consumed records, then b2, b3 (in flight when NSQ
//     stopped: 3 attempts), a record with a smashed length, b5.
//   - orders:audit: two files, a0..a4, and a torn half record at the end,
//     past the meta file's write position.
//   - archive has no queue: it gets the topic's records only.
//   - topic held, paused, channel c: c's own record flows, the topic's two
//     wait for unpause.
//   - topic solo, not in nsqd.dat, no channels, no meta file: its first
//     channel gets both records.
func ordersFixture(t *testing.T) *nsqFixture {
	f := newNSQFixture(t, `{"topics":[`+
		`{"channels":[{"name":"billing","paused":false},{"name":"audit","paused":false},{"name":"archive","paused":false}],"name":"orders","paused":false},`+
		`{"channels":[{"name":"c","paused":false}],"name":"held","paused":true}],"version":"1.3.0"}`)

	old := appendNSQMsgs(nil, f.msgsOf("o-old0", "o-old1")...)
	consumed := appendNSQMsgs(nil, f.msgsOf("o0", "o1")...)
	file1 := appendNSQMsgs(consumed, f.msgsOf("o2", "o3", "o4")...)
	f.queue("orders", [][]byte{old, file1}, nsqd.NSQMeta(3, 1, int64(len(consumed)), 1, int64(len(file1))))

	consumed = appendNSQMsgs(nil, f.msgsOf("b0", "b1")...)
	b := appendNSQMsgs(consumed, f.msg("b2", 0), f.msg("b3", 3))
	bad := len(b)
	b = appendNSQMsgs(b, f.msg("b4", 0), f.msg("b5", 0))
	b[bad], b[bad+1] = 0x7f, 0x7f // b4's length no longer fits
	f.queue("orders:billing", [][]byte{b}, nsqd.NSQMeta(4, 0, int64(len(consumed)), 0, int64(len(b))))

	a0 := appendNSQMsgs(nil, f.msgsOf("a0", "a1", "a2")...)
	a1 := appendNSQMsgs(nil, f.msgsOf("a3", "a4")...)
	writePos := len(a1)
	torn := appendNSQMsgs(nil, f.msg("a5", 0))
	a1 = append(a1, torn[:len(torn)/2]...)
	f.queue("orders:audit", [][]byte{a0, a1}, nsqd.NSQMeta(5, 0, 0, 1, int64(writePos)))

	f.queue("held:c", [][]byte{appendNSQMsgs(nil, f.msg("hc0", 0))}, "")
	ht := appendNSQMsgs(nil, f.msgsOf("ht0", "ht1")...)
	f.queue("held", [][]byte{ht}, nsqd.NSQMeta(2, 0, 0, 0, int64(len(ht))))

	f.queue("solo", [][]byte{appendNSQMsgs(nil, f.msgsOf("s0", "s1")...)}, "")
	return f
}

func TestImportNSQDataPath(t *testing.T) {
	for _, mode := range []struct {
		name string
		mem  int64
	}{{"memory", 10000}, {"durable", 0}} {
		t.Run(mode.name, func(t *testing.T) {
			f := ordersFixture(t)
			original, _ := os.ReadFile(filepath.Join(f.dir, "nsqd.dat"))
			cfg, lt := importConfig(t, f.dir, mode.mem)
			n := nsqtest.StartNSQDConfig(t, cfg)

			if !lt.contains("imported NSQ data") {
				t.Error(`log lacks "imported NSQ data"`)
			}
			if left := nsqFiles(t, f.dir); len(left) != 0 {
				t.Errorf("NSQ files left in the data path: %q", left)
			}
			aside := filepath.Join(f.dir, "nsq-imported")
			if got := nsqFiles(t, aside); len(got) != 12 {
				t.Errorf("nsq-imported holds %d NSQ files, want 12: %q", len(got), got)
			}
			if b, err := os.ReadFile(filepath.Join(aside, "nsqd.dat")); err != nil || string(b) != string(original) {
				t.Errorf("nsq-imported/nsqd.dat = %q, %v; want NSQ's original", b, err)
			}
			if got := n.CorruptRecords("orders"); got != 2 {
				t.Errorf("orders corrupt records = %d, want 2 (billing's smashed length, audit's torn tail)", got)
			}

			// Depths before anyone consumes, as /stats shows them.
			for _, d := range []struct {
				topic, channel string
				depth          int64
			}{
				{"orders", "billing", 6}, {"orders", "audit", 8}, {"orders", "archive", 3},
				{"held", "c", 1},
			} {
				if cs := mustChannelStats(t, n, d.topic, d.channel); cs.Depth != d.depth {
					t.Errorf("%s/%s depth = %d, want %d", d.topic, d.channel, cs.Depth, d.depth)
				}
			}
			if ts, _ := topicStats(n, "held"); ts.Depth != 2 || !ts.Paused {
				t.Errorf("held: depth %d paused %v, want 2 held at the paused topic", ts.Depth, ts.Paused)
			}
			if ts, ok := topicStats(n, "solo"); !ok || ts.Depth != 2 {
				t.Errorf("solo: depth %d (exists %v), want 2", ts.Depth, ok)
			}

			consumeExactly(t, n, f, "orders", "billing", "b2", "b3", "b5", "o2", "o3", "o4")
			consumeExactly(t, n, f, "orders", "audit", "a0", "a1", "a2", "a3", "a4", "o2", "o3", "o4")
			consumeExactly(t, n, f, "orders", "archive", "o2", "o3", "o4")
			consumeExactly(t, n, f, "held", "c", "hc0")
			consumeExactly(t, n, f, "solo", "first", "s0", "s1")

			held, err := n.Topic("held")
			if err != nil {
				t.Fatal(err)
			}
			held.Unpause()
			consumeExactly(t, n, f, "held", "c", "ht0", "ht1")

			// A restart imports nothing again: every channel stays empty.
			n.Stop(t)
			cfg2, lt2 := importConfig(t, f.dir, mode.mem)
			n2 := nsqtest.StartNSQDConfig(t, cfg2)
			if lt2.contains("imported NSQ") {
				t.Error("second start imported again")
			}
			for _, tc := range [][2]string{{"orders", "billing"}, {"orders", "audit"}, {"orders", "archive"}, {"held", "c"}, {"solo", "first"}} {
				if cs := mustChannelStats(t, n2, tc[0], tc[1]); cs.Depth != 0 || cs.DeferredCount != 0 {
					t.Errorf("after restart %s/%s: depth %d deferred %d, want 0", tc[0], tc[1], cs.Depth, cs.DeferredCount)
				}
			}
		})
	}
}

// moveNSQFilesBack returns the imported NSQ files to the data path, as if the move
// had not happened, and sets the topic's import marker to state.
func moveNSQFilesBack(t *testing.T, dir, topic, state string) {
	t.Helper()
	aside := filepath.Join(dir, "nsq-imported")
	for _, name := range nsqFiles(t, aside) {
		if !strings.HasPrefix(name, topic+".") && !strings.HasPrefix(name, topic+":") {
			continue
		}
		if err := os.Rename(filepath.Join(aside, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "nsqx", topic, "nsq-import"), []byte(state+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestImportInterrupted restarts after the two crash points of an import:
// before it was complete (redone from scratch, nothing twice) and after
// (only the files are moved).
func TestImportInterrupted(t *testing.T) {
	f := ordersFixture(t)
	cfg, _ := importConfig(t, f.dir, 10000)
	n := nsqtest.StartNSQDConfig(t, cfg)
	n.Stop(t)

	for _, state := range []string{"begin", "done"} {
		moveNSQFilesBack(t, f.dir, "orders", state)
		cfg, lt := importConfig(t, f.dir, 10000)
		n := nsqtest.StartNSQDConfig(t, cfg)
		if got := nsqFiles(t, f.dir); len(got) != 0 {
			t.Errorf("%s: NSQ files left in the data path: %q", state, got)
		}
		if _, err := os.Stat(filepath.Join(f.dir, "nsqx", "orders", "nsq-import")); !os.IsNotExist(err) {
			t.Errorf("%s: import marker still there (%v)", state, err)
		}
		if state == "begin" && !lt.contains("importing the topic again") {
			t.Errorf("begin: log lacks the re-import")
		}
		for _, d := range []struct {
			channel string
			depth   int64
		}{{"billing", 6}, {"audit", 8}, {"archive", 3}} {
			if cs := mustChannelStats(t, n, "orders", d.channel); cs.Depth != d.depth {
				t.Errorf("%s: orders/%s depth = %d, want %d", state, d.channel, cs.Depth, d.depth)
			}
		}
		// Topics whose import was complete before are not touched.
		if ts, _ := topicStats(n, "held"); ts.Depth != 2 {
			t.Errorf("%s: held depth = %d, want 2", state, ts.Depth)
		}
		if state == "done" {
			consumeExactly(t, n, f, "orders", "billing", "b2", "b3", "b5", "o2", "o3", "o4")
		}
		n.Stop(t)
	}
}

// TestImportRefusedWhenTopicHoldsMessages: NSQ files that turn up for a
// topic nsqx already holds undelivered messages of are left alone.
func TestImportRefusedWhenTopicHoldsMessages(t *testing.T) {
	f := newNSQFixture(t, "")
	cfg, _ := importConfig(t, f.dir, 10000)
	n := nsqtest.StartNSQDConfig(t, cfg)
	tp, err := n.Topic("orders")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Channel("billing"); err != nil {
		t.Fatal(err)
	}
	publishBodies(t, n, "orders", []string{"nsqx0", "nsqx1"})
	n.Stop(t)

	f.queue("orders:billing", [][]byte{appendNSQMsgs(nil, f.msgsOf("b0")...)}, "")
	cfg, lt := importConfig(t, f.dir, 10000)
	n = nsqtest.StartNSQDConfig(t, cfg)
	if !lt.contains("NSQ files not imported") {
		t.Error("log lacks the refusal")
	}
	if got := nsqFiles(t, f.dir); len(got) != 1 {
		t.Errorf("NSQ files in the data path = %q, want the one left alone", got)
	}
	consumeExactly(t, n, f, "orders", "billing", "nsqx0", "nsqx1")
}

// TestImportEmptyPausedTopic empties a paused topic while its channels
// still have imported records to go, which takes a second jump besides
// the import's: right after the import (the jumps join), and after more
// was published (the channel owns its imported records instead).
func TestImportEmptyPausedTopic(t *testing.T) {
	for _, later := range []bool{false, true} {
		t.Run(fmt.Sprintf("later=%v", later), func(t *testing.T) {
			f := newNSQFixture(t, `{"topics":[{"channels":[{"name":"x","paused":false},{"name":"y","paused":false}],"name":"t","paused":true}],"version":"1.3.0"}`)
			f.queue("t:x", [][]byte{appendNSQMsgs(nil, f.msgsOf("x0", "x1")...)}, "")
			f.queue("t:y", [][]byte{appendNSQMsgs(nil, f.msgsOf("y0")...)}, "")
			f.queue("t", [][]byte{appendNSQMsgs(nil, f.msgsOf("t0")...)}, "")
			cfg, _ := importConfig(t, f.dir, 10000)
			n := nsqtest.StartNSQDConfig(t, cfg)
			tp, err := n.Topic("t")
			if err != nil {
				t.Fatal(err)
			}
			wantX, wantY := []string{"x0", "x1"}, []string{"y0"}
			var depthX, depthY int64 = 2, 1
			if later {
				tp.Unpause()
				if err := tp.Publish([]byte("p1"), 0); err != nil {
					t.Fatal(err)
				}
				tp.Pause()
				if err := tp.Publish([]byte("p2"), 0); err != nil {
					t.Fatal(err)
				}
				wantX = append(wantX, "t0", "p1")
				wantY = append(wantY, "t0", "p1")
				depthX, depthY = 4, 3
			}
			tp.Empty()
			if cs := mustChannelStats(t, n, "t", "x"); cs.Depth != depthX {
				t.Errorf("x depth = %d, want %d", cs.Depth, depthX)
			}
			if cs := mustChannelStats(t, n, "t", "y"); cs.Depth != depthY {
				t.Errorf("y depth = %d, want %d", cs.Depth, depthY)
			}
			tp.Unpause()
			consumeExactly(t, n, f, "t", "x", wantX...)
			consumeExactly(t, n, f, "t", "y", wantY...)
		})
	}
}

// TestImportTooLarge: a message NSQ took that is beyond --max-msg-size
// stops the start with an error naming the size; a large enough
// --max-msg-size imports it.
func TestImportTooLarge(t *testing.T) {
	f := newNSQFixture(t, "")
	big := strings.Repeat("x", 2000)
	f.queue("orders", [][]byte{appendNSQMsgs(nil, f.msg("small", 0), f.msg(big, 0))}, "")
	cfg, _ := importConfig(t, f.dir, 10000)
	cfg.MaxMsgSize = 1000
	if _, err := nsqd.New(cfg); err == nil || !strings.Contains(err.Error(), "--max-msg-size=2000") {
		t.Fatalf("New = %v, want an error asking for --max-msg-size=2000", err)
	}
	if got := nsqFiles(t, f.dir); len(got) != 1 {
		t.Fatalf("NSQ files = %q after the refused start, want them in place", got)
	}
	cfg, _ = importConfig(t, f.dir, 10000)
	cfg.MaxMsgSize = 2000
	n := nsqtest.StartNSQDConfig(t, cfg)
	consumeExactly(t, n, f, "orders", "c", "small", big)
}
