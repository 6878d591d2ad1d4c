package diskqueue_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/nsqx/nsqx/diskqueue"
)

// records encodes payloads back to back and returns the bytes and each
// record's offset.
func records(payloads ...string) ([]byte, []int) {
	var b []byte
	var offs []int
	for _, p := range payloads {
		offs = append(offs, len(b))
		b = diskqueue.AppendRecord(b, []byte(p))
	}
	return b, offs
}

// scanned is what one Scan reported.
type scanned struct {
	res      diskqueue.ScanResult
	offs     []int
	payloads []string
}

func scan(data []byte, maxPayload int) scanned {
	var s scanned
	s.res = diskqueue.Scan(data, maxPayload, func(off int, p []byte) {
		s.offs = append(s.offs, off)
		s.payloads = append(s.payloads, string(p))
	})
	return s
}

// Distinct payloads, none of which holds anything that looks like a record.
var abc = []string{"alpha-payload", "bravo-payload-two", "charlie-3"}

// damage returns a copy of b with fn applied.
func damage(b []byte, fn func(b []byte) []byte) []byte {
	return fn(append([]byte(nil), b...))
}

func TestScan(t *testing.T) {
	good, offs := records(abc...)
	end := len(good)
	// Offsets of records 1 and 2 (0-based) and their fields.
	r1, r2 := offs[1], offs[2]
	zeros := make([]byte, 64)
	garbage := []byte("\xde\xad\xbe\xef not a record at all \xff\xff")

	tests := []struct {
		name     string
		data     []byte
		max      int
		want     diskqueue.ScanResult
		payloads []string
		offs     []int
	}{
		{
			name: "empty",
			data: nil,
			want: diskqueue.ScanResult{},
		},
		{
			name:     "good",
			data:     good,
			want:     diskqueue.ScanResult{Records: 3, ValidEnd: end},
			payloads: abc,
			offs:     offs,
		},
		{
			name:     "one byte record",
			data:     diskqueue.AppendRecord(nil, []byte{0}),
			want:     diskqueue.ScanResult{Records: 1, ValidEnd: diskqueue.RecordHeader + 1},
			payloads: []string{"\x00"},
			offs:     []int{0},
		},
		{
			name:     "torn tail mid payload",
			data:     good[:r2+diskqueue.RecordHeader+3],
			want:     diskqueue.ScanResult{Records: 2, ValidEnd: r2, TornTail: true},
			payloads: abc[:2],
			offs:     offs[:2],
		},
		{
			name:     "torn tail mid header",
			data:     good[:r2+5],
			want:     diskqueue.ScanResult{Records: 2, ValidEnd: r2, TornTail: true},
			payloads: abc[:2],
			offs:     offs[:2],
		},
		{
			name:     "torn tail one byte short",
			data:     good[:end-1],
			want:     diskqueue.ScanResult{Records: 2, ValidEnd: r2, TornTail: true},
			payloads: abc[:2],
			offs:     offs[:2],
		},
		{
			name:     "all-zero tail",
			data:     append(append([]byte(nil), good...), zeros...),
			want:     diskqueue.ScanResult{Records: 3, ValidEnd: end, TornTail: true},
			payloads: abc,
			offs:     offs,
		},
		{
			name: "all zero",
			data: zeros,
			want: diskqueue.ScanResult{TornTail: true},
		},
		{
			name:     "bit flip in payload",
			data:     damage(good, func(b []byte) []byte { b[r1+diskqueue.RecordHeader+4] ^= 0x10; return b }),
			want:     diskqueue.ScanResult{Records: 2, Corrupt: 1, ValidEnd: end},
			payloads: []string{abc[0], abc[2]},
			offs:     []int{offs[0], offs[2]},
		},
		{
			name:     "bit flip in length (shorter)",
			data:     damage(good, func(b []byte) []byte { b[r1] ^= 0x01; return b }),
			want:     diskqueue.ScanResult{Records: 2, Corrupt: 1, ValidEnd: end},
			payloads: []string{abc[0], abc[2]},
			offs:     []int{offs[0], offs[2]},
		},
		{
			name:     "bit flip in length (beyond data)",
			data:     damage(good, func(b []byte) []byte { b[r1+2] ^= 0x80; return b }),
			want:     diskqueue.ScanResult{Records: 2, Corrupt: 1, ValidEnd: end},
			payloads: []string{abc[0], abc[2]},
			offs:     []int{offs[0], offs[2]},
		},
		{
			name:     "bit flip in crc",
			data:     damage(good, func(b []byte) []byte { b[r1+5] ^= 0x04; return b }),
			want:     diskqueue.ScanResult{Records: 2, Corrupt: 1, ValidEnd: end},
			payloads: []string{abc[0], abc[2]},
			offs:     []int{offs[0], offs[2]},
		},
		{
			name:     "zero length",
			data:     damage(good, func(b []byte) []byte { binary.LittleEndian.PutUint32(b[r1:], 0); return b }),
			want:     diskqueue.ScanResult{Records: 2, Corrupt: 1, ValidEnd: end},
			payloads: []string{abc[0], abc[2]},
			offs:     []int{offs[0], offs[2]},
		},
		{
			name:     "garbage length",
			data:     damage(good, func(b []byte) []byte { binary.LittleEndian.PutUint32(b[r1:], 0xfffffff0); return b }),
			want:     diskqueue.ScanResult{Records: 2, Corrupt: 1, ValidEnd: end},
			payloads: []string{abc[0], abc[2]},
			offs:     []int{offs[0], offs[2]},
		},
		{
			name:     "first record damaged",
			data:     damage(good, func(b []byte) []byte { b[diskqueue.RecordHeader] ^= 0xff; return b }),
			want:     diskqueue.ScanResult{Records: 2, Corrupt: 1, ValidEnd: end},
			payloads: abc[1:],
			offs:     offs[1:],
		},
		{
			name:     "last record damaged",
			data:     damage(good, func(b []byte) []byte { b[end-1] ^= 0x01; return b }),
			want:     diskqueue.ScanResult{Records: 2, ValidEnd: r2, TornTail: true},
			payloads: abc[:2],
			offs:     offs[:2],
		},
		{
			name:     "two damaged stretches",
			data:     damage(good, func(b []byte) []byte { b[diskqueue.RecordHeader] ^= 1; b[r2] ^= 1; return b }),
			want:     diskqueue.ScanResult{Records: 1, Corrupt: 1, ValidEnd: r2, TornTail: true},
			payloads: abc[1:2],
			offs:     offs[1:2],
		},
		{
			name:     "two adjacent damaged records count once",
			data:     damage(good, func(b []byte) []byte { b[diskqueue.RecordHeader] ^= 1; b[r1+diskqueue.RecordHeader] ^= 1; return b }),
			want:     diskqueue.ScanResult{Records: 1, Corrupt: 1, ValidEnd: end},
			payloads: abc[2:],
			offs:     offs[2:],
		},
		{
			name: "garbage between records",
			data: func() []byte {
				b := append([]byte(nil), good[:r1]...)
				b = append(b, garbage...)
				return append(b, good[r1:]...)
			}(),
			want:     diskqueue.ScanResult{Records: 3, Corrupt: 1, ValidEnd: end + len(garbage)},
			payloads: abc,
			offs:     []int{offs[0], offs[1] + len(garbage), offs[2] + len(garbage)},
		},
		{
			name: "zeros between records",
			data: func() []byte {
				b := append([]byte(nil), good[:r1]...)
				b = append(b, zeros...)
				return append(b, good[r1:]...)
			}(),
			want:     diskqueue.ScanResult{Records: 3, Corrupt: 1, ValidEnd: end + len(zeros)},
			payloads: abc,
			offs:     []int{offs[0], offs[1] + len(zeros), offs[2] + len(zeros)},
		},
		{
			name:     "garbage before records",
			data:     append(append([]byte(nil), garbage...), good...),
			want:     diskqueue.ScanResult{Records: 3, Corrupt: 1, ValidEnd: end + len(garbage)},
			payloads: abc,
			offs:     []int{offs[0] + len(garbage), offs[1] + len(garbage), offs[2] + len(garbage)},
		},
		{
			name:     "garbage tail",
			data:     append(append([]byte(nil), good...), garbage...),
			want:     diskqueue.ScanResult{Records: 3, ValidEnd: end, TornTail: true},
			payloads: abc,
			offs:     offs,
		},
		{
			name:     "payload over max is corrupt",
			data:     good,
			max:      len(abc[1]) - 1,
			want:     diskqueue.ScanResult{Records: 2, Corrupt: 1, ValidEnd: end},
			payloads: []string{abc[0], abc[2]},
			offs:     []int{offs[0], offs[2]},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			max := tt.max
			if max == 0 {
				max = 1 << 20
			}
			got := scan(tt.data, max)
			if got.res != tt.want {
				t.Errorf("Scan(%x) = %+v, want %+v", tt.data, got.res, tt.want)
			}
			if fmt.Sprint(got.payloads) != fmt.Sprint(tt.payloads) {
				t.Errorf("Scan(%x) payloads %q, want %q", tt.data, got.payloads, tt.payloads)
			}
			if fmt.Sprint(got.offs) != fmt.Sprint(tt.offs) {
				t.Errorf("Scan(%x) offsets %v, want %v", tt.data, got.offs, tt.offs)
			}
			// A nil fn gives the same summary.
			if res := diskqueue.Scan(tt.data, max, nil); res != tt.want {
				t.Errorf("Scan(%x, nil fn) = %+v, want %+v", tt.data, res, tt.want)
			}
		})
	}
}

func TestScanPayloadAliasesData(t *testing.T) {
	data, _ := records("abc")
	diskqueue.Scan(data, 1<<10, func(off int, p []byte) {
		if &p[0] != &data[off+diskqueue.RecordHeader] {
			t.Errorf("payload at %d does not alias data", off)
		}
	})
	if n := testing.AllocsPerRun(100, func() { diskqueue.Scan(data, 1<<10, nil) }); n != 0 {
		t.Errorf("Scan allocates %v times per run, want 0", n)
	}
}

func TestSegmentHeader(t *testing.T) {
	h := diskqueue.AppendSegmentHeader(nil, 42)
	if len(h) != diskqueue.SegmentHeader {
		t.Fatalf("AppendSegmentHeader: %d bytes, want %d", len(h), diskqueue.SegmentHeader)
	}
	tests := []struct {
		name   string
		b      []byte
		base   uint64
		wantOK bool
	}{
		{"good", h, 42, true},
		{"with records", diskqueue.AppendRecord(append([]byte(nil), h...), []byte("x")), 42, true},
		{"short", h[:diskqueue.SegmentHeader-1], 0, false},
		{"empty", nil, 0, false},
		{"bad magic", damage(h, func(b []byte) []byte { b[0] = 'X'; return b }), 0, false},
		{"zeros", make([]byte, diskqueue.SegmentHeader), 0, false},
	}
	for _, tt := range tests {
		base, ok := diskqueue.ParseSegmentHeader(tt.b)
		if base != tt.base || ok != tt.wantOK {
			t.Errorf("ParseSegmentHeader(%x) = %d, %v, want %d, %v", tt.b, base, ok, tt.base, tt.wantOK)
		}
	}
}

func TestChecksumIsCastagnoli(t *testing.T) {
	// CRC-32C check value (RFC 3720 B.4 test vector: 32 zero bytes).
	if got := diskqueue.Checksum(make([]byte, 32)); got != 0x8a9136aa {
		t.Errorf("Checksum(32 zero bytes) = %#x, want 0x8a9136aa", got)
	}
	rec := diskqueue.AppendRecord(nil, []byte("123456789"))
	if got := binary.LittleEndian.Uint32(rec); got != 9 {
		t.Errorf("record length = %d, want 9", got)
	}
	if got := binary.LittleEndian.Uint32(rec[4:]); got != 0xe3069283 {
		t.Errorf("record crc = %#x, want 0xe3069283", got)
	}
}

// checkScan runs Scan over data and checks what must hold for any input:
// records are reported in order, do not overlap, lie inside data, carry a
// matching CRC and alias data; the summary agrees with the calls.
func checkScan(t *testing.T, data []byte, maxPayload int) scanned {
	t.Helper()
	var s scanned
	prevEnd := 0
	s.res = diskqueue.Scan(data, maxPayload, func(off int, p []byte) {
		if off < prevEnd {
			t.Fatalf("Scan(%x): record at %d overlaps the previous one ending at %d", data, off, prevEnd)
		}
		end := off + diskqueue.RecordHeader + len(p)
		if end > len(data) || len(p) == 0 || len(p) > maxPayload {
			t.Fatalf("Scan(%x): record at %d of %d bytes is out of bounds", data, off, len(p))
		}
		if &p[0] != &data[off+diskqueue.RecordHeader] {
			t.Fatalf("Scan(%x): payload at %d does not alias data", data, off)
		}
		if int(binary.LittleEndian.Uint32(data[off:])) != len(p) ||
			binary.LittleEndian.Uint32(data[off+4:]) != diskqueue.Checksum(p) {
			t.Fatalf("Scan(%x): record at %d has a bad header", data, off)
		}
		prevEnd = end
		s.offs = append(s.offs, off)
		s.payloads = append(s.payloads, string(p))
	})
	r := s.res
	if r.Records != len(s.offs) {
		t.Fatalf("Scan(%x).Records = %d after %d calls", data, r.Records, len(s.offs))
	}
	if r.ValidEnd != prevEnd {
		t.Fatalf("Scan(%x).ValidEnd = %d, last record ends at %d", data, r.ValidEnd, prevEnd)
	}
	if r.Corrupt > r.Records {
		t.Fatalf("Scan(%x).Corrupt = %d > Records %d: a damaged stretch must end at a good record", data, r.Corrupt, r.Records)
	}
	if !r.TornTail && r.ValidEnd != len(data) {
		t.Fatalf("Scan(%x) = %+v: not torn but ends before %d", data, r, len(data))
	}
	if r.TornTail && r.ValidEnd == len(data) {
		t.Fatalf("Scan(%x) = %+v: torn but nothing after the last record", data, r)
	}
	return s
}

// fuzzPayloads cuts b into non-empty payloads; the first byte picks the
// piece length.
func fuzzPayloads(b []byte) [][]byte {
	if len(b) < 2 {
		return nil
	}
	step := int(b[0])%24 + 1
	var ps [][]byte
	for rest := b[1:]; len(rest) > 0; {
		n := min(step, len(rest))
		ps = append(ps, rest[:n])
		rest = rest[n:]
	}
	return ps
}

// FuzzScan feeds Scan arbitrary bytes, and records that are then damaged:
// it must never panic, always terminate, report only records with a good
// CRC, and find every undamaged record unless a record it reports (a false
// match inside damaged bytes) covers its start.
func FuzzScan(f *testing.F) {
	good, offs := records(abc...)
	f.Add(good, uint16(0), byte(0), uint16(0))
	f.Add(good, uint16(offs[1]+9), byte(0x10), uint16(0))
	f.Add(good, uint16(offs[1]), byte(0x01), uint16(len(good)-3))
	f.Add(good, uint16(offs[1]+5), byte(0x80), uint16(offs[2]+2))
	f.Add(append(append([]byte(nil), good...), make([]byte, 16)...), uint16(0), byte(0), uint16(0))
	f.Add([]byte("\x05hello world, this is several payloads"), uint16(3), byte(0xff), uint16(20))
	f.Add([]byte("\x00a"), uint16(0), byte(0), uint16(0))
	f.Add(make([]byte, 40), uint16(0), byte(0), uint16(0))
	// A payload that itself holds a record: a false match after damage.
	inner := diskqueue.AppendRecord(nil, []byte("inner"))
	f.Add(append([]byte{byte(len(inner) + 3)}, append([]byte("xyz"), inner...)...), uint16(9), byte(1), uint16(0))

	f.Fuzz(func(t *testing.T, in []byte, flipAt uint16, flip byte, cut uint16) {
		const maxPayload = 1 << 12

		// Arbitrary bytes.
		checkScan(t, in, maxPayload)
		checkScan(t, in, 1)

		// Round trip: the input cut into payloads, encoded, scans back.
		ps := fuzzPayloads(in)
		var data []byte
		var starts []int
		for _, p := range ps {
			starts = append(starts, len(data))
			data = diskqueue.AppendRecord(data, p)
		}
		s := checkScan(t, data, maxPayload)
		if s.res.Corrupt != 0 || s.res.TornTail || len(s.payloads) != len(ps) {
			t.Fatalf("Scan(AppendRecord(%q)) = %+v, %q", ps, s.res, s.payloads)
		}
		for i := range ps {
			if s.payloads[i] != string(ps[i]) || s.offs[i] != starts[i] {
				t.Fatalf("Scan(AppendRecord(%q)) record %d = %q at %d", ps, i, s.payloads[i], s.offs[i])
			}
		}
		if len(data) == 0 {
			return
		}

		// Scanning two halves split at a record boundary finds the same.
		if len(starts) > 1 {
			k := starts[int(cut)%len(starts)]
			a, b := checkScan(t, data[:k], maxPayload), checkScan(t, data[k:], maxPayload)
			if a.res.Records+b.res.Records != len(ps) || a.res.TornTail || b.res.TornTail {
				t.Fatalf("Scan of %q split at %d: %+v + %+v", ps, k, a.res, b.res)
			}
		}

		// Torn write: a cut anywhere keeps every whole record before it,
		// reported first and in order.
		k := int(cut) % (len(data) + 1)
		torn := checkScan(t, data[:k], maxPayload)
		whole := 0
		for i := range ps {
			if starts[i]+diskqueue.RecordHeader+len(ps[i]) <= k {
				whole++
			}
		}
		if torn.res.Records < whole {
			t.Fatalf("Scan(%q cut at %d) = %+v, want at least the %d whole records", ps, k, torn.res, whole)
		}
		for i := 0; i < whole; i++ {
			if torn.offs[i] != starts[i] {
				t.Fatalf("Scan(%q cut at %d) record %d at %d, want %d", ps, k, i, torn.offs[i], starts[i])
			}
		}

		// Damage: flip bits of one byte. Every record whose bytes are
		// untouched is found, unless a reported record covers its start.
		if flip == 0 {
			return
		}
		at := int(flipAt) % len(data)
		bad := bytes.Clone(data)
		bad[at] ^= flip
		d := checkScan(t, bad, maxPayload)
		found := map[int]bool{}
		for _, o := range d.offs {
			found[o] = true
		}
		for i, p := range ps {
			end := starts[i] + diskqueue.RecordHeader + len(p)
			if at >= starts[i] && at < end {
				continue // the damaged record
			}
			if found[starts[i]] {
				continue
			}
			covered := false
			for j, o := range d.offs {
				if o < starts[i] && starts[i] < o+diskqueue.RecordHeader+len(d.payloads[j]) {
					covered = true
				}
			}
			if !covered {
				t.Fatalf("Scan(%q with byte %d ^= %#x) = %+v: undamaged record %d at %d lost", ps, at, flip, d.res, i, starts[i])
			}
		}
	})
}

func BenchmarkScan(b *testing.B) {
	var data []byte
	payload := bytes.Repeat([]byte("x"), 200)
	for len(data) < 1<<20 {
		data = diskqueue.AppendRecord(data, payload)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		diskqueue.Scan(data, 1<<20, nil)
	}
}

// BenchmarkScanResyncWorstCase is damage whose every 4-byte word is a
// length that fits in what follows: resync computes a CRC over the rest of
// the stretch at each such offset, so the cost grows with the square of
// the damaged stretch (a torn 1 MiB record crafted this way takes seconds).
func BenchmarkScanResyncWorstCase(b *testing.B) {
	for _, size := range []int{16 << 10, 64 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			data := make([]byte, size)
			for i := 0; i+4 <= len(data); i += 4 {
				binary.LittleEndian.PutUint32(data[i:], uint32(len(data)-i-diskqueue.RecordHeader))
			}
			b.SetBytes(int64(size))
			for b.Loop() {
				diskqueue.Scan(data, 1<<20, nil)
			}
		})
	}
}
