package nsqd

// Importing an NSQ 1.x --data-path.
//
// NSQ keeps one diskqueue per topic, <topic>.diskqueue.*, holding messages
// not yet copied to the topic's channels, and one per channel,
// <topic>:<channel>.diskqueue.*, holding that channel's messages beyond
// its memory queue (and, after a clean exit, those that were in memory,
// in flight or deferred). On the first start on such a data path, New
// imports every unconsumed record of every queue into the topic's log,
// keeping each message's timestamp, ID and attempt count, then moves NSQ's
// files into <data-path>/nsq-imported/.
//
// # Layout in the log
//
// A topic's log is shared by its channels, each a cursor. The import
// appends the channel queues first, one region per channel in name order,
// then the topic's own queue:
//
//	T0 [channel a's records][channel b's records] T1 [topic's records] T2
//
//   - Every channel's cursor moves to T1, past all channel regions, so the
//     topic's records reach every channel (and a topic without channels
//     keeps them for its first channel, as NSQ does).
//   - A channel with a region starts at its region instead, with a pending
//     skip from the region's end to T1 (Channel.skipFrom/skipTo, the jump
//     an emptied paused topic uses). Its records reach it and no other
//     channel, at the cost of one cursor and one skip per channel however
//     long the backlog.
//   - A channel message NSQ had already delivered (attempts > 0: in flight,
//     requeued or deferred when NSQ stopped) keeps its attempt count: the
//     channel owns it as a requeued message and its cursor passes over the
//     record (Channel.ahead), as for a REQ journal replayed at start. There
//     are few of these; the rest of a region costs no per-message state.
//   - A paused topic holds its channels at T1: their own records flow, the
//     topic's records wait for unpause, as in NSQ.
//
// Only a topic whose log holds nothing undelivered is imported into: T0 is
// then every cursor's position. That is always so on a first start; when
// it is not, the topic's NSQ files are left in place and an error logged.
//
// # Crash safety
//
// Per topic, in this order: a marker <data-path>/nsqx/<topic>/nsq-import
// saying "begin"; the records and channel progress written and fsynced;
// nsqd.dat rewritten; the marker set to "done"; NSQ's files moved aside;
// the marker removed. A crash before "done" leaves NSQ's files in place and
// the next start wipes the topic's partial import (nothing else was in it)
// and imports again; a crash after "done" only finishes the move. So
// nothing is imported twice and nothing is lost. NSQ's nsqd.dat is copied
// into nsq-imported/ before it is first rewritten.
//
// # Reading NSQ's files
//
// A queue is read from the meta file's read position (records before it
// were consumed) to the end of its newest data file. That is also past
// NSQ's write position when the meta file lagged behind the data (an NSQ
// crash): NSQ 1.3 salvages those records too. Without a readable meta
// file every data file is read from its start.
//
// NSQ's records carry no checksum. A record is taken when its length
// (26 bytes or more) fits the file, its ID is 16 hex digits and another
// record (or the end of the file, or a record cut short there) follows it.
// Damage is counted and skipped up to the next offset where such a record
// with a plausible timestamp starts; a record cut short at the end of the
// newest file is a torn write, counted and dropped. A message larger than
// --max-msg-size stops the start with an error naming the size to allow:
// it was valid in NSQ and must not be dropped silently.

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nsqx/nsqx/diskqueue"
	"github.com/nsqx/nsqx/wire"
)

const (
	// nsqImportedDir is where NSQ's files go once imported.
	nsqImportedDir = "nsq-imported"
	// importMarker records an import's progress in the topic's directory.
	importMarker = "nsq-import"
	// importBatch is how many records are appended between commits.
	importBatch = 4096
)

// nsqQueue is one NSQ diskqueue in --data-path.
type nsqQueue struct {
	name    string // <topic> or <topic>:<channel>
	topic   string
	channel string        // "" for the topic's own queue
	data    []nsqDataFile // ascending by number
	meta    string        // meta file name; "" when there is none
	files   []string      // every file of the queue, to move aside
}

type nsqDataFile struct {
	num  int64
	name string
}

const nsqMarker = ".diskqueue."

// findNSQQueues groups the NSQ diskqueue files among names (a listing of
// --data-path) by queue, in name order. Besides the data and meta files a
// queue may have leftovers (NSQ's *.bad files, temp files); they are moved
// aside with it but not read.
func findNSQQueues(names []string) []*nsqQueue {
	byName := map[string]*nsqQueue{}
	var qs []*nsqQueue
	for _, n := range names {
		i := strings.LastIndex(n, nsqMarker)
		if i <= 0 {
			continue
		}
		name, rest := n[:i], n[i+len(nsqMarker):]
		q := byName[name]
		if q == nil {
			q = &nsqQueue{name: name, topic: name}
			if t, c, ok := strings.Cut(name, ":"); ok {
				q.topic, q.channel = t, c
			} else if t, c, ok := strings.Cut(name, ";"); ok { // NSQ on Windows
				q.topic, q.channel = t, c
			}
			byName[name] = q
			qs = append(qs, q)
		}
		q.files = append(q.files, n)
		if rest == "meta.dat" {
			q.meta = n
			continue
		}
		if num, ok := strings.CutSuffix(rest, ".dat"); ok {
			if v, err := strconv.ParseInt(num, 10, 64); err == nil && v >= 0 && num[0] != '+' {
				q.data = append(q.data, nsqDataFile{num: v, name: n})
			}
		}
	}
	for _, q := range qs {
		slices.SortFunc(q.data, func(a, b nsqDataFile) int { return cmp.Compare(a.num, b.num) })
	}
	slices.SortFunc(qs, func(a, b *nsqQueue) int { return strings.Compare(a.name, b.name) })
	return qs
}

// nsqMeta is a diskqueue meta file: "depth\nreadNum,readPos\nwriteNum,writePos\n".
type nsqMeta struct {
	depth              int64
	readNum, readPos   int64
	writeNum, writePos int64
}

func parseNSQMeta(b []byte) (nsqMeta, error) {
	var m nsqMeta
	_, err := fmt.Sscanf(string(b), "%d\n%d,%d\n%d,%d\n", &m.depth, &m.readNum, &m.readPos, &m.writeNum, &m.writePos)
	if err != nil {
		return m, fmt.Errorf("unparsable meta file: %w", err)
	}
	if m.depth < 0 || m.readNum < 0 || m.readPos < 0 || m.writeNum < 0 || m.writePos < 0 {
		return m, errors.New("negative value in meta file")
	}
	return m, nil
}

// nsqScan is what reading one NSQ queue found.
type nsqScan struct {
	meta     nsqMeta
	metaErr  error // no usable meta file: every data file was read whole
	files    int   // data files read
	consumed int   // data files before the read position, not read
	messages int   // records read
	corrupt  int   // damaged stretches skipped
	torn     bool  // the newest file ends in a partial record
}

// damaged is the number of problems found in the queue's records.
func (sc nsqScan) damaged() int {
	n := sc.corrupt
	if sc.torn {
		n++
	}
	return n
}

// readNSQQueue reads q's unconsumed records in order, calling fn for each
// (the message aliases the file's bytes). read returns the content of a
// file of --data-path by name. An error from read or fn ends the read.
func readNSQQueue(q *nsqQueue, read func(name string) ([]byte, error), fn func(m wire.Message) error) (nsqScan, error) {
	var sc nsqScan
	startNum, startPos := int64(-1), int64(0)
	if q.meta == "" {
		sc.metaErr = errors.New("no meta file")
	} else if b, err := read(q.meta); err != nil {
		return sc, fmt.Errorf("read %s: %w", q.meta, err)
	} else if sc.meta, sc.metaErr = parseNSQMeta(b); sc.metaErr == nil {
		startNum, startPos = sc.meta.readNum, sc.meta.readPos
	}
	for i, f := range q.data {
		if f.num < startNum {
			sc.consumed++
			continue
		}
		b, err := read(f.name)
		if err != nil {
			return sc, fmt.Errorf("read %s: %w", f.name, err)
		}
		sc.files++
		from := 0
		if f.num == startNum {
			from = int(min(startPos, int64(len(b))))
		}
		n, corrupt, torn, err := scanNSQRecords(b[from:], fn)
		sc.messages += n
		sc.corrupt += corrupt
		if err != nil {
			return sc, err
		}
		if torn {
			if i == len(q.data)-1 {
				sc.torn = true
			} else {
				sc.corrupt++ // an older file does not end in a torn write
			}
		}
	}
	return sc, nil
}

// scanNSQRecords walks NSQ records in data: see the file comment for what
// is taken as a record. corrupt counts damaged stretches skipped; torn
// reports bytes at the end that hold no record.
func scanNSQRecords(data []byte, fn func(m wire.Message) error) (n, corrupt int, torn bool, err error) {
	off := 0
	for off < len(data) {
		size := nsqRecordAt(data, off)
		if size >= 0 {
			end := off + 4 + size
			take := nsqFollowed(data, end)
			if !take {
				// Either this record's length is wrong or what follows it
				// is damaged: it is the latter unless good records start
				// inside this one.
				g := nsqResync(data, off+1)
				take = g < 0 || g >= end
				if !take {
					corrupt++
					off = g
					continue
				}
			}
			m, _ := wire.DecodeMessage(data[off+4 : end])
			if fn != nil {
				if err := fn(m); err != nil {
					return n, corrupt, false, err
				}
			}
			n++
			off = end
			continue
		}
		g := nsqResync(data, off+1)
		if g < 0 {
			return n, corrupt, true, nil
		}
		corrupt++
		off = g
	}
	return n, corrupt, false, nil
}

// nsqRecordAt returns the payload size of the record whose header starts
// at data[off:]: it fits and carries a 16-hex-digit ID. -1 otherwise.
func nsqRecordAt(data []byte, off int) int {
	rest := data[off:]
	if len(rest) < 4 {
		return -1
	}
	size := int64(binary.BigEndian.Uint32(rest))
	if size < wire.MessageHeaderLength || size > int64(len(rest)-4) {
		return -1
	}
	if _, ok := wire.DecodeID(rest[4+10 : 4+wire.MessageHeaderLength]); !ok {
		return -1
	}
	return int(size)
}

// nsqFollowed reports whether a record ending at off is followed by the end
// of data, another record, or a record cut short by the end of data.
func nsqFollowed(data []byte, off int) bool {
	if off == len(data) || nsqRecordAt(data, off) >= 0 {
		return true
	}
	rest := data[off:]
	if len(rest) < 4 {
		return true
	}
	size := int64(binary.BigEndian.Uint32(rest))
	if size < wire.MessageHeaderLength || size > math.MaxInt32 || size <= int64(len(rest)-4) {
		return false
	}
	id := rest[4:]
	id = id[min(10, len(id)):min(wire.MessageHeaderLength, len(id))]
	for _, c := range id {
		if !isHexDigit(c) {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// minNSQTime is 2000-01-01 in ns: an NSQ timestamp before it is no
// timestamp, which makes resynchronising on a false record start unlikely.
const minNSQTime = 946684800 * int64(time.Second)

// nsqResync returns the first offset at or after from where a record with a
// plausible timestamp starts and is followed as nsqFollowed says, or -1.
func nsqResync(data []byte, from int) int {
	for i := from; i+4+wire.MessageHeaderLength <= len(data); i++ {
		size := nsqRecordAt(data, i)
		if size < 0 || int64(binary.BigEndian.Uint64(data[i+4:])) < minNSQTime {
			continue
		}
		if nsqFollowed(data, i+4+size) {
			return i
		}
	}
	return -1
}

// importNSQ imports the NSQ diskqueues in --data-path (see the file
// comment). It runs in New, after loadStores, before anything is served.
func (s *Server) importNSQ() error {
	dir := s.cfg.DataPath
	names, err := s.fs.List(dir)
	if err != nil {
		return fmt.Errorf("import NSQ data: %w", err)
	}
	queues := findNSQQueues(names)
	byTopic := map[string][]*nsqQueue{}
	var topics []string
	for _, q := range queues {
		if byTopic[q.topic] == nil {
			topics = append(topics, q.topic)
		}
		byTopic[q.topic] = append(byTopic[q.topic], q)
	}
	if slices.Contains(names, nsqImportedDir) {
		s.clearImportMarkers(byTopic)
	}
	if len(queues) == 0 {
		return nil
	}
	if err := s.keepNSQMetadata(); err != nil {
		return fmt.Errorf("import NSQ data: %w", err)
	}
	var total importTotals
	for _, name := range topics {
		if err := s.importTopic(name, byTopic[name], &total); err != nil {
			return fmt.Errorf("import NSQ data for topic %s: %w", name, err)
		}
	}
	if total.topics > 0 {
		s.log.Info("imported NSQ data", "topics", total.topics, "messages", total.messages,
			"damaged", total.damaged, "moved_to", filepath.Join(dir, nsqImportedDir))
	}
	return nil
}

type importTotals struct{ topics, messages, damaged int }

// clearImportMarkers removes the "done" markers of imports whose files were
// moved aside just before a crash.
func (s *Server) clearImportMarkers(pending map[string][]*nsqQueue) {
	for _, t := range s.topicList() {
		st := t.log.store
		if st == nil || pending[t.name] != nil {
			continue
		}
		if _, err := st.fs.ReadFile(st.path(importMarker)); err == nil {
			st.fs.Remove(st.path(importMarker))
		}
	}
}

// keepNSQMetadata copies NSQ's nsqd.dat into nsq-imported/ before nsqx
// first rewrites it.
func (s *Server) keepNSQMetadata() error {
	aside := filepath.Join(s.cfg.DataPath, nsqImportedDir)
	if _, err := s.fs.ReadFile(filepath.Join(aside, metaFile)); err == nil {
		return nil
	}
	b, err := s.fs.ReadFile(filepath.Join(s.cfg.DataPath, metaFile))
	if err != nil {
		return nil // none to keep
	}
	if err := s.fs.MkdirAll(aside); err != nil {
		return err
	}
	return diskqueue.WriteFileAtomic(s.fs, filepath.Join(aside, metaFile), b)
}

// importTopic imports the queues of one topic (see the file comment for the
// order of steps).
func (s *Server) importTopic(name string, qs []*nsqQueue, total *importTotals) error {
	if !wire.ValidName(name) || wire.IsEphemeral(name) {
		s.log.Warn("NSQ files of an invalid or ephemeral topic moved aside without importing", "topic", name)
		return s.moveNSQFiles(qs)
	}
	var chans []*nsqQueue
	var own *nsqQueue
	for _, q := range qs {
		switch {
		case q.channel == "":
			own = q
		case !wire.ValidName(q.channel) || wire.IsEphemeral(q.channel):
			s.log.Warn("NSQ files of an invalid or ephemeral channel moved aside without importing", "topic", name, "channel", q.channel)
			if err := s.moveNSQFiles([]*nsqQueue{q}); err != nil {
				return err
			}
		default:
			chans = append(chans, q)
		}
	}
	if own == nil && len(chans) == 0 {
		return nil
	}
	t := s.topics[name]
	if t == nil {
		t = newTopic(name, s.cfg, s.scanner, s.hooks)
		if err := t.loadStore(); err != nil {
			return err
		}
		s.topics[name] = t
	}
	st := t.log.store
	marker := st.path(importMarker)
	state, _ := st.fs.ReadFile(marker)
	switch strings.TrimSpace(string(state)) {
	case "done":
		s.log.Info("finishing an NSQ import interrupted after it was complete", "topic", name)
		return s.finishImport(st, qs)
	case "begin":
		s.log.Warn("NSQ import was interrupted; importing the topic again", "topic", name)
		var err error
		if t, err = s.restartTopic(t); err != nil {
			return err
		}
		st = t.log.store
	default:
		if !t.importable() {
			s.log.Error("NSQ files not imported: the topic already holds undelivered messages in nsqx; drain it and restart, or move the files aside",
				"topic", name, "files", filepath.Join(s.cfg.DataPath, name+"*"+nsqMarker+"*"))
			return nil
		}
	}
	if err := st.fs.MkdirAll(st.dir); err != nil {
		return err
	}
	if err := diskqueue.WriteFileAtomic(st.fs, marker, []byte("begin\n")); err != nil {
		return err
	}
	res, err := s.importInto(t, own, chans)
	if err != nil {
		return err
	}
	t.mu.Lock()
	err = st.flushAll(t.log)
	t.mu.Unlock()
	if err == nil {
		err = t.saveChannels()
	}
	if err == nil {
		err = s.meta.writeNow(s.metadata())
	}
	if err == nil {
		err = diskqueue.WriteFileAtomic(st.fs, marker, []byte("done\n"))
	}
	if err != nil {
		return err
	}
	for _, r := range res {
		attrs := []any{"topic", name, "channel", r.q.channel, "messages", r.sc.messages,
			"from", r.from, "files", r.sc.files}
		if r.sc.metaErr == nil {
			attrs = append(attrs, "nsq_depth", r.sc.meta.depth)
		}
		if r.sc.metaErr != nil {
			s.log.Warn("NSQ queue without a usable meta file; every data file read from its start",
				"topic", name, "channel", r.q.channel, "err", r.sc.metaErr)
		}
		if r.sc.damaged() > 0 {
			attrs = append(attrs, "corrupt", r.sc.corrupt, "torn_tail", r.sc.torn)
			s.log.Warn("imported NSQ queue; damaged records skipped", attrs...)
		} else {
			s.log.Info("imported NSQ queue", attrs...)
		}
		total.messages += r.sc.messages
		total.damaged += r.sc.damaged()
		t.log.corrupt.Add(uint64(r.sc.damaged()))
	}
	total.topics++
	return s.finishImport(st, qs)
}

// finishImport moves an imported topic's NSQ files aside and removes its
// marker.
func (s *Server) finishImport(st *logStore, qs []*nsqQueue) error {
	if err := s.moveNSQFiles(qs); err != nil {
		return err
	}
	if err := st.fs.Remove(st.path(importMarker)); err != nil {
		s.log.Warn("removing NSQ import marker failed", "file", st.path(importMarker), "err", err)
	}
	return nil
}

// moveNSQFiles moves the queues' files into nsq-imported/, never replacing
// a file already there.
func (s *Server) moveNSQFiles(qs []*nsqQueue) error {
	dir := s.cfg.DataPath
	aside := filepath.Join(dir, nsqImportedDir)
	if err := s.fs.MkdirAll(aside); err != nil {
		return err
	}
	names, err := s.fs.List(aside)
	if err != nil {
		return err
	}
	taken := map[string]bool{}
	for _, n := range names {
		taken[n] = true
	}
	for _, q := range qs {
		for _, f := range q.files {
			to := f
			for i := 1; taken[to]; i++ {
				to = f + "." + strconv.Itoa(i)
			}
			if err := s.fs.Rename(filepath.Join(dir, f), filepath.Join(aside, to)); err != nil {
				return err
			}
			taken[to] = true
		}
	}
	if err := s.fs.SyncDir(aside); err != nil {
		return err
	}
	return s.fs.SyncDir(dir)
}

// importable reports whether the topic's log holds nothing undelivered, so
// that its tail is where every channel stands.
func (t *Topic) importable() bool {
	tail := t.log.tail.Load()
	chans := t.channelList()
	if len(chans) == 0 {
		return t.log.headSeq() == tail
	}
	for _, c := range chans {
		if c.lowWater() != tail {
			return false
		}
	}
	return true
}

// restartTopic throws away a topic's files (a partial import, on a log that
// held nothing undelivered before it) and returns a fresh topic with the
// same channels and pause states in its place.
func (s *Server) restartTopic(t *Topic) (*Topic, error) {
	st := t.log.store
	st.closeFiles(t.log)
	for _, c := range t.channelList() {
		c.closeJournal()
	}
	if err := st.fs.RemoveAll(st.dir); err != nil {
		return nil, err
	}
	nt := newTopic(t.name, s.cfg, s.scanner, s.hooks)
	nt.paused.Store(t.paused.Load())
	for _, c := range t.channelList() {
		nc := newChannel(nt, c.name, 1)
		nc.paused = c.Paused()
		nt.channels[c.name] = nc
	}
	nt.snapshotLocked()
	if err := nt.loadStore(); err != nil {
		return nil, err
	}
	s.topics[t.name] = nt
	return nt, nil
}

// importedQueue is one queue's import result.
type importedQueue struct {
	q    *nsqQueue
	sc   nsqScan
	from string // where reading started
}

// channelRegion is the records of one channel queue: [from, to) of the
// log, of which own were already delivered by NSQ.
type channelRegion struct {
	from, to uint64
	own      []owned
}

// importInto appends the channel queues and then the topic's queue to t's
// log and places the channels' cursors (see the file comment).
func (s *Server) importInto(t *Topic, own *nsqQueue, chans []*nsqQueue) ([]importedQueue, error) {
	read := func(name string) ([]byte, error) { return s.fs.ReadFile(filepath.Join(s.cfg.DataPath, name)) }
	t.mu.Lock()
	defer t.mu.Unlock()
	w := importWriter{t: t, start: t.log.next, maxBody: s.cfg.MaxMsgSize}
	t0 := t.log.next
	var res []importedQueue
	regions := map[*Channel]channelRegion{}
	for _, q := range chans {
		c := t.channels[q.channel]
		if c == nil {
			c = newChannel(t, q.channel, t0)
			t.channels[q.channel] = c
			t.snapshotLocked()
		}
		r := channelRegion{from: t.log.next}
		sc, err := readNSQQueue(q, read, func(m wire.Message) error {
			seq, err := w.add(q, m)
			if err == nil && m.Attempts > 0 {
				r.own = append(r.own, owned{seq: seq, attempts: m.Attempts})
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		r.to = t.log.next
		regions[c] = r
		res = append(res, importedQueue{q: q, sc: sc, from: readFrom(q, sc)})
	}
	t1 := t.log.next
	if own != nil {
		sc, err := readNSQQueue(own, read, func(m wire.Message) error {
			_, err := w.add(own, m)
			return err
		})
		if err != nil {
			return nil, err
		}
		res = append(res, importedQueue{q: own, sc: sc, from: readFrom(own, sc)})
	}
	if err := w.commit(); err != nil {
		return nil, err
	}
	for _, c := range t.channelList() {
		r := regions[c]
		c.mu.Lock()
		c.cursor, c.skipFrom, c.skipTo = t1, 0, 0
		if r.to > r.from {
			c.cursor = r.from
			if r.to < t1 {
				c.skipFrom, c.skipTo = r.to, t1
			}
			for _, o := range r.own {
				c.requeued.push(o)
				if c.ahead == nil {
					c.ahead = map[uint64]bool{}
				}
				c.ahead[o.seq] = true
			}
		}
		c.base = c.cursor
		c.version++
		c.mu.Unlock()
	}
	if t.paused.Load() {
		t.pausedAt.Store(t1)
	}
	return res, nil
}

func readFrom(q *nsqQueue, sc nsqScan) string {
	if sc.metaErr != nil {
		return "start of every file"
	}
	return fmt.Sprintf("file %d offset %d", sc.meta.readNum, sc.meta.readPos)
}

// importWriter appends imported messages to a topic's log, committing
// every importBatch records. Caller holds t.mu.
type importWriter struct {
	t       *Topic
	start   uint64 // first record not yet committed
	n       int
	maxBody int64
}

// add appends m as a record of its own, keeping its timestamp and ID (a
// new ID when it is not 16 hex digits), and returns its seq.
func (w *importWriter) add(q *nsqQueue, m wire.Message) (uint64, error) {
	if int64(len(m.Body)) > w.maxBody {
		return 0, fmt.Errorf("NSQ queue %s holds a %d-byte message, larger than --max-msg-size=%d: start with --max-msg-size=%d or more to import it",
			q.name, len(m.Body), w.maxBody, len(m.Body))
	}
	t := w.t
	id, ok := wire.DecodeID(m.ID[:])
	if ok {
		t.lastID = max(t.lastID, id)
	} else {
		id = t.nextID(time.Now().UnixNano())
	}
	seq := t.log.next
	if err := t.log.append(seq, m.Timestamp, id, 0, m.Body); err != nil {
		return 0, err
	}
	t.log.next = seq + 1
	if w.n++; w.n >= importBatch {
		if err := w.commit(); err != nil {
			return 0, err
		}
	}
	return seq, nil
}

// commit writes the batch to disk in durable mode and makes it visible.
func (w *importWriter) commit() error {
	l := w.t.log
	if err := l.persist(w.start); err != nil {
		return err
	}
	l.commit(l.next)
	w.start, w.n = l.next, 0
	return nil
}
