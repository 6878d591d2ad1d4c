package nsqd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nsqx/nsqx/diskqueue"
)

type segFile = diskqueue.File

// logStore puts a topic's log on disk under <data-path>/nsqx/<topic>/:
// one file per segment (<base>.seg, diskqueue's segment format) and one
// state file per channel (<channel>.chan).
//
// In durable mode (--mem-queue-size=0) every record is written to its file
// before the publish is acknowledged, and with --sync-every=1 fsynced too;
// concurrent publishers share one fsync (group commit: whoever holds syncMu
// syncs everything written so far). Otherwise segments reach disk when the
// topic holds more than --mem-queue-size messages in memory, and at clean
// shutdown.
type logStore struct {
	fs            diskqueue.FS
	dir           string
	durable       bool
	syncEvery     int64
	memLimit      int64
	maxPayload    int
	log           *slog.Logger
	corruptHook   func(n int)
	corruptMu     sync.Mutex
	corruptSeen   map[uint64]bool // segments whose damage is counted
	badHeaderSeen map[uint64]bool // segments whose damaged header is logged

	pendMu   sync.Mutex
	pending  []segFile // files written since the last fsync
	written  uint64    // seq after the last record written
	unsynced int64     // records written since the last fsync

	syncMu sync.Mutex
	synced atomic.Uint64 // seq after the last record known to be fsynced

	// fileMu serialises file work on sealed segments between the spiller,
	// release and shutdown. Lock order: Topic.mu → fileMu.
	fileMu   sync.Mutex
	spiller  *spiller
	spilling atomic.Int64 // bytes queued for the spiller
}

// maxQueuedSpill bounds the bytes a topic may have waiting for the spiller
// before publishers write segments out themselves.
const maxQueuedSpill = 64 << 20

// queueSpill hands a sealed segment to the background spiller. It returns
// false when the spiller is too far behind (or absent). Writer only.
func (st *logStore) queueSpill(l *msgLog, s *segment) bool {
	if s.spilling {
		return true
	}
	if st.spiller == nil || st.spilling.Load() > maxQueuedSpill {
		return false
	}
	s.spilling = true
	st.spilling.Add(int64(s.used))
	st.spiller.queue(spillJob{st: st, l: l, s: s, size: int64(s.used)})
	return true
}

// spill writes a sealed segment to its file and drops it from memory,
// unless it was released meanwhile.
func (st *logStore) spill(l *msgLog, s *segment) error {
	st.fileMu.Lock()
	defer st.fileMu.Unlock()
	if s.released.Load() {
		return nil
	}
	if err := st.writeOut(s, 0); err != nil {
		return err
	}
	if d := s.res.Swap(nil); d != nil {
		l.bytes.Add(-int64(len(d.data) + 4*len(d.offs)))
	}
	return nil
}

type spillJob struct {
	st   *logStore
	l    *msgLog
	s    *segment
	size int64
}

// spiller writes memory-mode segments to disk in the background, so a
// publisher does not wait for the disk when its topic outgrows
// --mem-queue-size. One per Server; Run owns it.
type spiller struct {
	mu   sync.Mutex
	jobs []spillJob
	kick chan struct{}
}

func newSpiller() *spiller { return &spiller{kick: make(chan struct{}, 1)} }

func (sp *spiller) queue(j spillJob) {
	sp.mu.Lock()
	sp.jobs = append(sp.jobs, j)
	sp.mu.Unlock()
	select {
	case sp.kick <- struct{}{}:
	default:
	}
}

func (sp *spiller) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			sp.drain() // whatever is queued still goes to disk
			return nil
		case <-sp.kick:
		}
		sp.drain()
	}
}

func (sp *spiller) drain() {
	for {
		sp.mu.Lock()
		jobs := sp.jobs
		sp.jobs = nil
		sp.mu.Unlock()
		if len(jobs) == 0 {
			return
		}
		for _, j := range jobs {
			if err := j.st.spill(j.l, j.s); err != nil {
				j.st.log.Warn("spilling segment to disk failed; keeping it in memory", "segment", j.s.base, "err", err)
			}
			j.st.spilling.Add(-j.size)
		}
	}
}

func segName(base uint64) string { return fmt.Sprintf("%020d.seg", base) }

func (st *logStore) path(name string) string { return filepath.Join(st.dir, name) }

// create makes a new segment file with its header.
func (st *logStore) create(base uint64) (segFile, error) {
	if err := st.fs.MkdirAll(st.dir); err != nil {
		return nil, fmt.Errorf("create %s: %w", st.dir, err)
	}
	f, err := st.fs.Create(st.path(segName(base)))
	if err != nil {
		return nil, fmt.Errorf("create segment %d: %w", base, err)
	}
	if _, err := f.WriteAt(diskqueue.AppendSegmentHeader(nil, base), 0); err != nil {
		f.Close()
		st.fs.Remove(st.path(segName(base)))
		return nil, fmt.Errorf("write segment %d header: %w", base, err)
	}
	st.fs.SyncDir(st.dir)
	return f, nil
}

// writeOut writes s's unpersisted bytes to its file. On error the file is
// cut back to what was there before. Writer only.
func (st *logStore) writeOut(s *segment, end uint64) error {
	d := s.res.Load()
	if d == nil || s.persisted >= s.used {
		return nil
	}
	if s.file == nil {
		f, err := st.create(s.base)
		if err != nil {
			return err
		}
		s.file = f
	}
	if _, err := s.file.WriteAt(d.data[s.persisted:s.used], int64(diskqueue.SegmentHeader+s.persisted)); err != nil {
		s.file.Truncate(int64(diskqueue.SegmentHeader + s.persisted))
		return fmt.Errorf("write segment %d: %w", s.base, err)
	}
	n := int64(s.n - s.persistedN)
	s.persisted, s.persistedN = s.used, s.n
	st.pendMu.Lock()
	if len(st.pending) == 0 || st.pending[len(st.pending)-1] != s.file {
		st.pending = append(st.pending, s.file)
	}
	st.written = max(st.written, end)
	st.unsynced += n
	st.pendMu.Unlock()
	return nil
}

// needSync reports whether --sync-every has been reached.
func (st *logStore) needSync() bool {
	st.pendMu.Lock()
	defer st.pendMu.Unlock()
	return st.unsynced >= st.syncEvery
}

// syncUpTo returns once every record below end is fsynced, syncing if
// nobody else already did: concurrent callers share one fsync.
func (st *logStore) syncUpTo(end uint64) error {
	if st.synced.Load() >= end {
		return nil
	}
	st.syncMu.Lock()
	defer st.syncMu.Unlock()
	if st.synced.Load() >= end {
		return nil
	}
	return st.syncLocked()
}

// sync fsyncs everything written so far.
func (st *logStore) sync() error {
	st.syncMu.Lock()
	defer st.syncMu.Unlock()
	return st.syncLocked()
}

func (st *logStore) syncLocked() error {
	st.pendMu.Lock()
	files := st.pending
	st.pending = nil
	target := st.written
	st.unsynced = 0
	st.pendMu.Unlock()
	var errs []error
	for _, f := range files {
		if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// Keep them pending: nothing is acknowledged until a sync works.
		st.pendMu.Lock()
		st.pending = append(files, st.pending...)
		st.pendMu.Unlock()
		return fmt.Errorf("fsync: %w", errors.Join(errs...))
	}
	if target > st.synced.Load() {
		st.synced.Store(target)
	}
	return nil
}

// load reads an evicted segment back into memory and indexes it. Damaged
// records are counted and left out of the index.
func (st *logStore) load(l *msgLog, s *segment) (*segData, error) {
	b, err := st.fs.ReadFile(st.path(segName(s.base)))
	if err != nil {
		return nil, fmt.Errorf("load segment %d: %w", s.base, err)
	}
	expect := st.expectedCount(l, s)
	d, headerOK := index(b, s.base, expect, st.maxPayload)
	if !headerOK {
		st.noteBadHeader(s.base, countFound(d))
	}
	st.noteCorrupt(l, s.base, countBad(d))
	if s.res.CompareAndSwap(nil, d) {
		l.bytes.Add(int64(len(d.data) + 4*len(d.offs)))
		return d, nil
	}
	return s.res.Load(), nil
}

// noteCorrupt counts and logs a segment's damaged records the first time
// they are found: a segment may be loaded many times (evicted in between).
func (st *logStore) noteCorrupt(l *msgLog, base uint64, bad int) {
	if bad == 0 {
		return
	}
	st.corruptMu.Lock()
	seen := st.corruptSeen[base]
	if st.corruptSeen == nil {
		st.corruptSeen = map[uint64]bool{}
	}
	st.corruptSeen[base] = true
	st.corruptMu.Unlock()
	if seen {
		return
	}
	l.corrupt.Add(uint64(bad))
	st.log.Warn("corrupt records skipped", "segment", base, "count", bad, "dir", st.dir)
	if st.corruptHook != nil {
		st.corruptHook(bad)
	}
}

func countBad(d *segData) int {
	n := 0
	for _, o := range d.offs[:d.n] {
		if o == badOffset {
			n++
		}
	}
	return n
}

// expectedCount is the number of records a sealed segment holds: up to the
// next segment's base, or the tail for the last.
func (st *logStore) expectedCount(l *msgLog, s *segment) int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for i, x := range l.segs {
		if x == s && i+1 < len(l.segs) {
			return int(l.segs[i+1].base - s.base)
		}
	}
	return int(l.tail.Load() - s.base)
}

// index builds a segment's resident form from its file bytes. Records are
// placed by the seq each carries, so a damaged stretch costs only the
// records in it. expect < 0 means "as many as are found".
//
// A segment whose header is damaged (or names another base) is still read:
// the whole file is scanned and every record that is intact and carries a
// seq of this segment is kept, so that a few bad bytes at the start of a
// file do not cost all of its messages. headerOK reports which case it was.
func index(file []byte, base uint64, expect, maxPayload int) (d *segData, headerOK bool) {
	data := file
	if fb, ok := diskqueue.ParseSegmentHeader(file); ok && fb == base {
		data, headerOK = file[diskqueue.SegmentHeader:], true
	}
	// No segment holds more records than fit in its bytes: a seq beyond
	// that is not this segment's, whatever its CRC says.
	limit := len(data) / (diskqueue.RecordHeader + payloadHeader)
	var offs []uint32
	if expect >= 0 {
		offs = make([]uint32, expect)
		for i := range offs {
			offs[i] = badOffset
		}
		limit = expect
	}
	diskqueue.Scan(data, maxPayload, func(off int, p []byte) {
		if len(p) < payloadHeader {
			return
		}
		seq := readSeq(p)
		if seq < base || seq-base >= uint64(limit) {
			return
		}
		i := int(seq - base)
		for len(offs) <= i {
			offs = append(offs, badOffset)
		}
		offs[i] = uint32(off)
	})
	return newSegData(data, offs, len(offs)), headerOK
}

// noteBadHeader logs, once per segment, that its header is damaged and how
// many records were recovered from it anyway.
func (st *logStore) noteBadHeader(base uint64, recovered int) {
	st.corruptMu.Lock()
	if st.badHeaderSeen == nil {
		st.badHeaderSeen = map[uint64]bool{}
	}
	seen := st.badHeaderSeen[base]
	st.badHeaderSeen[base] = true
	st.corruptMu.Unlock()
	if !seen {
		st.log.Warn("segment header damaged; records recovered by their sequence numbers",
			"file", st.path(segName(base)), "recovered", recovered)
	}
}

func countFound(d *segData) int { return d.n - countBad(d) }

// remove deletes a released segment's file.
func (st *logStore) remove(s *segment) {
	st.fileMu.Lock()
	defer st.fileMu.Unlock()
	s.released.Store(true)
	if s.file != nil {
		s.file.Close()
	}
	if err := st.fs.Remove(st.path(segName(s.base))); err != nil && !errors.Is(err, os.ErrNotExist) {
		st.log.Warn("removing segment failed", "segment", s.base, "err", err)
	}
}

// open finds the segments on disk. The newest is scanned: its count gives
// the tail, and a torn write at its end is cut off. Older segments are
// loaded lazily; their counts follow from the next segment's base.
func (st *logStore) open(l *msgLog) error {
	names, err := st.fs.List(st.dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", st.dir, err)
	}
	var bases []uint64
	for _, n := range names {
		if !strings.HasSuffix(n, ".seg") {
			continue
		}
		b, err := strconv.ParseUint(strings.TrimSuffix(n, ".seg"), 10, 64)
		if err != nil || b == 0 {
			st.log.Warn("ignoring unexpected file", "file", st.path(n))
			continue
		}
		bases = append(bases, b)
	}
	if len(bases) == 0 {
		return nil
	}
	for _, b := range bases {
		l.segs = append(l.segs, &segment{base: b, sealed: true})
	}
	last := l.segs[len(l.segs)-1]
	path := st.path(segName(last.base))
	b, err := st.fs.ReadFile(path)
	if err != nil {
		return fmt.Errorf("open segment %d: %w", last.base, err)
	}
	d, headerOK := index(b, last.base, -1, st.maxPayload)
	if !headerOK {
		// A damaged file is left as it is; when nothing in it is readable
		// it is moved aside below, with its own warning.
		if found := countFound(d); found > 0 {
			st.noteBadHeader(last.base, found)
		}
	} else if res := diskqueue.Scan(b[diskqueue.SegmentHeader:], st.maxPayload, nil); res.TornTail {
		st.log.Warn("truncating torn write at end of log", "file", path, "at", res.ValidEnd)
		if f, err := st.fs.Open(path); err == nil {
			f.Truncate(int64(diskqueue.SegmentHeader + res.ValidEnd))
			f.Sync()
			f.Close()
		}
	}
	// Trim trailing damaged slots so the tail follows the last good record.
	n := len(d.offs)
	for n > 0 && d.offs[n-1] == badOffset {
		n--
	}
	d.offs, d.n = d.offs[:n], n
	d.cnt.Store(int64(n))
	st.noteCorrupt(l, last.base, countBad(d))
	if n == 0 {
		// The newest segment holds no record: a crash came between
		// creating its file and writing the first one, or its header is
		// gone. Leave it out of the log: the next append starts a segment
		// of the same base, which must not share this entry (releasing
		// the stale entry would delete the new segment's file).
		l.segs = l.segs[:len(l.segs)-1]
		st.discardEmpty(l, last.base, path, b)
	}
	next := last.base + uint64(n)
	l.head = next
	if len(l.segs) > 0 {
		l.head = l.segs[0].base
	}
	l.tail.Store(next)
	l.next = next
	l.last = nil
	if len(l.segs) > 0 {
		l.last = l.segs[len(l.segs)-1]
	}
	st.written, _ = next, 0
	st.synced.Store(next)
	return nil
}

// discardEmpty removes the file of a newest segment that holds no readable
// record. A file whose header is bad is moved aside (<name>.bad) for
// inspection instead, and the records it still holds are counted as
// corrupt.
func (st *logStore) discardEmpty(l *msgLog, base uint64, path string, b []byte) {
	if _, ok := diskqueue.ParseSegmentHeader(b); ok || len(b) == 0 {
		if err := st.fs.Remove(path); err != nil {
			st.log.Warn("removing empty segment failed", "file", path, "err", err)
		}
		return
	}
	st.noteCorrupt(l, base, diskqueue.Scan(b, st.maxPayload, nil).Records)
	st.log.Warn("segment without a valid header; moving it aside", "file", path, "to", path+".bad")
	if err := st.fs.Rename(path, path+".bad"); err != nil {
		st.log.Error("moving unreadable segment aside failed", "file", path, "err", err)
	}
}

// readSeq returns a payload's seq without its flag.
func readSeq(p []byte) uint64 {
	return uint64(p[0]) | uint64(p[1])<<8 | uint64(p[2])<<16 | uint64(p[3])<<24 |
		uint64(p[4])<<32 | uint64(p[5])<<40 | uint64(p[6])<<48 | uint64(p[7]&0x7f)<<56
}

// flushAll writes every resident, unpersisted segment and fsyncs (clean
// shutdown of a memory-mode topic). Writer only.
func (st *logStore) flushAll(l *msgLog) error {
	var errs []error
	st.fileMu.Lock()
	for _, s := range l.segments() {
		if s.res.Load() == nil {
			continue
		}
		if err := st.writeOut(s, 0); err != nil {
			errs = append(errs, err)
		}
	}
	st.fileMu.Unlock()
	if err := st.sync(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// closeFiles closes open segment files.
func (st *logStore) closeFiles(l *msgLog) {
	for _, s := range l.segments() {
		if s.file != nil {
			s.file.Close()
			s.file = nil
		}
	}
}

// syncInterval is used by the background syncer.
func (st *logStore) syncIfPending() error {
	st.pendMu.Lock()
	n := len(st.pending)
	st.pendMu.Unlock()
	if n == 0 {
		return nil
	}
	return st.sync()
}

var _ = time.Second
