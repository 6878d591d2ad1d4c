package nsqd_test

// Damaged files under --data-path: nsqd writes its logs, the test breaks
// them the ways disks and crashes do, and a restarted nsqd must neither
// crash nor hang, must skip (and count) what is damaged and deliver
// everything else.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/diskqueue"
	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// logTee is a log destination that writes to the test's output and keeps
// a copy to search.
type logTee struct {
	mu  sync.Mutex
	w   io.Writer
	buf bytes.Buffer
}

func (l *logTee) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	return l.w.Write(p)
}

func (l *logTee) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Contains(l.buf.Bytes(), []byte(s))
}

// durableConfig is a durable-mode (--mem-queue-size=0) in-process nsqd
// config whose log the returned logTee records.
func durableConfig(t *testing.T) (*nsqd.Config, *logTee) {
	cfg := nsqtest.DefaultConfig(t)
	cfg.MemQueueSize = 0
	lt := &logTee{w: t.Output()}
	cfg.Logger = slog.New(slog.NewTextHandler(lt, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return cfg, lt
}

// startWithin starts an nsqd on cfg; loading damaged files must not take
// longer than d (a hang panics with a clear message rather than running
// into the test binary's timeout).
func startWithin(t *testing.T, cfg *nsqd.Config, d time.Duration) *nsqtest.NSQD {
	t.Helper()
	watchdog := time.AfterFunc(d, func() {
		panic(fmt.Sprintf("%s: nsqd did not start within %v on %s", t.Name(), d, cfg.DataPath))
	})
	defer watchdog.Stop()
	return nsqtest.StartNSQDConfig(t, cfg)
}

// corruptBody is the body of message i: unique, and long enough that the
// topic's log spans several segments.
func corruptBody(i int) string {
	return fmt.Sprintf("msg-%05d-%s", i, strings.Repeat("x", 40+i%23))
}

func publishBodies(t *testing.T, n *nsqtest.NSQD, topic string, bodies []string) {
	t.Helper()
	tp, err := n.Topic(topic)
	if err != nil {
		t.Fatalf("Topic(%q) = %v", topic, err)
	}
	for _, b := range bodies {
		if err := tp.Publish([]byte(b), 0); err != nil {
			t.Fatalf("Publish(%q) = %v", b, err)
		}
	}
}

// drainChannel subscribes to topic/channel with go-nsq, FINs everything,
// waits until the channel holds nothing (queued, in flight or deferred)
// and returns how often each body arrived.
func drainChannel(t *testing.T, n *nsqtest.NSQD, topic, channel string, within time.Duration) map[string]int {
	t.Helper()
	cfg := nsq.NewConfig()
	cfg.MaxInFlight = 200
	c, err := nsq.NewConsumer(topic, channel, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(newGoNSQLogger(t), nsq.LogLevelWarning)
	var mu sync.Mutex
	got := map[string]int{}
	c.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		mu.Lock()
		got[string(m.Body)]++
		mu.Unlock()
		return nil
	}))
	if err := c.ConnectToNSQD(n.TCPAddr); err != nil {
		t.Fatalf("consumer %s/%s: %v", topic, channel, err)
	}
	defer func() {
		c.Stop()
		select {
		case <-c.StopChan:
		case <-time.After(10 * time.Second):
			t.Errorf("consumer did not stop within 10s")
		}
	}()
	nsqtest.Eventually(t, within, fmt.Sprintf("%s/%s drained", topic, channel), func() bool {
		st := n.Stats(nsqd.StatsFilter{Topic: topic, Channel: channel, IncludeClients: true})
		for _, ts := range st.Topics {
			for _, cs := range ts.Channels {
				if cs.ChannelName != channel || len(cs.Clients) == 0 || cs.Clients[0].ReadyCount == 0 {
					continue
				}
				return cs.Depth == 0 && cs.InFlightCount == 0 && cs.DeferredCount == 0
			}
		}
		return false
	})
	mu.Lock()
	defer mu.Unlock()
	return copyCounts(got)
}

func copyCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// metricValue returns the value of an unlabelled metric from GET /metrics.
func metricValue(httpAddr, name string) (float64, error) {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}

// diskRec is one record as found in a segment file.
type diskRec struct {
	path string
	off  int // file offset of the record's header
	size int // header + payload
	seq  uint64
	body string
}

// segFiles returns the topic's segment files, oldest first.
func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// diskRecords reads every record of the topic's segment files (a message's
// payload is seq, ts, id, [due,] body; none of ours is deferred).
func diskRecords(t *testing.T, dir string) [][]diskRec {
	t.Helper()
	var segs [][]diskRec
	for _, f := range segFiles(t, dir) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := diskqueue.ParseSegmentHeader(b); !ok {
			t.Fatalf("%s: bad segment header before any damage", f)
		}
		var recs []diskRec
		res := diskqueue.Scan(b[diskqueue.SegmentHeader:], 1<<20, func(off int, p []byte) {
			recs = append(recs, diskRec{
				path: f,
				off:  diskqueue.SegmentHeader + off,
				size: diskqueue.RecordHeader + len(p),
				seq:  binary.LittleEndian.Uint64(p) &^ (1 << 63),
				body: string(p[24:]),
			})
		})
		if res.Corrupt != 0 || res.TornTail {
			t.Fatalf("%s: %+v before any damage", f, res)
		}
		segs = append(segs, recs)
	}
	return segs
}

func patchFile(t *testing.T, path string, fn func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// checkDelivered fails unless got holds each of want exactly once and
// nothing else.
func checkDelivered(t *testing.T, got map[string]int, want []string) {
	t.Helper()
	seen := copyCounts(got)
	missing := 0
	for _, b := range want {
		if seen[b] != 1 {
			if missing < 10 {
				t.Errorf("%.9s… delivered %d times, want 1", b, seen[b])
			}
			missing++
		}
		delete(seen, b)
	}
	if missing > 10 {
		t.Errorf("… and %d more messages not delivered exactly once", missing-10)
	}
	for b, k := range seen {
		t.Errorf("unexpected message %.20q delivered %d times", b, k)
	}
}

const corruptTopic = "corrupt"

// TestCorruptSegments damages a durable topic's segment files in one way
// per case, restarts nsqd, and checks that exactly the damaged records are
// lost (and counted), that appends after recovery work, and that both
// survive another restart.
func TestCorruptSegments(t *testing.T) {
	t.Parallel()
	const count = 400
	type setup struct {
		dir  string
		segs [][]diskRec
	}
	// mid returns a record in the middle of segment i (negative: from the
	// end).
	mid := func(s setup, i int) diskRec {
		if i < 0 {
			i += len(s.segs)
		}
		return s.segs[i][len(s.segs[i])/2]
	}
	last := func(s setup) diskRec {
		seg := s.segs[len(s.segs)-1]
		return seg[len(seg)-1]
	}
	flip := func(t *testing.T, r diskRec, at int) {
		patchFile(t, r.path, func(b []byte) []byte { b[r.off+at] ^= 0x20; return b })
	}
	tests := []struct {
		name string
		// damage breaks the files and returns the bodies lost and how
		// many corrupt records nsqd must count.
		damage func(t *testing.T, s setup) (lost []string, corrupt uint64)
		// after, if set, checks the files after the restart.
		after func(t *testing.T, s setup)
		// log, if set, must appear in nsqd's log after the restart.
		log string
	}{
		{
			name: "torn tail mid payload",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				r := last(s)
				if err := os.Truncate(r.path, int64(r.off+r.size-7)); err != nil {
					t.Fatal(err)
				}
				return []string{r.body}, 0
			},
			after: func(t *testing.T, s setup) {
				// The torn record is cut off: the file ends at the last
				// good record.
				r := last(s)
				if got := fileSize(t, r.path); got != int64(r.off) {
					t.Errorf("%s is %d bytes after recovery, want %d (torn tail truncated)", r.path, got, r.off)
				}
			},
		},
		{
			name: "torn tail mid header",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				r := last(s)
				if err := os.Truncate(r.path, int64(r.off+3)); err != nil {
					t.Fatal(err)
				}
				return []string{r.body}, 0
			},
		},
		{
			name: "zeroed tail",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				// Preallocated or never written: nothing lost.
				r := last(s)
				patchFile(t, r.path, func(b []byte) []byte { return append(b, make([]byte, 4096)...) })
				return nil, 0
			},
		},
		{
			name: "torn tail of zeros over the last record",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				r := last(s)
				patchFile(t, r.path, func(b []byte) []byte {
					clear(b[r.off+r.size/2:])
					return b
				})
				return []string{r.body}, 0
			},
		},
		{
			name: "bit flip in body, oldest segment",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				r := mid(s, 0)
				flip(t, r, r.size-5)
				return []string{r.body}, 1
			},
		},
		{
			name: "bit flip in body, middle segment",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				r := mid(s, 1)
				flip(t, r, r.size-5)
				return []string{r.body}, 1
			},
		},
		{
			name: "bit flip in body, newest segment",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				r := mid(s, -1)
				flip(t, r, r.size-5)
				return []string{r.body}, 1
			},
		},
		{
			name: "bit flip in first record of a segment",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				r := s.segs[1][0]
				flip(t, r, diskqueue.RecordHeader+2)
				return []string{r.body}, 1
			},
		},
		{
			name: "bit flip in seq",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				r := mid(s, 0)
				flip(t, r, diskqueue.RecordHeader)
				return []string{r.body}, 1
			},
		},
		{
			name: "bit flip in crc",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				r := mid(s, 1)
				flip(t, r, 5)
				return []string{r.body}, 1
			},
		},
		{
			name: "garbage length",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				r := mid(s, 0)
				patchFile(t, r.path, func(b []byte) []byte {
					binary.LittleEndian.PutUint32(b[r.off:], 0xfffffff0)
					return b
				})
				return []string{r.body}, 1
			},
		},
		{
			name: "short garbage length",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				r := mid(s, -1)
				patchFile(t, r.path, func(b []byte) []byte {
					binary.LittleEndian.PutUint32(b[r.off:], 3)
					return b
				})
				return []string{r.body}, 1
			},
		},
		{
			name: "two adjacent records",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				seg := s.segs[1]
				a, b := seg[3], seg[4]
				flip(t, a, a.size-1)
				flip(t, b, diskqueue.RecordHeader+10)
				return []string{a.body, b.body}, 2
			},
		},
		{
			name: "garbage between records",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				r := mid(s, 1)
				patchFile(t, r.path, func(b []byte) []byte {
					return slices.Insert(b, r.off, []byte("\xde\xad\xbe\xef garbage \x00\x01\x02")...)
				})
				return nil, 0
			},
		},
		{
			name: "zeroed header of oldest segment",
			log:  "segment header damaged",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				// The records carry their own seqs: none is lost.
				patchFile(t, s.segs[0][0].path, func(b []byte) []byte {
					clear(b[:diskqueue.SegmentHeader])
					return b
				})
				return nil, 0
			},
		},
		{
			name: "garbled header and first record of middle segment",
			log:  "segment header damaged",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				seg := s.segs[1]
				patchFile(t, seg[0].path, func(b []byte) []byte {
					for i := range seg[0].off + 5 {
						b[i] ^= 0x5a
					}
					return b
				})
				return []string{seg[0].body}, 1
			},
		},
		{
			name: "header naming another segment",
			log:  "segment header damaged",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				// A well-formed header with the wrong base: the records
				// are still placed by their own seqs.
				seg := s.segs[1]
				patchFile(t, seg[0].path, func(b []byte) []byte {
					copy(b, diskqueue.AppendSegmentHeader(nil, seg[0].seq+1000))
					return b
				})
				return nil, 0
			},
		},
		{
			name: "missing middle segment",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				if err := os.Remove(s.segs[1][0].path); err != nil {
					t.Fatal(err)
				}
				// The records it held are counted where they are missed.
				var lost []string
				for _, r := range s.segs[1] {
					lost = append(lost, r.body)
				}
				return lost, uint64(len(lost))
			},
		},
		{
			name: "header-only newest segment",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				// A crash between creating a segment file and writing its
				// first record.
				next := last(s).seq + 1
				name := filepath.Join(s.dir, fmt.Sprintf("%020d.seg", next))
				if err := os.WriteFile(name, diskqueue.AppendSegmentHeader(nil, next), 0o644); err != nil {
					t.Fatal(err)
				}
				return nil, 0
			},
		},
		{
			name: "empty newest segment file",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				// A crash before the header reached the file.
				next := last(s).seq + 1
				name := filepath.Join(s.dir, fmt.Sprintf("%020d.seg", next))
				if err := os.WriteFile(name, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				return nil, 0
			},
		},
		{
			name: "deleted header of newest segment",
			log:  "segment header damaged",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				seg := s.segs[len(s.segs)-1]
				patchFile(t, seg[0].path, func(b []byte) []byte { return b[diskqueue.SegmentHeader:] })
				return nil, 0
			},
		},
		{
			name: "garbage instead of the newest segment",
			damage: func(t *testing.T, s setup) ([]string, uint64) {
				seg := s.segs[len(s.segs)-1]
				patchFile(t, seg[0].path, func(b []byte) []byte { return bytes.Repeat([]byte("not a segment "), 100) })
				var lost []string
				for _, r := range seg {
					lost = append(lost, r.body)
				}
				return lost, 0
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, logs := durableConfig(t)
			n := nsqtest.StartNSQDConfig(t, cfg)
			var bodies []string
			for i := range count {
				bodies = append(bodies, corruptBody(i))
			}
			publishBodies(t, n, corruptTopic, bodies)
			n.Stop(t)

			s := setup{dir: filepath.Join(cfg.DataPath, "nsqx", corruptTopic)}
			s.segs = diskRecords(t, s.dir)
			if len(s.segs) < 3 {
				t.Fatalf("%d messages made %d segments, want at least 3", count, len(s.segs))
			}
			lost, wantCorrupt := tt.damage(t, s)

			n = startWithin(t, cfg, 20*time.Second)
			want := slices.DeleteFunc(slices.Clone(bodies), func(b string) bool { return slices.Contains(lost, b) })
			got := drainChannel(t, n, corruptTopic, "c", 20*time.Second)
			checkDelivered(t, got, want)
			if c := n.CorruptRecords(corruptTopic); c != wantCorrupt {
				t.Errorf("corrupt records counted: %d, want %d", c, wantCorrupt)
			}
			if v, err := metricValue(n.HTTPAddr, "nsqd_corrupt_records_total"); err != nil || v != float64(wantCorrupt) {
				t.Errorf("/metrics nsqd_corrupt_records_total = %v (%v), want %d", v, err, wantCorrupt)
			}
			if wantCorrupt > 0 && !logs.contains("corrupt records skipped") {
				t.Errorf("no %q in the log", "corrupt records skipped")
			}
			if tt.log != "" && !logs.contains(tt.log) {
				t.Errorf("no %q in the log", tt.log)
			}
			if tt.after != nil {
				tt.after(t, s)
			}

			// Appends after recovery (enough to start new segments and
			// release old ones) reach the channel and survive a restart.
			var more []string
			for i := range 300 {
				more = append(more, "after-"+strconv.Itoa(i)+"-"+strings.Repeat("y", 60))
			}
			publishBodies(t, n, corruptTopic, more)
			n.Stop(t)
			n = startWithin(t, cfg, 20*time.Second)
			checkDelivered(t, drainChannel(t, n, corruptTopic, "c", 20*time.Second), more)
			if h := n.Health(); h != "OK" {
				t.Errorf("Health() = %q, want OK", h)
			}
		})
	}
}

// TestCorruptChannelProgress damages a channel's progress file: the
// channel must start over from the oldest retained message, so nothing it
// had not finished is lost.
func TestCorruptChannelProgress(t *testing.T) {
	t.Parallel()
	const count, finished = 400, 150
	tests := []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
		{"truncated by one byte", func(b []byte) []byte { return b[:len(b)-1] }},
		{"empty", func(b []byte) []byte { return nil }},
		{"bit flip in cursor", func(b []byte) []byte { b[8] ^= 0x04; return b }},
		{"bit flip in crc", func(b []byte) []byte { b[len(b)-1] ^= 0x01; return b }},
		{"garbage", func(b []byte) []byte { return bytes.Repeat([]byte{0xa5}, len(b)) }},
		{"bad magic", func(b []byte) []byte { copy(b, "NSQXCH99"); return b }},
		{"huge entry count", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[32:], 0xffffffff)
			return b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, logs := durableConfig(t)
			n := nsqtest.StartNSQDConfig(t, cfg)
			var bodies []string
			for i := range count {
				bodies = append(bodies, corruptBody(i))
			}
			publishBodies(t, n, corruptTopic, bodies[:finished])
			checkDelivered(t, drainChannel(t, n, corruptTopic, "c", 20*time.Second), bodies[:finished])
			publishBodies(t, n, corruptTopic, bodies[finished:])
			n.Stop(t)

			chanPath := filepath.Join(cfg.DataPath, "nsqx", corruptTopic, "c.chan")
			if _, err := os.Stat(chanPath); err != nil {
				t.Fatalf("no progress file after a clean stop: %v", err)
			}
			patchFile(t, chanPath, tt.damage)

			n = startWithin(t, cfg, 20*time.Second)
			got := drainChannel(t, n, corruptTopic, "c", 20*time.Second)
			again := 0
			for _, b := range bodies[:finished] {
				again += got[b]
				delete(got, b)
			}
			checkDelivered(t, got, bodies[finished:])
			t.Logf("%d of %d finished messages delivered again", again, finished)
			if !logs.contains("channel progress unreadable") {
				t.Errorf("no %q in the log", "channel progress unreadable")
			}
		})
	}
}

// TestCorruptMetadata garbles nsqd.dat: nsqd.New must fail with an error
// naming the file rather than start without the topics it lists; moved
// aside as the error says, nsqd starts and loses nothing.
func TestCorruptMetadata(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"garbage", func(b []byte) []byte { return []byte("\x00\xffnot json at all") }},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
		{"empty", func(b []byte) []byte { return nil }},
		{"bit flip", func(b []byte) []byte { b[0] ^= 0x40; return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, _ := durableConfig(t)
			n := nsqtest.StartNSQDConfig(t, cfg)
			bodies := []string{corruptBody(1), corruptBody(2), corruptBody(3)}
			publishBodies(t, n, corruptTopic, bodies[:1])
			checkDelivered(t, drainChannel(t, n, corruptTopic, "c", 20*time.Second), bodies[:1])
			publishBodies(t, n, corruptTopic, bodies[1:])
			n.Stop(t)

			meta := filepath.Join(cfg.DataPath, "nsqd.dat")
			patchFile(t, meta, tt.damage)
			if _, err := nsqd.New(cfg); err == nil {
				t.Fatalf("nsqd.New with a garbled %s succeeded", meta)
			} else if !strings.Contains(err.Error(), meta) {
				t.Errorf("nsqd.New error %q does not name %s", err, meta)
			} else {
				t.Logf("nsqd.New: %v", err)
			}

			if err := os.Rename(meta, meta+".bad"); err != nil {
				t.Fatal(err)
			}
			n = startWithin(t, cfg, 20*time.Second)
			checkDelivered(t, drainChannel(t, n, corruptTopic, "c", 20*time.Second), bodies[1:])
		})
	}
}

// TestCorruptREQJournal damages a channel's REQ journal (the REQs with a
// delay since the last progress save) in the image a kill -9 would leave:
// a damaged entry must not hide its message, nor another one.
func TestCorruptREQJournal(t *testing.T) {
	t.Parallel()
	const count = 20
	tests := []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"intact", func(b []byte) []byte { return b }},
		{"torn last entry", func(b []byte) []byte { return b[:len(b)-7] }},
		{"garbage appended", func(b []byte) []byte { return append(b, "\xff\xfe garbage\x00"...) }},
		{"all garbage", func(b []byte) []byte { return bytes.Repeat([]byte{0x5a}, len(b)) }},
		// A journal entry is seq, due, attempts (uint64, int64, uint16).
		{"bit flip in a due time", func(b []byte) []byte { b[8+7] ^= 0x20; return b }},
		{"bit flip in a seq", func(b []byte) []byte { b[0] ^= 0x01; return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, _ := durableConfig(t)
			cfg.SyncTimeout = time.Hour // no progress save but the final one
			n := nsqtest.StartNSQDConfig(t, cfg)
			var bodies []string
			for i := range count {
				bodies = append(bodies, corruptBody(i))
			}
			publishBodies(t, n, corruptTopic, bodies)

			// REQ every message once with a short delay, FIN it when it
			// comes back.
			var (
				mu   sync.Mutex
				seen = map[string]int{}
			)
			c, err := nsq.NewConsumer(corruptTopic, "c", nsq.NewConfig())
			if err != nil {
				t.Fatal(err)
			}
			c.SetLogger(newGoNSQLogger(t), nsq.LogLevelWarning)
			c.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
				mu.Lock()
				defer mu.Unlock()
				seen[string(m.Body)]++
				if seen[string(m.Body)] == 1 {
					m.DisableAutoResponse()
					m.RequeueWithoutBackoff(50 * time.Millisecond)
				}
				return nil
			}))
			if err := c.ConnectToNSQD(n.TCPAddr); err != nil {
				t.Fatal(err)
			}
			nsqtest.Eventually(t, 20*time.Second, "every message REQ'd and FINed", func() bool {
				mu.Lock()
				done := len(seen) == count
				for _, k := range seen {
					done = done && k == 2
				}
				mu.Unlock()
				cs, ok := durChannelStats(n, corruptTopic, "c")
				return done && ok && cs.Depth == 0 && cs.InFlightCount == 0 && cs.DeferredCount == 0
			})
			c.Stop()
			<-c.StopChan
			image := t.TempDir()
			copyDir(t, cfg.DataPath, image)
			n.Stop(t)

			journal := filepath.Join(image, "nsqx", corruptTopic, "c.req")
			if fileSize(t, journal) == 0 {
				t.Fatalf("REQ journal %s is empty", journal)
			}
			patchFile(t, journal, tt.damage)
			icfg := *cfg
			icfg.DataPath = image
			n = startWithin(t, &icfg, 20*time.Second)
			got := drainChannel(t, n, corruptTopic, "c", 20*time.Second)
			for _, b := range bodies {
				if got[b] == 0 {
					t.Errorf("%.9s… not delivered after the crash", b)
				}
			}
		})
	}
}
