package nsqd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/nsqx/nsqx/diskqueue"
)

// A channel's progress on disk, <topic dir>/<channel>.chan, written
// atomically (temp file, fsync, rename):
//
//	magic    "NSQXCH01"
//	cursor   uint64 LE   next log seq the channel has not handed out
//	skip     2 × uint64  a pending jump (emptied paused topic), or zeros
//	count    uint32 LE
//	entries  count × (seq uint64, due int64, attempts uint16)
//	crc      uint32 LE   CRC-32C of everything before it
//
// Entries are the messages the channel owns behind its cursor: deferred
// ones with their due time, and requeued or in-flight ones with due 0
// (in flight at shutdown means ready again at start).

var chanMagic = [8]byte{'N', 'S', 'Q', 'X', 'C', 'H', '0', '1'}

const chanEntry = 8 + 8 + 2

// A REQ journal entry (<channel>.req) is a progress entry and the CRC-32C
// of it: a damaged entry is skipped rather than deferring a message by
// years or deferring the wrong one.
const journalEntry = chanEntry + 4

func chanFile(dir, name string) string { return filepath.Join(dir, name+".chan") }

// encodeState serialises the channel's progress. Caller holds c.mu.
func (c *Channel) encodeStateLocked() []byte {
	n := c.inflight.len() + c.requeued.len() + len(c.deferred)
	b := make([]byte, 0, 8+8+16+4+n*chanEntry+4)
	b = append(b, chanMagic[:]...)
	b = binary.LittleEndian.AppendUint64(b, c.cursor)
	b = binary.LittleEndian.AppendUint64(b, c.skipFrom)
	b = binary.LittleEndian.AppendUint64(b, c.skipTo)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	add := func(seq uint64, due int64, attempts uint16) {
		b = binary.LittleEndian.AppendUint64(b, seq)
		b = binary.LittleEndian.AppendUint64(b, uint64(due))
		b = binary.LittleEndian.AppendUint16(b, attempts)
	}
	c.inflight.each(func(m *inflight) { add(m.seq, 0, m.attempts) })
	c.requeued.each(func(o owned) { add(o.seq, 0, o.attempts) })
	for _, o := range c.deferred {
		add(o.seq, o.due, o.attempts)
	}
	return binary.LittleEndian.AppendUint32(b, diskqueue.Checksum(b))
}

// saveState writes the channel's progress if it changed since the last
// save, then empties the REQ journal if nothing was added to it meanwhile
// (otherwise the next save does).
func (c *Channel) saveState(fs diskqueue.FS, dir string) error {
	c.mu.Lock()
	v := c.version
	if v == c.savedVersion && c.savedOnce {
		c.mu.Unlock()
		return nil
	}
	b := c.encodeStateLocked()
	jlen := c.journalOff
	c.mu.Unlock()
	if err := fs.MkdirAll(dir); err != nil {
		return err
	}
	if err := diskqueue.WriteFileAtomic(fs, chanFile(dir, c.name), b); err != nil {
		return fmt.Errorf("save channel %s: %w", c.name, err)
	}
	c.mu.Lock()
	c.savedVersion, c.savedOnce = v, true
	if c.journal != nil && c.journalOff == jlen && jlen > 0 {
		if err := c.journal.Truncate(0); err == nil {
			c.journalOff = 0
		}
	}
	c.mu.Unlock()
	return nil
}

// journalOpener opens a channel's REQ journal; nil outside durable mode.
type journalOpener func(name string) (segFile, int64, error)

// journalDeferLocked appends a REQ-with-delay to the journal before it
// takes effect, so that a crash before the next progress save does not
// deliver the message before its due time. Caller holds c.mu.
func (c *Channel) journalDeferLocked(o owned) {
	if c.journalFS == nil || c.ephemeral {
		return
	}
	if c.journal == nil {
		f, off, err := c.journalFS(c.name)
		if err != nil {
			return
		}
		c.journal, c.journalOff = f, off
	}
	var e [journalEntry]byte
	binary.LittleEndian.PutUint64(e[0:], o.seq)
	binary.LittleEndian.PutUint64(e[8:], uint64(o.due))
	binary.LittleEndian.PutUint16(e[16:], o.attempts)
	binary.LittleEndian.PutUint32(e[chanEntry:], diskqueue.Checksum(e[:chanEntry]))
	if _, err := c.journal.WriteAt(e[:], c.journalOff); err == nil {
		c.journalOff += journalEntry
	}
}

func journalFile(dir, name string) string { return filepath.Join(dir, name+".req") }

// replayJournal applies a REQ journal on top of restored progress: each
// entry defers its message until its due time. It returns how many
// entries were damaged and skipped.
func (c *Channel) replayJournal(b []byte, head, tail uint64) (bad int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dues := map[uint64]owned{}
	for ; len(b) >= journalEntry; b = b[journalEntry:] {
		if diskqueue.Checksum(b[:chanEntry]) != binary.LittleEndian.Uint32(b[chanEntry:]) {
			bad++
			continue
		}
		o := owned{
			seq:      binary.LittleEndian.Uint64(b),
			due:      int64(binary.LittleEndian.Uint64(b[8:])),
			attempts: binary.LittleEndian.Uint16(b[16:]),
		}
		if o.seq >= head && o.seq < tail && o.due > 0 {
			dues[o.seq] = o
		}
	}
	if len(dues) == 0 {
		return bad
	}
	// Drop the ready copies the snapshot had of these messages.
	var keep fifo
	c.requeued.each(func(o owned) {
		if _, ok := dues[o.seq]; !ok {
			keep.push(o)
		}
	})
	c.requeued = keep
	// Rebuilt rather than filtered in place, which would break the heap
	// order (and deliver some messages late).
	var kept dueHeap
	for _, o := range c.deferred {
		if _, ok := dues[o.seq]; !ok {
			kept.push(o)
		}
	}
	c.deferred = kept
	for seq, o := range dues {
		c.deferred.push(o)
		c.scanner.want(o.due)
		if seq >= c.cursor {
			if c.ahead == nil {
				c.ahead = map[uint64]bool{}
			}
			c.ahead[seq] = true
		}
	}
	return bad
}

// closeJournal closes the REQ journal file.
func (c *Channel) closeJournal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.journal != nil {
		c.journal.Close()
		c.journal = nil
	}
}

var errBadState = errors.New("bad channel state file")

// restoreState loads a channel's progress; tail bounds what may be
// referenced (records beyond it were lost with the crash of a memory-mode
// nsqd).
func (c *Channel) restoreState(b []byte, head, tail uint64) error {
	if len(b) < 8+8+16+4+4 || [8]byte(b[:8]) != chanMagic {
		return errBadState
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if diskqueue.Checksum(body) != sum {
		return fmt.Errorf("%w: checksum mismatch", errBadState)
	}
	p := body[8:]
	cursor := binary.LittleEndian.Uint64(p)
	skipFrom := binary.LittleEndian.Uint64(p[8:])
	skipTo := binary.LittleEndian.Uint64(p[16:])
	n := int(binary.LittleEndian.Uint32(p[24:]))
	p = p[28:]
	if len(p) != n*chanEntry {
		return fmt.Errorf("%w: %d entries do not fit", errBadState, n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cursor = min(max(cursor, head), tail)
	c.base = c.cursor
	if skipFrom >= c.cursor && skipTo <= tail {
		c.skipFrom, c.skipTo = skipFrom, skipTo
	}
	for i := 0; i < n; i++ {
		e := p[i*chanEntry:]
		o := owned{
			seq:      binary.LittleEndian.Uint64(e),
			due:      int64(binary.LittleEndian.Uint64(e[8:])),
			attempts: binary.LittleEndian.Uint16(e[16:]),
		}
		if o.seq < head || o.seq >= tail {
			continue
		}
		if o.seq >= c.cursor {
			// Owned beyond the cursor (a replayed journal did that
			// before this save): the cursor must not hand it out again.
			if c.ahead == nil {
				c.ahead = map[uint64]bool{}
			}
			c.ahead[o.seq] = true
		}
		if o.due != 0 {
			c.deferred.push(o)
			c.scanner.want(o.due)
		} else {
			c.requeued.push(o)
		}
	}
	c.savedOnce = true
	return nil
}
