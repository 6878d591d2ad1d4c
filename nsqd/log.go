package nsqd

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// msgLog is a topic's append-only message log. Each message is stored once,
// as a record in a segment: a fixed-size byte buffer plus an index of record
// offsets. Records are addressed by sequence number; sequence numbers are
// dense and start at 1 (0 means "none").
//
// Record layout inside a segment (native to this process, not a disk
// format):
//
//	ts    int64   publish time, ns
//	id    uint64  message ID (shown as 16 hex digits)
//	size  uint32  body length; the top bit says a due time follows
//	due   int64   only when flagged: DPUB due time, ns
//	body  size bytes
//
// Concurrency: one writer at a time (the topic serialises Append under
// Topic.mu). Readers may read any record below tail without the topic lock:
// a segment's data and index are allocated at full size up front and never
// reallocated, bytes are written before tail is advanced (an atomic store),
// and a reader only looks below tail. mu guards the segment list itself.
type msgLog struct {
	mu   sync.RWMutex
	segs []*segment // ascending by base; never empty after the first append
	head uint64     // first retained seq; guarded by mu

	tail atomic.Uint64 // next seq to assign: records [head, tail) exist

	bytes    atomic.Int64 // bytes held by live segments
	nextSize int          // capacity of the next segment (writer only)
}

type segment struct {
	base uint64   // seq of the first record
	data []byte   // full capacity, never resliced
	offs []uint32 // offs[i] is the offset of record base+i
	used int      // bytes written (writer only)
	n    int      // records written (writer only)
}

const (
	recHeader    = 8 + 8 + 4
	dueFlag      = 1 << 31
	minSegment   = 4 << 10
	maxSegment   = 1 << 20
	avgRecordMin = 48 // index capacity is data capacity / avgRecordMin
)

func newLog() *msgLog {
	l := &msgLog{head: 1, nextSize: minSegment}
	l.tail.Store(1)
	return l
}

// record is one decoded message, body aliasing segment memory.
type record struct {
	ts   int64
	id   uint64
	due  int64
	body []byte
}

// reserve makes sure the tail segment can take a record of n bytes, starting
// a new segment if needed. Writer only.
func (l *msgLog) reserve(n int, seq uint64) *segment {
	if len(l.segs) > 0 {
		s := l.segs[len(l.segs)-1]
		if s.used+n <= len(s.data) && s.n < len(s.offs) {
			return s
		}
	}
	size := l.nextSize
	if l.nextSize < maxSegment {
		l.nextSize *= 2
	}
	for size < n {
		size *= 2
	}
	idx := size / avgRecordMin
	if idx < 1 {
		idx = 1
	}
	s := &segment{base: seq, data: make([]byte, size), offs: make([]uint32, idx)}
	l.bytes.Add(int64(size + 4*idx))
	l.mu.Lock()
	if len(l.segs) == 0 {
		l.head = s.base
	}
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	return s
}

// append writes one record without publishing it; the caller publishes a
// batch with commit. Writer only.
func (l *msgLog) append(seq uint64, ts int64, id uint64, due int64, body []byte) {
	n := recHeader + len(body)
	if due != 0 {
		n += 8
	}
	s := l.reserve(n, seq)
	if s.base+uint64(s.n) != seq {
		panic("nsqd: log append out of order")
	}
	b := s.data[s.used : s.used+n]
	binary.LittleEndian.PutUint64(b[0:], uint64(ts))
	binary.LittleEndian.PutUint64(b[8:], id)
	size := uint32(len(body))
	off := recHeader
	if due != 0 {
		size |= dueFlag
		binary.LittleEndian.PutUint64(b[recHeader:], uint64(due))
		off += 8
	}
	binary.LittleEndian.PutUint32(b[16:], size)
	copy(b[off:], body)
	s.offs[s.n] = uint32(s.used)
	s.used += n
	s.n++
}

// commit makes every record below next visible to readers.
func (l *msgLog) commit(next uint64) { l.tail.Store(next) }

// segmentFor returns the segment holding seq, or nil when seq has been
// released or not yet written.
func (l *msgLog) segmentFor(seq uint64) *segment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	segs := l.segs
	lo, hi := 0, len(segs)
	for lo < hi {
		m := (lo + hi) / 2
		if segs[m].base <= seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return nil
	}
	s := segs[lo-1]
	if seq < l.head {
		return nil
	}
	return s
}

// read decodes record seq from s (which segmentFor returned for it, or for a
// lower seq in the same segment). ok is false if seq is beyond s.
func (s *segment) read(seq uint64) (r record, ok bool) {
	i := seq - s.base
	if i >= uint64(len(s.offs)) {
		return r, false
	}
	off := s.offs[i]
	b := s.data[off:]
	r.ts = int64(binary.LittleEndian.Uint64(b[0:]))
	r.id = binary.LittleEndian.Uint64(b[8:])
	size := binary.LittleEndian.Uint32(b[16:])
	p := recHeader
	if size&dueFlag != 0 {
		size &^= dueFlag
		r.due = int64(binary.LittleEndian.Uint64(b[recHeader:]))
		p += 8
	}
	r.body = b[p : p+int(size) : p+int(size)]
	return r, true
}

// contains reports whether seq falls in s's index range.
func (s *segment) contains(seq uint64) bool {
	return seq >= s.base && seq-s.base < uint64(len(s.offs))
}

// get reads one record. ok is false when seq is not retained.
func (l *msgLog) get(seq uint64) (record, bool) {
	if seq >= l.tail.Load() {
		return record{}, false
	}
	s := l.segmentFor(seq)
	if s == nil {
		return record{}, false
	}
	return s.read(seq)
}

// release drops every segment whose records are all below upTo and moves
// head to upTo (never past tail). It returns the number of messages dropped
// from the head.
func (l *msgLog) release(upTo uint64) uint64 {
	if t := l.tail.Load(); upTo > t {
		upTo = t
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if upTo <= l.head {
		return 0
	}
	dropped := upTo - l.head
	l.head = upTo
	i := 0
	for i < len(l.segs)-1 && l.segs[i+1].base <= upTo {
		s := l.segs[i]
		l.bytes.Add(-int64(len(s.data) + 4*len(s.offs)))
		l.segs[i] = nil
		i++
	}
	if i > 0 {
		l.segs = append(l.segs[:0], l.segs[i:]...)
	}
	return dropped
}

// headSeq returns the first retained seq.
func (l *msgLog) headSeq() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.head
}
