package nsqd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nsqx/nsqx/diskqueue"
)

// msgLog is a topic's append-only message log. Each message is stored once,
// as a record in a segment: a byte buffer in diskqueue's record format plus
// an index of record offsets. Records are addressed by sequence number;
// sequence numbers are dense and start at 1.
//
// Record payload (inside diskqueue's length + CRC-32C framing):
//
//	seq   uint64 LE  sequence number; the top bit says a due time follows
//	ts    int64  LE  publish time, ns
//	id    uint64 LE  message ID (shown as 16 hex digits)
//	due   int64  LE  only when flagged: DPUB due time, ns
//	body  the rest
//
// The in-memory layout is the file layout, so spilling a segment to disk is
// one write and loading it back is one read plus an index scan.
//
// A segment's bytes may be resident (in memory), on disk, or both. The tail
// segment is always resident. Older ones are evicted when the topic holds
// more than its memory budget; a reader that needs an evicted segment loads
// it again (see store.go).
//
// Concurrency: one writer at a time (the topic serialises appends under
// Topic.mu). Readers may read any record below tail without the topic lock:
// a resident segment's buffers are allocated at full size up front and
// never reallocated, bytes are written before tail is advanced (an atomic
// store), and a reader only looks below tail. Resident data hangs off an
// atomic pointer, so eviction never pulls bytes from under a reader. mu
// guards the segment list.
type msgLog struct {
	mu   sync.RWMutex
	segs []*segment // ascending by base
	head uint64     // first retained seq; guarded by mu

	tail atomic.Uint64 // next seq to assign: records [head, tail) exist

	bytes    atomic.Int64  // resident bytes
	corrupt  atomic.Uint64 // records found damaged and skipped
	nextSize int           // capacity of the next segment (writer only)

	store  *logStore // nil: memory only (ephemeral topics)
	next   uint64    // next seq to assign (writer only; >= tail)
	last   *segment  // newest segment (writer only; release never drops it)
	onRoll func()    // called by the writer after a new segment starts
	// onLoad is called after a reader loaded a segment back from disk,
	// possibly under a channel's lock: it must not block.
	onLoad func()
}

type segment struct {
	base uint64
	res  atomic.Pointer[segData]

	// Writer-only (under Topic.mu).
	used       int  // bytes written to the tail buffer
	n          int  // records in the tail buffer
	sealed     bool // no more appends
	persisted  int  // bytes of data known to be in the file
	persistedN int  // records known to be in the file
	file       segFile

	spilling bool        // queued for the spiller (writer only)
	released atomic.Bool // dropped from the log; its file must not come back
}

// segData is a segment's resident bytes and index. offs[i] is the offset of
// record base+i, or badOffset when that record was found damaged.
type segData struct {
	data []byte
	offs []uint32
	n    int          // records indexed (loaded segments; writer's count at seal)
	cnt  atomic.Int64 // records, once sealed; -1 while appends may follow
}

func newSegData(data []byte, offs []uint32, sealedCount int) *segData {
	d := &segData{data: data, offs: offs, n: sealedCount}
	d.cnt.Store(int64(sealedCount))
	return d
}

const (
	payloadHeader = 8 + 8 + 8
	dueFlag       = 1 << 63
	minSegment    = 4 << 10
	maxSegment    = 4 << 20
	avgRecordMin  = 48 // index capacity is data capacity / avgRecordMin
	badOffset     = ^uint32(0)
)

// errNotRetained means a record was released (or never written).
var errNotRetained = errors.New("message not retained")

func newLog(store *logStore) *msgLog {
	l := &msgLog{head: 1, nextSize: minSegment, store: store, next: 1}
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

func recordSize(body []byte, due int64) int {
	n := diskqueue.RecordHeader + payloadHeader + len(body)
	if due != 0 {
		n += 8
	}
	return n
}

// reserve makes sure the tail segment can take a record of n bytes, starting
// a new segment if needed. Writer only.
func (l *msgLog) reserve(n int, seq uint64) (*segment, error) {
	if s := l.last; s != nil {
		d := s.res.Load()
		if !s.sealed && d != nil && s.used+n <= len(d.data) && s.n < len(d.offs) {
			return s, nil
		}
		if !s.sealed {
			if err := l.seal(s); err != nil {
				return nil, err
			}
		}
	}
	size := l.nextSize
	if l.nextSize < maxSegment {
		l.nextSize *= 2
	}
	for size < n {
		size *= 2
	}
	idx := max(size/avgRecordMin, 1)
	s := &segment{base: seq}
	s.res.Store(newSegData(make([]byte, size), make([]uint32, idx), -1))
	if l.store != nil && l.store.durable {
		f, err := l.store.create(seq)
		if err != nil {
			return nil, err
		}
		s.file = f
	}
	l.bytes.Add(int64(size + 4*idx))
	l.mu.Lock()
	if len(l.segs) == 0 {
		l.head = s.base
	}
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	l.last = s
	if l.onRoll != nil {
		l.onRoll()
	}
	return s, nil
}

// seal ends appends to s.
func (l *msgLog) seal(s *segment) error {
	s.sealed = true
	d := s.res.Load()
	d.n = s.n
	d.cnt.Store(int64(s.n))
	return nil
}

// append writes one record without publishing it; the caller publishes a
// batch with commit (or rolls back with abort). Writer only.
func (l *msgLog) append(seq uint64, ts int64, id uint64, due int64, body []byte) error {
	n := recordSize(body, due)
	s, err := l.reserve(n, seq)
	if err != nil {
		return err
	}
	if s.base+uint64(s.n) != seq {
		panic("nsqd: log append out of order")
	}
	d := s.res.Load()
	b := d.data[s.used : s.used+n]
	p := b[diskqueue.RecordHeader:]
	sq := seq
	if due != 0 {
		sq |= dueFlag
	}
	binary.LittleEndian.PutUint64(p[0:], sq)
	binary.LittleEndian.PutUint64(p[8:], uint64(ts))
	binary.LittleEndian.PutUint64(p[16:], id)
	off := payloadHeader
	if due != 0 {
		binary.LittleEndian.PutUint64(p[off:], uint64(due))
		off += 8
	}
	copy(p[off:], body)
	diskqueue.PutHeader(b, p)
	d.offs[s.n] = uint32(s.used)
	s.used += n
	s.n++
	return nil
}

// commit makes every record below next visible to readers. Batches may
// commit out of order (a later batch's fsync covers an earlier one), so
// tail only moves forward.
func (l *msgLog) commit(next uint64) {
	for {
		cur := l.tail.Load()
		if cur >= next || l.tail.CompareAndSwap(cur, next) {
			return
		}
	}
}

// persist writes the records appended since from to disk in durable mode.
// On failure the batch is rolled back and nothing of it is visible.
// Writer only.
func (l *msgLog) persist(from uint64) error {
	if l.store == nil || !l.store.durable {
		return nil
	}
	segs := l.segments()
	first := len(segs)
	for first > 0 {
		s := segs[first-1]
		if s.base+uint64(s.n) <= from && s.persisted >= s.used {
			break
		}
		first--
	}
	// Oldest first, so a crash mid-batch leaves a prefix on disk, never a
	// hole that would read as damage.
	for _, s := range segs[first:] {
		if err := l.store.writeOut(s, l.next); err != nil {
			l.abort(from)
			return err
		}
	}
	return nil
}

// abort forgets records from seq on (a publish that failed to reach disk).
// Writer only.
func (l *msgLog) abort(from uint64) {
	l.mu.Lock()
	for len(l.segs) > 0 {
		s := l.segs[len(l.segs)-1]
		if s.base >= from && len(l.segs) > 1 {
			l.segs = l.segs[:len(l.segs)-1]
			if d := s.res.Swap(nil); d != nil {
				l.bytes.Add(-int64(len(d.data) + 4*len(d.offs)))
			}
			if l.store != nil {
				l.store.remove(s)
			}
			continue
		}
		d := s.res.Load()
		keep := 0
		if from > s.base {
			keep = int(from - s.base)
		}
		if keep < s.n && d != nil {
			s.n = keep
			if keep == 0 {
				s.used = 0
			} else {
				s.used = int(d.offs[keep])
			}
			s.sealed = false
			d.cnt.Store(-1)
			if s.persisted > s.used {
				s.persisted, s.persistedN = s.used, s.n
				if s.file != nil {
					s.file.Truncate(int64(diskqueue.SegmentHeader + s.used))
				}
			}
		}
		break
	}
	l.last = nil
	if len(l.segs) > 0 {
		l.last = l.segs[len(l.segs)-1]
	}
	l.mu.Unlock()
	l.next = from
}

// enforce keeps at most budget messages resident besides the tail segment
// and the one before it, evicting the oldest committed segments (writing
// them to disk first if needed). Writer only.
func (l *msgLog) enforce(budget int64) {
	if l.store == nil {
		return
	}
	segs := l.segments()
	tail := l.tail.Load()
	var kept int64
	for i := len(segs) - 3; i >= 0; i-- {
		s := segs[i]
		d := s.res.Load()
		if d == nil {
			continue
		}
		count := int64(segs[i+1].base - s.base)
		if segs[i+1].base > tail {
			continue // not fully committed yet
		}
		if kept+count <= budget {
			kept += count
			continue
		}
		if s.spilling {
			continue // the spiller owns the segment's file fields now
		}
		if s.persisted >= s.used {
			// Already on disk (durable mode): just drop the memory.
			if d := s.res.Swap(nil); d != nil {
				l.bytes.Add(-int64(len(d.data) + 4*len(d.offs)))
			}
			continue
		}
		if !l.store.queueSpill(l, s) {
			// The spiller is far behind: write here, holding up this
			// publisher rather than growing memory without bound.
			if err := l.store.spill(l, s); err != nil {
				l.store.log.Warn("spilling segment to disk failed; keeping it in memory", "segment", s.base, "err", err)
				return
			}
		}
	}
}

// segmentFor returns the segment holding seq, or nil when seq has been
// released or not yet written.
func (l *msgLog) segmentFor(seq uint64) *segment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if seq < l.head {
		return nil
	}
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
	return segs[lo-1]
}

// data returns s's resident bytes, loading them from disk if evicted.
func (l *msgLog) data(s *segment) (*segData, error) {
	if d := s.res.Load(); d != nil {
		return d, nil
	}
	if l.store == nil {
		return nil, errNotRetained
	}
	d, err := l.store.load(l, s)
	if err == nil && l.onLoad != nil {
		l.onLoad()
	}
	return d, err
}

// read decodes record seq from d. ok is false when seq is outside d or
// the record was found damaged.
func (s *segment) read(d *segData, seq uint64) (r record, ok bool) {
	i := seq - s.base
	if i >= uint64(len(d.offs)) {
		return r, false
	}
	off := d.offs[i]
	if off == badOffset {
		return r, false
	}
	b := d.data[off:]
	n := int(binary.LittleEndian.Uint32(b))
	p := b[diskqueue.RecordHeader : diskqueue.RecordHeader+n : diskqueue.RecordHeader+n]
	sq := binary.LittleEndian.Uint64(p[0:])
	r.ts = int64(binary.LittleEndian.Uint64(p[8:]))
	r.id = binary.LittleEndian.Uint64(p[16:])
	body := p[payloadHeader:]
	if sq&dueFlag != 0 {
		r.due = int64(binary.LittleEndian.Uint64(body))
		body = body[8:]
	}
	r.body = body
	return r, true
}

// contains reports whether seq falls in s's index range.
func (s *segment) contains(d *segData, seq uint64) bool {
	if seq < s.base {
		return false
	}
	if n := d.cnt.Load(); n >= 0 {
		return seq-s.base < uint64(n)
	}
	return seq-s.base < uint64(len(d.offs))
}

// residentFor returns seg's data if it holds seq, else looks seq up.
func (l *msgLog) residentFor(seg *segment, d *segData, seq uint64) (*segment, *segData, bool) {
	if seg != nil && d != nil && seg.contains(d, seq) {
		return seg, d, true
	}
	seg = l.segmentFor(seq)
	if seg == nil {
		return nil, nil, false
	}
	d, err := l.data(seg)
	if err != nil {
		return nil, nil, false
	}
	return seg, d, true
}

// get reads one record. ok is false when seq is not retained, or damaged.
func (l *msgLog) get(seq uint64) (record, bool) {
	if seq >= l.tail.Load() {
		return record{}, false
	}
	s := l.segmentFor(seq)
	if s == nil {
		return record{}, false
	}
	d, err := l.data(s)
	if err != nil {
		return record{}, false
	}
	return s.read(d, seq)
}

// release drops every segment whose records are all below upTo and moves
// head to upTo (never past tail). Files of dropped segments are deleted.
func (l *msgLog) release(upTo uint64) uint64 {
	if t := l.tail.Load(); upTo > t {
		upTo = t
	}
	l.mu.Lock()
	if upTo <= l.head {
		l.mu.Unlock()
		return 0
	}
	dropped := upTo - l.head
	l.head = upTo
	var gone []*segment
	i := 0
	for i < len(l.segs)-1 && l.segs[i+1].base <= upTo {
		gone = append(gone, l.segs[i])
		l.segs[i] = nil
		i++
	}
	if i > 0 {
		l.segs = append(l.segs[:0], l.segs[i:]...)
	}
	l.mu.Unlock()
	for _, s := range gone {
		if d := s.res.Swap(nil); d != nil {
			l.bytes.Add(-int64(len(d.data) + 4*len(d.offs)))
		}
		if l.store != nil {
			l.store.remove(s)
		}
	}
	return dropped
}

// headSeq returns the first retained seq.
func (l *msgLog) headSeq() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.head
}

// segments returns a copy of the segment list.
func (l *msgLog) segments() []*segment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return append([]*segment(nil), l.segs...)
}

func (s *segment) String() string { return fmt.Sprintf("segment %d", s.base) }
