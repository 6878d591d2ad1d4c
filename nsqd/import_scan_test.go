package nsqd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsqx/nsqx/wire"
)

// scanRec is a test record of an NSQ diskqueue file.
type scanRec struct {
	attempts uint16
	body     string
}

func (r scanRec) id(i int) string { return fmt.Sprintf("%016x", 0x5a0000+i) }

var scanBase = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano()

// nsqFile builds a data file of recs and returns it with each record's
// offset.
func nsqFile(recs []scanRec) ([]byte, []int) {
	var b []byte
	var offs []int
	for i, r := range recs {
		offs = append(offs, len(b))
		b = AppendNSQRecord(b, scanBase+int64(i), r.attempts, r.id(i), []byte(r.body))
	}
	return b, offs
}

func scanBodies(t *testing.T, data []byte) (bodies []string, corrupt int, torn bool) {
	t.Helper()
	n, corrupt, torn, err := scanNSQRecords(data, func(m wire.Message) error {
		bodies = append(bodies, string(m.Body))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(bodies) {
		t.Fatalf("scan counted %d records, handed out %d", n, len(bodies))
	}
	return bodies, corrupt, torn
}

func TestImportScanRecords(t *testing.T) {
	recs := []scanRec{{0, "alpha"}, {3, "beta"}, {0, ""}, {1, strings.Repeat("0123456789abcdef", 8)}, {0, "omega"}}
	all := []string{"alpha", "beta", "", strings.Repeat("0123456789abcdef", 8), "omega"}
	file, offs := nsqFile(recs)
	size := func(i int) int {
		if i+1 < len(offs) {
			return offs[i+1] - offs[i]
		}
		return len(file) - offs[i]
	}
	tests := []struct {
		name    string
		damage  func(b []byte) []byte
		want    []string
		corrupt int
		torn    bool
	}{
		{"clean", nil, all, 0, false},
		{"empty", func([]byte) []byte { return nil }, nil, 0, false},
		{"length too large", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offs[1]:], 0x7fffffff)
			return b
		}, without(all, 1), 1, false},
		{"length too small", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offs[2]:], 3)
			return b
		}, without(all, 2), 1, false},
		{"length wrong but fits", func(b []byte) []byte {
			// Record 1 claims to end inside record 2: good records start
			// inside it, so it is the damaged one.
			binary.BigEndian.PutUint32(b[offs[1]:], uint32(size(1)-4+5))
			return b
		}, without(all, 1), 1, false},
		{"length wrong, ending on a record", func(b []byte) []byte {
			// Without a checksum this is undetectable: record 1 swallows
			// record 2 (NSQ would deliver the same).
			binary.BigEndian.PutUint32(b[offs[1]:], uint32(size(1)+size(2)-4))
			return b
		}, []string{"alpha", "beta" + string(file[offs[2]:offs[3]]), all[3], "omega"}, 0, false},
		{"id not hex", func(b []byte) []byte {
			b[offs[3]+4+10+5] = 'z'
			return b
		}, without(all, 3), 1, false},
		{"header smashed after a good record", func(b []byte) []byte {
			copy(b[offs[2]:], "\xff\xff\xff\xff\xff\xff")
			return b
		}, without(all, 2), 1, false},
		{"garbage between records", func(b []byte) []byte {
			return slices.Concat(b[:offs[2]], []byte("\x00\x01garbage\xff"), b[offs[2]:])
		}, all, 1, false},
		{"torn last record", func(b []byte) []byte { return b[:len(b)-3] }, all[:4], 0, true},
		{"torn in the length", func(b []byte) []byte { return b[:offs[4]+2] }, all[:4], 0, true},
		{"torn in the id", func(b []byte) []byte { return b[:offs[4]+4+12] }, all[:4], 0, true},
		{"zeros after the end", func(b []byte) []byte { return append(b, make([]byte, 100)...) }, all, 0, true},
		{"all zeros", func(b []byte) []byte { return make([]byte, len(b)) }, nil, 0, true},
		{"damage at the start", func(b []byte) []byte {
			b[offs[0]] = 0x40
			return b
		}, all[1:], 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(file)
			if tt.damage != nil {
				b = tt.damage(b)
			}
			got, corrupt, torn := scanBodies(t, b)
			if !slices.Equal(got, tt.want) || corrupt != tt.corrupt || torn != tt.torn {
				t.Errorf("scan = %q, corrupt %d, torn %v; want %q, %d, %v", got, corrupt, torn, tt.want, tt.corrupt, tt.torn)
			}
		})
	}
}

func without(s []string, i int) []string { return slices.Delete(slices.Clone(s), i, i+1) }

func TestImportScanKeepsFields(t *testing.T) {
	file, _ := nsqFile([]scanRec{{7, "x"}, {0, "y"}})
	var got []wire.Message
	scanNSQRecords(file, func(m wire.Message) error {
		got = append(got, m)
		return nil
	})
	if len(got) != 2 {
		t.Fatalf("got %d messages, want 2", len(got))
	}
	r := scanRec{}
	for i, m := range got {
		if m.Timestamp != scanBase+int64(i) || string(m.ID[:]) != r.id(i) {
			t.Errorf("message %d = ts %d id %s, want %d %s", i, m.Timestamp, m.ID[:], scanBase+int64(i), r.id(i))
		}
	}
	if got[0].Attempts != 7 || got[1].Attempts != 0 {
		t.Errorf("attempts = %d, %d; want 7, 0", got[0].Attempts, got[1].Attempts)
	}
}

func TestImportFindQueues(t *testing.T) {
	names := []string{
		"nsqd.dat", "nsqx", "nsq-imported",
		"orders.diskqueue.meta.dat", "orders.diskqueue.000010.dat", "orders.diskqueue.000002.dat",
		"orders:billing.diskqueue.000000.dat", "orders:billing.diskqueue.000001.dat.bad",
		"orders:billing.diskqueue.meta.dat.123.tmp",
		"a.diskqueue.b.diskqueue.000000.dat", // topic "a.diskqueue.b"
		"win;chan.diskqueue.meta.dat",
		"notes.txt",
	}
	qs := findNSQQueues(names)
	var got []string
	for _, q := range qs {
		var nums []string
		for _, d := range q.data {
			nums = append(nums, fmt.Sprint(d.num))
		}
		got = append(got, fmt.Sprintf("%s|%s|%s|meta=%s|data=%s|files=%d", q.name, q.topic, q.channel, q.meta, strings.Join(nums, ","), len(q.files)))
	}
	want := []string{
		"a.diskqueue.b|a.diskqueue.b||meta=|data=0|files=1",
		"orders|orders||meta=orders.diskqueue.meta.dat|data=2,10|files=3",
		"orders:billing|orders|billing|meta=|data=0|files=3",
		"win;chan|win|chan|meta=win;chan.diskqueue.meta.dat|data=|files=1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("findNSQQueues =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestImportParseMeta(t *testing.T) {
	tests := []struct {
		in   string
		want nsqMeta
		ok   bool
	}{
		{"3\n1,52\n1,130\n", nsqMeta{3, 1, 52, 1, 130}, true},
		{"0\n0,0\n0,0\n", nsqMeta{}, true},
		{"3\n1,52\n", nsqMeta{}, false},
		{"x\n1,52\n1,130\n", nsqMeta{}, false},
		{"3\n-1,52\n1,130\n", nsqMeta{}, false},
		{"", nsqMeta{}, false},
	}
	for _, tt := range tests {
		got, err := parseNSQMeta([]byte(tt.in))
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("parseNSQMeta(%q) = %+v, %v; want %+v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzImportScan feeds arbitrary bytes, and damaged versions of a good
// file, to the NSQ record scanner: it must terminate without panicking,
// every message it hands out must lie inside the data, and a clean file
// must come back whole.
func FuzzImportScan(f *testing.F) {
	good, _ := nsqFile([]scanRec{{0, "one"}, {2, "two"}, {0, "three"}})
	f.Add(good, -1, byte(0))
	f.Add(good, 0, byte(0xff))
	f.Add(good, 40, byte('g'))
	f.Add([]byte{}, -1, byte(0))
	f.Fuzz(func(t *testing.T, data []byte, at int, v byte) {
		data = bytes.Clone(data)
		if at >= 0 && at < len(data) {
			data[at] = v
		}
		n, corrupt, _, err := scanNSQRecords(data, func(m wire.Message) error {
			if len(m.Body) > len(data) {
				t.Fatalf("body of %d bytes from %d bytes of data", len(m.Body), len(data))
			}
			return nil
		})
		if err != nil || n < 0 || corrupt < 0 {
			t.Fatalf("scan = %d, %d, %v", n, corrupt, err)
		}
		if bytes.Equal(data, good) {
			if got, c, torn := scanBodies(t, data); !slices.Equal(got, []string{"one", "two", "three"}) || c != 0 || torn {
				t.Fatalf("clean file scanned as %q, %d, %v", got, c, torn)
			}
		}
	})
}
