package nsqd

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nsqx/nsqx/diskqueue"
	"github.com/nsqx/nsqx/wire"
)

// Check verifies a --data-path offline and writes a report to w: each
// topic's log (segments, records retained), each channel's depth (queued,
// requeued or in flight at shutdown, deferred), and every problem found:
// damaged records, torn writes, bad segment headers, unreadable channel
// progress, a garbled nsqd.dat, NSQ files not yet imported. ok is false
// when there is any problem; err is set only when dataPath cannot be
// checked at all.
//
// Check changes nothing and refuses nothing: it opens files read-only and
// takes no lock (it only probes whether an nsqd holds the data path, to
// say that files may change while they are read). It reads what nsqd
// reads at start and applies the same rules, so the depths are what nsqd
// would report after starting on the data path as it is.
func Check(dataPath string, w io.Writer) (ok bool, err error) {
	fi, err := os.Stat(dataPath)
	if err != nil {
		return false, fmt.Errorf("--data-path: %w", err)
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("--data-path %s is not a directory", dataPath)
	}
	c := &checker{dir: dataPath, w: w, now: time.Now().UnixNano()}
	c.run()
	return c.damaged+c.pending == 0, nil
}

type checker struct {
	dir     string
	w       io.Writer
	now     int64
	damaged int // problems with data
	pending int // NSQ data not yet imported
	// holding lists topics whose log holds undelivered messages (an NSQ
	// import into them is refused).
	holding map[string]bool
}

func (c *checker) line(indent int, format string, args ...any) {
	fmt.Fprintf(c.w, "%s%s\n", strings.Repeat("  ", indent), fmt.Sprintf(format, args...))
}

func (c *checker) damage(indent int, format string, args ...any) {
	c.damaged++
	c.line(indent, "DAMAGE "+format, args...)
}

func (c *checker) note(indent int, format string, args ...any) {
	c.line(indent, "note: "+format, args...)
}

func (c *checker) rel(path string) string {
	if r, err := filepath.Rel(c.dir, path); err == nil {
		return r
	}
	return path
}

func (c *checker) run() {
	c.holding = map[string]bool{}
	c.line(0, "nsqd check %s", c.dir)
	if inUse(c.dir) {
		c.note(0, "an nsqd holds this data path: files may change while they are read")
	}
	md, haveMeta := c.checkMetadata()
	topics := map[string]*topicMeta{}
	var names []string
	if haveMeta {
		for i := range md.Topics {
			tm := &md.Topics[i]
			if !wire.ValidName(tm.Name) || wire.IsEphemeral(tm.Name) || topics[tm.Name] != nil {
				continue
			}
			topics[tm.Name] = tm
			names = append(names, tm.Name)
		}
	}
	root := filepath.Join(c.dir, "nsqx")
	dirs, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		c.damage(0, "nsqx/: cannot be read: %v", err)
	}
	onDisk := map[string]bool{}
	for _, d := range dirs {
		n := d.Name()
		if !d.IsDir() || !wire.ValidName(n) || wire.IsEphemeral(n) {
			c.note(0, "nsqx/%s: not a topic directory (ignored)", n)
			continue
		}
		onDisk[n] = true
		if topics[n] == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		c.checkTopic(n, topics[n], onDisk[n], haveMeta)
	}
	c.checkNSQ()
	switch {
	case c.damaged+c.pending == 0:
		c.line(0, "no damage found")
	default:
		c.line(0, "%d problems found (%d damage, %d not yet imported)", c.damaged+c.pending, c.damaged, c.pending)
	}
}

// inUse probes for the exclusive lock a running nsqd holds, without
// keeping a lock of its own.
func inUse(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// checkMetadata reads nsqd.dat; ok is false when there is none to use.
func (c *checker) checkMetadata() (md metadata, ok bool) {
	b, err := os.ReadFile(filepath.Join(c.dir, metaFile))
	if errors.Is(err, os.ErrNotExist) {
		c.line(0, "nsqd.dat: none (topics come from nsqx/ alone)")
		return md, false
	}
	if err != nil {
		c.damage(0, "nsqd.dat: cannot be read: %v", err)
		return md, false
	}
	if err := json.Unmarshal(b, &md); err != nil {
		c.damage(0, "nsqd.dat: garbled (%v): nsqd refuses to start until it is moved aside", err)
		return md, false
	}
	nc := 0
	for _, tm := range md.Topics {
		if !wire.ValidName(tm.Name) || wire.IsEphemeral(tm.Name) {
			c.damage(0, "nsqd.dat: invalid topic name %q (skipped at start)", tm.Name)
			continue
		}
		for _, cm := range tm.Channels {
			if !wire.ValidName(cm.Name) || wire.IsEphemeral(cm.Name) {
				c.damage(0, "nsqd.dat: invalid channel name %q in topic %s (skipped at start)", cm.Name, tm.Name)
				continue
			}
			nc++
		}
	}
	c.line(0, "nsqd.dat: %s, %s (version %q)", plural(int64(len(md.Topics)), "topic"), plural(int64(nc), "channel"), md.Version)
	return md, true
}

// checkSeg is one segment as found on disk.
type checkSeg struct {
	base  uint64
	count uint64     // records the segment covers
	bad   []seqRange // covered seqs without a readable record, ascending
	dues  []duePoint // DPUB records, ascending
}

// seqRange is the seqs [from, to).
type seqRange struct{ from, to uint64 }

// checkLog is a topic's log as nsqd would open it.
type checkLog struct {
	head, tail uint64
	segs       []checkSeg // ascending, contiguous
	bytes      int64
}

// readable counts the seqs in [from, to) with a readable record.
func (l *checkLog) readable(from, to uint64) int64 {
	from, to = max(from, l.head), min(to, l.tail)
	if from >= to {
		return 0
	}
	n := int64(to - from)
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base+l.segs[i].count > from })
	for ; i < len(l.segs) && l.segs[i].base < to; i++ {
		for _, r := range l.segs[i].bad {
			if lo, hi := max(r.from, from), min(r.to, to); lo < hi {
				n -= int64(hi - lo)
			}
		}
	}
	return n
}

func (l *checkLog) isReadable(seq uint64) bool {
	if seq < l.head || seq >= l.tail {
		return false
	}
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base+l.segs[i].count > seq })
	if i == len(l.segs) {
		return false
	}
	bad := l.segs[i].bad
	j := sort.Search(len(bad), func(j int) bool { return bad[j].to > seq })
	return j == len(bad) || bad[j].from > seq
}

func (c *checker) checkTopic(name string, tm *topicMeta, onDisk, haveMeta bool) {
	dir := filepath.Join(c.dir, "nsqx", name)
	var files []string
	if onDisk {
		es, err := os.ReadDir(dir)
		if err != nil {
			c.damage(1, "%s: cannot be read: %v", c.rel(dir), err)
		}
		for _, e := range es {
			files = append(files, e.Name())
		}
	}
	// The log's damage is reported under the topic's line.
	var logReport bytes.Buffer
	w := c.w
	c.w = &logReport
	l := c.readLog(dir, files)
	c.w = w
	paused := tm != nil && tm.Paused
	head := fmt.Sprintf("topic %s", name)
	if paused {
		head += " (paused)"
	}
	retained := int64(l.tail - l.head)
	c.line(0, "%s: %s retained in %s (%s)", head, plural(retained, "message"), plural(int64(len(l.segs)), "segment"), sizeString(l.bytes))
	c.w.Write(logReport.Bytes())
	if haveMeta && tm == nil {
		c.note(1, "not in nsqd.dat: nsqd recovers it at start")
	}

	// Channels: nsqd.dat's, or the progress files' for a topic it lacks.
	var chans []string
	chanPaused := map[string]bool{}
	if tm != nil {
		for _, cm := range tm.Channels {
			if wire.ValidName(cm.Name) && !wire.IsEphemeral(cm.Name) && !slices.Contains(chans, cm.Name) {
				chans = append(chans, cm.Name)
				chanPaused[cm.Name] = cm.Paused
			}
		}
	}
	known := slices.Clone(chans)
	for _, f := range files {
		ch, ok := strings.CutSuffix(f, ".chan")
		if !ok || !wire.ValidName(ch) || slices.Contains(known, ch) {
			continue
		}
		if tm != nil {
			c.note(1, "%s: progress of a channel not in nsqd.dat (ignored)", c.rel(filepath.Join(dir, f)))
			continue
		}
		chans = append(chans, ch)
	}
	sort.Strings(chans)

	limit := l.tail
	if paused && tm.PausedAt != 0 && tm.PausedAt < l.tail {
		limit = tm.PausedAt
	}
	switch {
	case len(chans) == 0 && retained > 0:
		c.line(1, "no channels: %s held for the first channel", plural(l.readable(l.head, l.tail), "message"))
		c.holding[name] = true
	case paused && l.tail > limit:
		c.line(1, "%s held at the paused topic", plural(l.readable(limit, l.tail), "message"))
	}
	for _, ch := range chans {
		c.checkChannel(name, dir, ch, chanPaused[ch], l, limit, slices.Contains(files, ch+".chan"))
	}
	for _, f := range files {
		switch {
		case f == importMarker:
			state, _ := os.ReadFile(filepath.Join(dir, f))
			c.pending++
			c.line(1, "PENDING an NSQ import was interrupted (%s): nsqd finishes it at its next start", strings.TrimSpace(string(state)))
		case strings.HasSuffix(f, ".seg"), strings.HasSuffix(f, ".chan"), strings.HasSuffix(f, ".req"), f == dpubFile:
		case strings.HasSuffix(f, ".seg.bad"):
			c.damage(1, "%s: a segment nsqd found unreadable and moved aside (inspect, then delete)", c.rel(filepath.Join(dir, f)))
		case strings.HasSuffix(f, ".tmp"):
			c.note(1, "%s: an unfinished write (ignored)", c.rel(filepath.Join(dir, f)))
		default:
			c.note(1, "%s: unexpected file (ignored)", c.rel(filepath.Join(dir, f)))
		}
	}
}

// plural is "1 message", "2 messages", "2 damaged stretches".
func plural(n int64, what string) string {
	switch {
	case n == 1:
		return "1 " + what
	case strings.HasSuffix(what, "ch"):
		return fmt.Sprintf("%d %ses", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func sizeString(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 10<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// readLog reads a topic's segments as logStore.open and load would, and
// reports their damage.
func (c *checker) readLog(dir string, files []string) checkLog {
	l := checkLog{head: 1, tail: 1}
	var bases []uint64
	for _, f := range files {
		if n, ok := strings.CutSuffix(f, ".seg"); ok {
			if b, err := strconv.ParseUint(n, 10, 64); err == nil && b > 0 {
				bases = append(bases, b)
			} else {
				c.note(1, "%s: not a segment name (ignored)", c.rel(filepath.Join(dir, f)))
			}
		}
	}
	slices.Sort(bases)
	for i, base := range bases {
		last := i == len(bases)-1
		path := filepath.Join(dir, segName(base))
		b, err := os.ReadFile(path)
		if err != nil {
			c.damage(1, "%s: cannot be read: %v", c.rel(path), err)
			b = nil
		}
		l.bytes += int64(len(b))
		s := checkSeg{base: base}
		end := uint64(math.MaxUint64)
		if !last {
			end = bases[i+1]
		}
		// As nsqd does, a segment with a damaged header is still read: its
		// records are placed by the seqs they carry.
		data := b
		if hb, ok := diskqueue.ParseSegmentHeader(b); ok && hb == base {
			data = b[diskqueue.SegmentHeader:]
		} else if ok {
			c.damage(1, "%s: header names segment %d (records are placed by their own seqs)", c.rel(path), hb)
		} else if len(b) > 0 {
			c.damage(1, "%s: bad segment header (records are placed by their own seqs)", c.rel(path))
		}
		var found []uint64
		foreign := 0
		res := diskqueue.Scan(data, diskqueue.MaxPayload, func(_ int, p []byte) {
			if len(p) < payloadHeader {
				foreign++
				return
			}
			seq := readSeq(p)
			if seq < base || seq >= end {
				foreign++
				return
			}
			found = append(found, seq)
			if p[7]&0x80 != 0 && len(p) >= payloadHeader+8 {
				s.dues = append(s.dues, duePoint{seq: seq, due: int64(binary.LittleEndian.Uint64(p[payloadHeader:]))})
			}
		})
		slices.Sort(found)
		found = slices.Compact(found)
		if last {
			if len(found) == 0 {
				if res.TornTail {
					c.damage(1, "%s: newest segment holds no whole record (a torn first write; removed at start)", c.rel(path))
				}
				continue // nsqd removes it; the log ends at its base
			}
			end = found[len(found)-1] + 1
		}
		s.count = end - base
		next, missing := base, uint64(0)
		for _, q := range append(found, end) {
			if q > next {
				s.bad = append(s.bad, seqRange{next, q})
				missing += q - next
			}
			next = q + 1
		}
		slices.SortFunc(s.dues, func(a, b duePoint) int { return cmp.Compare(a.seq, b.seq) })
		switch {
		case missing > 0:
			c.damage(1, "%s: %s damaged or missing (skipped)", c.rel(path), plural(int64(missing), "record"))
		case res.Corrupt > 0:
			c.damage(1, "%s: %s between records (no record lost)", c.rel(path), plural(int64(res.Corrupt), "damaged stretch"))
		}
		if foreign > 0 {
			c.damage(1, "%s: %s that do not belong to the segment (ignored)", c.rel(path), plural(int64(foreign), "record"))
		}
		if res.TornTail {
			tail := len(b) - diskqueue.SegmentHeader - res.ValidEnd
			if last {
				c.damage(1, "%s: torn write at the end (%d bytes, cut off at start)", c.rel(path), tail)
			} else {
				c.damage(1, "%s: %d damaged bytes at the end", c.rel(path), tail)
			}
		}
		l.segs = append(l.segs, s)
	}
	if len(l.segs) > 0 {
		l.head = l.segs[0].base
		ls := l.segs[len(l.segs)-1]
		l.tail = ls.base + ls.count
	} else if len(bases) > 0 {
		l.head, l.tail = bases[len(bases)-1], bases[len(bases)-1]
	}
	return l
}

// checkChan is a channel's progress file, decoded.
type checkChan struct {
	cursor, skipFrom, skipTo uint64
	entries                  []owned
}

// parseChanState decodes a progress file with restoreState's checks.
func parseChanState(b []byte) (checkChan, error) {
	var cc checkChan
	if len(b) < 8+8+16+4+4 || [8]byte(b[:8]) != chanMagic {
		return cc, errBadState
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if diskqueue.Checksum(body) != sum {
		return cc, fmt.Errorf("%w: checksum mismatch", errBadState)
	}
	p := body[8:]
	cc.cursor = binary.LittleEndian.Uint64(p)
	cc.skipFrom = binary.LittleEndian.Uint64(p[8:])
	cc.skipTo = binary.LittleEndian.Uint64(p[16:])
	n := int(binary.LittleEndian.Uint32(p[24:]))
	p = p[28:]
	if len(p) != n*chanEntry {
		return cc, fmt.Errorf("%w: %d entries do not fit", errBadState, n)
	}
	for i := range n {
		e := p[i*chanEntry:]
		cc.entries = append(cc.entries, owned{
			seq:      binary.LittleEndian.Uint64(e),
			due:      int64(binary.LittleEndian.Uint64(e[8:])),
			attempts: binary.LittleEndian.Uint16(e[16:]),
		})
	}
	return cc, nil
}

// checkChannel reports one channel's depth as nsqd would restore it
// (loadStore: progress file, then REQ journal).
func (c *checker) checkChannel(topic, dir, name string, paused bool, l checkLog, limit uint64, hasFile bool) {
	path := filepath.Join(dir, name+".chan")
	cc := checkChan{cursor: l.head}
	var problems []func()
	if hasFile {
		b, err := os.ReadFile(path)
		if err == nil {
			cc, err = parseChanState(b)
		}
		if err != nil {
			cc = checkChan{cursor: l.head}
			problems = append(problems, func() {
				c.damage(2, "%s: progress unreadable (%v): nsqd delivers every retained message to the channel again", c.rel(path), err)
			})
		}
	} else if l.tail > l.head {
		problems = append(problems, func() {
			c.note(2, "no saved progress: nsqd starts the channel at the oldest retained message")
		})
	}
	if cc.cursor > l.tail {
		lost := cc.cursor - l.tail
		problems = append(problems, func() {
			c.damage(2, "progress is %s past the end of the log: they were lost (a crash before they reached disk)", plural(int64(lost), "message"))
		})
	}
	cursor := min(max(cc.cursor, l.head), l.tail)
	if !(cc.skipFrom >= cursor && cc.skipTo <= l.tail) {
		cc.skipFrom, cc.skipTo = 0, 0
	}
	owns := map[uint64]owned{}
	beyond := 0
	for _, o := range cc.entries {
		switch {
		case o.seq >= l.tail:
			beyond++
		case o.seq >= l.head:
			owns[o.seq] = o
		}
	}
	if beyond > 0 {
		problems = append(problems, func() {
			c.damage(2, "%s (requeued, deferred or in flight) past the end of the log: lost", plural(int64(beyond), "message"))
		})
	}
	// The REQ journal defers messages on top of the snapshot.
	if j, err := os.ReadFile(filepath.Join(dir, name+".req")); err == nil {
		for len(j) >= chanEntry {
			o := owned{
				seq:      binary.LittleEndian.Uint64(j),
				due:      int64(binary.LittleEndian.Uint64(j[8:])),
				attempts: binary.LittleEndian.Uint16(j[16:]),
			}
			j = j[chanEntry:]
			if o.seq >= l.head && o.seq < l.tail && o.due > 0 {
				owns[o.seq] = o
			}
		}
		if len(j) > 0 {
			problems = append(problems, func() { c.note(2, "REQ journal ends in a partial entry (a crash mid-write; ignored)") })
		}
	}

	// Messages the cursor will hand out: [cursor, limit) less the pending
	// jump and what the channel owns beyond its cursor; DPUB records not
	// yet due count as deferred, as in /stats.
	inRange := func(seq uint64) bool {
		return seq >= cursor && seq < limit && !(seq >= cc.skipFrom && seq < cc.skipTo)
	}
	queued := l.readable(cursor, limit)
	if cc.skipTo > cc.skipFrom {
		queued -= l.readable(max(cc.skipFrom, cursor), min(cc.skipTo, limit))
	}
	var ready, deferred int64
	for seq, o := range owns {
		if inRange(seq) && l.isReadable(seq) {
			queued--
		}
		switch {
		case o.due > c.now:
			deferred++
		case l.isReadable(seq):
			ready++
		}
	}
	for _, s := range l.segs {
		for _, d := range s.dues {
			if _, ok := owns[d.seq]; !ok && inRange(d.seq) && d.due > c.now {
				queued--
				deferred++
			}
		}
	}
	label := "channel " + name
	if paused {
		label += " (paused)"
	}
	c.line(1, "%s: depth %d (%d queued, %d requeued or in flight at shutdown), deferred %d", label, queued+ready, queued, ready, deferred)
	if queued+ready+deferred > 0 {
		c.holding[topic] = true
	}
	for _, p := range problems {
		p()
	}
}

// checkNSQ reports NSQ 1.x files in the data path: queues not yet imported
// (with their damage) and the files an import moved aside.
func (c *checker) checkNSQ() {
	es, err := os.ReadDir(c.dir)
	if err != nil {
		c.damage(0, "%s: cannot be read: %v", c.dir, err)
		return
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
		if strings.HasPrefix(e.Name(), metaFile+".") && strings.HasSuffix(e.Name(), ".tmp") {
			c.note(0, "%s: an unfinished write of nsqd.dat (ignored)", e.Name())
		}
	}
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(c.dir, name)) }
	for _, q := range findNSQQueues(names) {
		sc, err := readNSQQueue(q, read, nil)
		c.pending++
		c.line(0, "NSQ queue %s: PENDING %s in %s not yet imported (nsqd imports them at its next start)",
			q.name, plural(int64(sc.messages), "message"), plural(int64(sc.files), "file"))
		if err != nil {
			c.damage(1, "%v", err)
		}
		if c.holding[q.topic] {
			c.note(1, "nsqx holds undelivered messages of topic %s: nsqd will not import these until it is drained", q.topic)
		}
		if sc.metaErr != nil {
			c.note(1, "%s: %v: every data file is read from its start", nsqMetaName(q), sc.metaErr)
		}
		if sc.corrupt > 0 {
			c.damage(1, "%s of records (skipped by the import)", plural(int64(sc.corrupt), "damaged stretch"))
		}
		if sc.torn {
			c.damage(1, "torn write at the end of the newest file (skipped by the import)")
		}
		if sc.consumed > 0 {
			c.note(1, "%s before the read position (already consumed)", plural(int64(sc.consumed), "data file"))
		}
		for _, f := range q.files {
			if strings.HasSuffix(f, ".bad") {
				c.note(1, "%s: a file NSQ found unreadable (not imported)", f)
			}
		}
	}
	if aside, err := os.ReadDir(filepath.Join(c.dir, nsqImportedDir)); err == nil {
		c.note(0, "%s/: %d NSQ files already imported, kept for reference (delete them once a return to NSQ is ruled out)", nsqImportedDir, len(aside))
	}
}

func nsqMetaName(q *nsqQueue) string {
	if q.meta != "" {
		return q.meta
	}
	return q.name + nsqMarker + "meta.dat"
}
