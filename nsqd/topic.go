package nsqd

import (
	"encoding/binary"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nsqx/nsqx/wire"
)

// Topic stores each published message once in its log and fans it out to
// its channels, each a cursor into the log. See the package doc.
type Topic struct {
	name      string
	ephemeral bool
	cfg       *Config
	log       *msgLog
	scanner   *scanner
	hooks     *topicHooks
	created   uint64 // first seq of this topic (for message_count)

	mu       sync.Mutex // serialises publishes and guards channels
	channels map[string]*Channel
	chans    atomic.Pointer[[]*Channel] // snapshot for lock-free fan-out
	deleted  bool
	lastID   uint64

	paused   atomic.Bool
	pausedAt atomic.Uint64 // readLimit while paused

	msgBytes atomic.Uint64

	// dpub lists DPUB records (seq, due) in publish order, so /stats can
	// count a deferred message that no cursor has reached yet as deferred,
	// as NSQ does, rather than as depth. Guarded by mu.
	dpub []duePoint
}

type duePoint struct {
	seq uint64
	due int64
}

// pendingDeferred counts DPUB records in [from, to) not yet due.
func (t *Topic) pendingDeferred(from, to uint64, now int64) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.dpub) == 0 {
		return 0
	}
	head := t.log.headSeq()
	i := sort.Search(len(t.dpub), func(i int) bool { return t.dpub[i].seq >= head })
	if i > 0 {
		t.dpub = append(t.dpub[:0], t.dpub[i:]...)
	}
	lo := sort.Search(len(t.dpub), func(i int) bool { return t.dpub[i].seq >= from })
	var n int64
	for _, p := range t.dpub[lo:] {
		if p.seq >= to {
			break
		}
		if p.due > now {
			n++
		}
	}
	return n
}

// topicHooks are the Server's callbacks into topics' lifecycle.
type topicHooks struct {
	persist       func()
	channelAdded  func(t *Topic, c *Channel)
	channelGone   func(t *Topic, c *Channel)
	topicEmptied  func(t *Topic) // an ephemeral topic lost its last channel
	nodeID        int64
	memQueueLimit int64
	newStore      func(topic string) *logStore // nil result: memory only
	storeFailed   func(err error)
	storeOK       func()
}

// trimMemory keeps the log within --mem-queue-size when nothing is being
// published (readers may have loaded old segments back from disk).
func (t *Topic) trimMemory() {
	if t.log.store == nil {
		return
	}
	t.mu.Lock()
	t.log.enforce(t.hooks.memQueueLimit)
	t.mu.Unlock()
}

// rolled runs when the log starts a new segment (writer, under t.mu):
// free what no channel needs, then keep memory within --mem-queue-size by
// spilling the oldest queued segments to disk.
func (t *Topic) rolled() {
	t.release()
	t.log.enforce(t.hooks.memQueueLimit)
}

var errTopicExiting = errors.New("exiting")

func newTopic(name string, cfg *Config, sc *scanner, hooks *topicHooks) *Topic {
	t := &Topic{
		name:      name,
		ephemeral: wire.IsEphemeral(name),
		cfg:       cfg,
		log:       newLog(hooks.newStore(name)),
		scanner:   sc,
		hooks:     hooks,
		channels:  map[string]*Channel{},
	}
	t.created = t.log.tail.Load()
	t.chans.Store(&[]*Channel{})
	t.log.onRoll = t.rolled
	t.log.onLoad = func() { sc.releaseSoon(t) }
	return t
}

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

// readLimit is the seq up to which channels may read: the log tail, or the
// pause point while the topic is paused.
func (t *Topic) readLimit() uint64 {
	if t.paused.Load() {
		return t.pausedAt.Load()
	}
	return t.log.tail.Load()
}

// nsqEpoch is NSQ's ID epoch (ms-ish units of 2^20 ns), kept so our IDs have
// NSQ's shape: time, node ID and a sequence, time-ordered per topic.
const nsqEpoch = 1288834974288

// nextID returns a new ID, strictly greater than the previous one. Caller
// holds t.mu.
func (t *Topic) nextID(now int64) uint64 {
	id := uint64((now>>20)-nsqEpoch)<<22 | uint64(t.hooks.nodeID)<<12
	if id <= t.lastID {
		id = t.lastID + 1
	}
	t.lastID = id
	return id
}

// Publish appends one message. A positive delay defers it in every channel.
func (t *Topic) Publish(body []byte, delay time.Duration) error {
	var due int64
	if delay > 0 {
		due = time.Now().Add(delay).UnixNano()
	}
	err := t.publish(1, uint64(len(body)), func(int) ([]byte, int64) { return body, due })
	if err == nil && due != 0 {
		t.scanner.want(due)
	}
	return err
}

// PublishMPUB appends every message of an MPUB body that wire.SplitMPUB
// has already validated, atomically: a channel sees all of them or none.
func (t *Topic) PublishMPUB(body []byte) error {
	n := int(binary.BigEndian.Uint32(body))
	rest := body[4:]
	total := uint64(len(body) - 4 - 4*n)
	return t.publish(n, total, func(int) ([]byte, int64) {
		size := binary.BigEndian.Uint32(rest)
		b := rest[4 : 4+size]
		rest = rest[4+size:]
		return b, 0
	})
}

// PublishBodies appends several messages atomically (HTTP /mpub).
func (t *Topic) PublishBodies(bodies [][]byte) error {
	var total uint64
	for _, b := range bodies {
		total += uint64(len(b))
	}
	return t.publish(len(bodies), total, func(i int) ([]byte, int64) { return bodies[i], 0 })
}

// publish appends n messages from next under one lock, writes them to disk
// in durable mode (fsyncing as --sync-every asks, shared with concurrent
// publishers), then makes them visible to channels. Nothing is visible or
// acknowledged unless all of it is stored as the mode promises.
func (t *Topic) publish(n int, bytes uint64, next func(i int) ([]byte, int64)) error {
	now := time.Now().UnixNano()
	t.mu.Lock()
	if t.deleted {
		t.mu.Unlock()
		return errTopicExiting
	}
	l := t.log
	start := l.next
	seq := start
	var err error
	for i := 0; i < n && err == nil; i++ {
		body, due := next(i)
		if err = l.append(seq, now, t.nextID(now), due, body); err == nil {
			if due != 0 {
				t.dpub = append(t.dpub, duePoint{seq, due})
			}
			seq++
			l.next = seq
		}
	}
	if err != nil {
		l.abort(start)
	} else {
		err = l.persist(start)
	}
	if err != nil {
		for len(t.dpub) > 0 && t.dpub[len(t.dpub)-1].seq >= start {
			t.dpub = t.dpub[:len(t.dpub)-1]
		}
		t.mu.Unlock()
		t.hooks.storeFailed(err)
		return err
	}
	if l.store == nil || !l.store.durable || t.cfg.SyncEvery > 1 {
		l.commit(seq) // under the lock: cheap, in order
	}
	t.mu.Unlock()
	if st := l.store; st != nil && st.durable && (t.cfg.SyncEvery == 1 || st.needSync()) {
		if err := st.syncUpTo(seq); err != nil {
			t.hooks.storeFailed(err)
			if t.cfg.SyncEvery == 1 {
				return err
			}
		}
		l.commit(seq)
	}
	t.hooks.storeOK()
	t.msgBytes.Add(bytes)
	t.published()
	return nil
}

// published runs after a commit: bound ephemeral memory, wake consumers.
func (t *Topic) published() {
	chans := *t.chans.Load()
	limit := t.hooks.memQueueLimit
	if len(chans) == 0 {
		if t.ephemeral {
			if tail, head := t.log.tail.Load(), t.log.headSeq(); int64(tail-head) > limit {
				t.log.release(tail - uint64(limit))
			}
		}
		return
	}
	for _, c := range chans {
		if c.ephemeral {
			c.trim(limit)
		}
		c.notify()
	}
}

// Channel returns the named channel, creating it if needed. The first
// channel of a topic starts at the oldest retained message, later ones at
// the tail.
func (t *Topic) Channel(name string) (*Channel, error) {
	t.mu.Lock()
	if t.deleted {
		t.mu.Unlock()
		return nil, errTopicExiting
	}
	if c, ok := t.channels[name]; ok {
		t.mu.Unlock()
		return c, nil
	}
	start := t.log.tail.Load()
	if len(t.channels) == 0 {
		start = t.log.headSeq()
		if t.paused.Load() {
			start = min(start, t.pausedAt.Load())
		}
	}
	c := newChannel(t, name, start)
	t.channels[name] = c
	t.snapshotLocked()
	t.mu.Unlock()
	if t.hooks.channelAdded != nil {
		t.hooks.channelAdded(t, c)
	}
	if !c.ephemeral {
		t.hooks.persist()
	}
	return c, nil
}

// existingChannel returns a channel without creating it.
func (t *Topic) existingChannel(name string) *Channel {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.channels[name]
}

func (t *Topic) snapshotLocked() {
	cs := make([]*Channel, 0, len(t.channels))
	for _, c := range t.channels {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	t.chans.Store(&cs)
}

// channelList returns the channels sorted by name.
func (t *Topic) channelList() []*Channel { return *t.chans.Load() }

// DeleteChannel removes a channel and disconnects its consumers. It
// reports whether the channel existed.
func (t *Topic) DeleteChannel(name string) bool {
	t.mu.Lock()
	c, ok := t.channels[name]
	if !ok {
		t.mu.Unlock()
		return false
	}
	delete(t.channels, name)
	t.snapshotLocked()
	last := len(t.channels) == 0
	t.mu.Unlock()
	c.close()
	c.closeJournal()
	if t.hooks.channelGone != nil {
		t.hooks.channelGone(t, c)
	}
	if !c.ephemeral {
		t.hooks.persist()
		t.removeChannelFile(name)
	}
	t.release()
	if last && t.ephemeral && t.hooks.topicEmptied != nil {
		t.hooks.topicEmptied(t)
	}
	return true
}

// Pause holds every channel's cursor at the current tail; Unpause lets them
// go on.
func (t *Topic) Pause() {
	t.mu.Lock()
	if !t.paused.Load() {
		t.pausedAt.Store(t.log.tail.Load())
		t.paused.Store(true)
	}
	t.mu.Unlock()
	t.hooks.persist()
}

// Unpause resumes the flow to channels.
func (t *Topic) Unpause() {
	t.mu.Lock()
	t.paused.Store(false)
	t.mu.Unlock()
	for _, c := range t.channelList() {
		c.notify()
	}
	t.hooks.persist()
}

// Paused reports whether the topic is paused.
func (t *Topic) Paused() bool { return t.paused.Load() }

// Empty drops the messages the topic holds that no channel has yet: all of
// them when it has no channels, those since the pause when paused.
func (t *Topic) Empty() {
	t.mu.Lock()
	defer t.mu.Unlock()
	tail := t.log.tail.Load()
	if len(t.channels) == 0 {
		t.log.release(tail)
		return
	}
	if t.paused.Load() {
		from := t.pausedAt.Load()
		for _, c := range t.channels {
			c.skipRange(from, tail)
		}
		t.pausedAt.Store(tail)
	}
}

// release frees log segments no channel needs any more. A topic without
// channels keeps everything.
func (t *Topic) release() {
	chans := t.channelList()
	if len(chans) == 0 {
		return
	}
	low := t.log.tail.Load()
	if t.paused.Load() {
		low = min(low, t.pausedAt.Load())
	}
	for _, c := range chans {
		low = min(low, c.lowWater())
	}
	t.log.release(low)
}

// close marks the topic deleted and closes its channels.
func (t *Topic) close() {
	t.mu.Lock()
	t.deleted = true
	cs := make([]*Channel, 0, len(t.channels))
	for _, c := range t.channels {
		cs = append(cs, c)
	}
	t.channels = map[string]*Channel{}
	t.snapshotLocked()
	t.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
}

// depth is the number of messages the topic holds that no channel has
// taken yet.
func (t *Topic) depth() int64 {
	tail := t.log.tail.Load()
	if len(t.channelList()) == 0 {
		return int64(tail - t.log.headSeq())
	}
	if t.paused.Load() {
		return int64(tail - t.pausedAt.Load())
	}
	return 0
}

// channelFromHead creates a channel (if missing) that starts at the oldest
// retained message: used for channels learned from lookupd when a topic is
// created, so they get everything published since.
func (t *Topic) channelFromHead(name string) {
	t.mu.Lock()
	if t.deleted || t.channels[name] != nil {
		t.mu.Unlock()
		return
	}
	c := newChannel(t, name, t.log.headSeq())
	t.channels[name] = c
	t.snapshotLocked()
	t.mu.Unlock()
	if t.hooks.channelAdded != nil {
		t.hooks.channelAdded(t, c)
	}
	t.hooks.persist()
}
