package diskqueue

import (
	"encoding/binary"
	"hash/crc32"
)

// RecordHeader is the size of a record's header: length, payload CRC and
// header CRC.
const RecordHeader = 12

// SegmentHeader is the size of a segment file's header.
const SegmentHeader = 24

// MaxPayload bounds a record's payload (and so what a reader allocates).
const MaxPayload = 1 << 30

var segMagic = [8]byte{'N', 'S', 'Q', 'X', 'S', 'E', 'G', '2'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is the CRC-32C of p.
func Checksum(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }

// PutHeader fills b[0:12] with the header of payload.
func PutHeader(b []byte, payload []byte) {
	binary.LittleEndian.PutUint32(b[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:], Checksum(payload))
	binary.LittleEndian.PutUint32(b[8:], Checksum(b[0:8]))
}

// AppendRecord appends a whole record.
func AppendRecord(dst []byte, payload []byte) []byte {
	var h [RecordHeader]byte
	PutHeader(h[:], payload)
	return append(append(dst, h[:]...), payload...)
}

// AppendSegmentHeader appends a segment file header for base.
func AppendSegmentHeader(dst []byte, base uint64) []byte {
	dst = append(dst, segMagic[:]...)
	dst = binary.LittleEndian.AppendUint64(dst, base)
	return append(dst, make([]byte, 8)...)
}

// ParseSegmentHeader returns the base of a segment file header.
func ParseSegmentHeader(b []byte) (base uint64, ok bool) {
	if len(b) < SegmentHeader || [8]byte(b[:8]) != segMagic {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[8:]), true
}

// valid reports whether a well-formed record starts at b[0] and returns
// its payload length.
func valid(b []byte, maxPayload int) (int, bool) {
	if len(b) < RecordHeader {
		return 0, false
	}
	// The header's own CRC first: it is cheap, and it makes a false start
	// while resynchronising after damage a 1 in 2^32 event, so recovery
	// costs one short CRC per byte of damage instead of one payload CRC.
	if Checksum(b[0:8]) != binary.LittleEndian.Uint32(b[8:]) {
		return 0, false
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || int64(n) > int64(maxPayload) || int64(n) > int64(len(b)-RecordHeader) {
		return 0, false
	}
	if Checksum(b[RecordHeader:RecordHeader+int(n)]) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, false
	}
	return int(n), true
}

// ScanResult summarises a Scan.
type ScanResult struct {
	Records  int  // good records found
	Corrupt  int  // damaged stretches skipped between good records
	ValidEnd int  // offset just past the last good record
	TornTail bool // bytes after ValidEnd that hold no good record
}

// Scan walks the records in data (a segment's bytes after its header),
// calling fn for each good record with its offset in data and payload
// (aliasing data). A damaged stretch is counted once and skipped up to the
// next offset where a good record starts. Scan never allocates and always
// terminates: each step advances by at least one byte.
func Scan(data []byte, maxPayload int, fn func(off int, payload []byte)) ScanResult {
	var r ScanResult
	off := 0
	for off < len(data) {
		n, ok := valid(data[off:], maxPayload)
		if ok {
			if fn != nil {
				fn(off, data[off+RecordHeader:off+RecordHeader+n])
			}
			r.Records++
			off += RecordHeader + n
			r.ValidEnd = off
			continue
		}
		// All-zero bytes are preallocated or never-written space: stop,
		// unless a good record follows (then it is damage).
		next := resync(data, off+1, maxPayload)
		if next < 0 {
			// Nothing good follows: a torn write (or damage at the end).
			r.TornTail = true
			return r
		}
		r.Corrupt++
		off = next
	}
	return r
}

// resync finds the first offset >= from where a good record starts, or -1.
func resync(data []byte, from, maxPayload int) int {
	for i := from; i+RecordHeader <= len(data); i++ {
		if _, ok := valid(data[i:], maxPayload); ok {
			return i
		}
	}
	return -1
}
