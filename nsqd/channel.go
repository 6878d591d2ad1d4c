package nsqd

import (
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nsqx/nsqx/wire"
)

// Errors a consumer's FIN, REQ or TOUCH may get (sent as non-fatal
// E_FIN_FAILED, E_REQ_FAILED, E_TOUCH_FAILED with this text).
var (
	errNotInFlight = errors.New("ID not in flight")
	errNotOwner    = errors.New("client does not own message")
	errExiting     = errors.New("exiting")
	errTooMany     = errors.New("too many consumers")
)

// Channel is a cursor into its topic's log plus the messages it owns behind
// the cursor: in flight, deferred and requeued. See the package doc.
type Channel struct {
	name      string
	topic     *Topic
	ephemeral bool
	scanner   *scanner

	mu        sync.Mutex
	cursor    uint64 // next log seq to hand out
	base      uint64 // cursor at creation (for message_count)
	requeued  fifo
	deferred  dueHeap
	inflight  inflightSet
	consumers map[uint64]*conn
	waiters   []*conn
	paused    bool
	deleted   bool
	// skipped counts log records passed over without delivery (dropped
	// when an ephemeral channel overflows, or emptied).
	skipped uint64
	// skipFrom/skipTo: when the cursor reaches skipFrom it jumps to skipTo.
	skipFrom, skipTo uint64

	// journal records REQ-with-delay between progress saves in durable
	// mode (see chanstate.go); ahead holds seqs at or beyond the cursor that
	// a replayed journal already deferred.
	journal    segFile
	journalOff int64
	journalFS  journalOpener
	ahead      map[uint64]bool

	// version counts changes of progress; savedVersion is the one on disk.
	version      uint64
	savedVersion uint64
	savedOnce    bool

	hasWaiters atomic.Bool
	requeues   atomic.Uint64
	timeouts   atomic.Uint64
	e2e        *latencyWindow
}

func newChannel(t *Topic, name string, start uint64) *Channel {
	c := &Channel{
		name:      name,
		topic:     t,
		ephemeral: wire.IsEphemeral(name),
		scanner:   t.scanner,
		cursor:    start,
		base:      start,
		consumers: map[uint64]*conn{},
		e2e:       newLatencyWindow(t.cfg),
	}
	if st := t.log.store; st != nil && st.durable && !c.ephemeral {
		c.journalFS = st.openJournal
	}
	return c
}

// Name returns the channel's name.
func (c *Channel) Name() string { return c.name }

// delivery is one message handed to a consumer's pump. body aliases the log.
type delivery struct {
	id       uint64
	ts       int64
	attempts uint16
	body     []byte
}

// addConsumer subscribes cn. It fails when the channel is being deleted or
// would exceed limit consumers (0: unlimited).
func (c *Channel) addConsumer(cn *conn, limit int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deleted {
		return errExiting
	}
	if limit > 0 && len(c.consumers) >= limit {
		return errTooMany
	}
	c.consumers[cn.id] = cn
	return nil
}

// removeConsumer unsubscribes cn and requeues what it still had in flight
// (NSQ waits for those to time out; nsqx hands them to the other consumers
// at once). An ephemeral channel whose last consumer leaves is deleted.
func (c *Channel) removeConsumer(cn *conn) {
	c.mu.Lock()
	if _, ok := c.consumers[cn.id]; !ok {
		c.mu.Unlock()
		return
	}
	delete(c.consumers, cn.id)
	c.removeWaiter(cn)
	requeued := cn.ifl.n
	for m := c.inflight.first(&cn.ifl); m != nil; m = c.inflight.first(&cn.ifl) {
		r, _ := c.inflight.remove(m.id, &cn.ifl)
		c.requeued.push(owned{seq: r.seq, attempts: r.attempts})
	}
	last := len(c.consumers) == 0
	if requeued > 0 {
		c.signalLocked()
	}
	c.mu.Unlock()
	if last && c.ephemeral {
		c.topic.DeleteChannel(c.name)
	}
}

func (c *Channel) removeWaiter(cn *conn) {
	cn.waiting = false
	for i, w := range c.waiters {
		if w == cn {
			c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			break
		}
	}
	c.hasWaiters.Store(len(c.waiters) > 0)
}

// notify wakes consumers waiting for messages. Cheap when none wait.
func (c *Channel) notify() {
	if !c.hasWaiters.Load() {
		return
	}
	c.mu.Lock()
	c.signalLocked()
	c.mu.Unlock()
}

func (c *Channel) signalLocked() {
	for _, w := range c.waiters {
		w.waiting = false
		w.wake()
	}
	clear(c.waiters)
	c.waiters = c.waiters[:0]
	c.hasWaiters.Store(false)
}

// take hands cn up to max messages: requeued ones first, then new ones from
// the log. With nothing to hand out it registers cn to be woken.
func (c *Channel) take(cn *conn, max int, now int64, dst []delivery) []delivery {
	log := c.topic.log
	msgTimeout := cn.msgTimeout()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused || c.deleted {
		return dst
	}
	// The consumer's in-flight count rises under the lock that Empty
	// resets it under.
	start := len(dst)
	defer func() { cn.inflightN.Add(int64(len(dst) - start)) }()
	for registered := false; ; {
		for len(dst) < max && c.requeued.len() > 0 {
			o := c.requeued.pop()
			r, ok := log.get(o.seq)
			if !ok {
				continue
			}
			dst = c.deliverLocked(cn, dst, o.seq, r, o.attempts, now, msgTimeout)
		}
		limit := c.topic.readLimit()
		var seg *segment
		var sd *segData
		for len(dst) < max && c.cursor < limit {
			seq := c.cursor
			if seq == c.skipFrom && c.skipTo > seq {
				c.skipped += c.skipTo - seq
				c.cursor, c.skipFrom = c.skipTo, 0
				continue
			}
			c.cursor++
			if c.ahead != nil && c.ahead[seq] {
				delete(c.ahead, seq)
				continue
			}
			var ok bool
			if seg, sd, ok = log.residentFor(seg, sd, seq); !ok {
				c.skipped++
				continue
			}
			r, ok := seg.read(sd, seq)
			if !ok {
				c.skipped++
				continue
			}
			if r.due > now {
				c.version++
				c.deferred.push(owned{seq: seq, due: r.due})
				c.scanner.want(r.due)
				continue
			}
			dst = c.deliverLocked(cn, dst, seq, r, 0, now, msgTimeout)
		}
		if len(dst) > 0 || len(dst) >= max {
			c.version++
			if registered {
				c.removeWaiter(cn)
			}
			return dst
		}
		if registered {
			return dst
		}
		// Register, then look again: a publisher commits the log tail and
		// then checks hasWaiters, so one of the two sees the other.
		if !cn.waiting {
			cn.waiting = true
			c.waiters = append(c.waiters, cn)
		}
		c.hasWaiters.Store(true)
		registered = true
		if c.topic.readLimit() <= c.cursor && c.requeued.len() == 0 {
			return dst
		}
	}
}

func (c *Channel) deliverLocked(cn *conn, dst []delivery, seq uint64, r record, attempts uint16, now int64, timeout time.Duration) []delivery {
	if cn.sampled() {
		return dst // sample_rate drops the message for this channel, as NSQ does
	}
	if attempts < 0xffff {
		attempts++
	}
	deadline := now + int64(timeout)
	if !c.inflight.add(inflight{id: r.id, seq: seq, client: cn.id, delivered: now, deadline: deadline, attempts: attempts}, &cn.ifl) {
		return dst
	}
	c.scanner.want(deadline)
	return append(dst, delivery{id: r.id, ts: r.ts, attempts: attempts, body: r.body})
}

// giveBack returns messages a consumer took but never sent (it sent CLS
// meanwhile) to the front of the line, without counting a delivery attempt.
func (c *Channel) giveBack(cn *conn, batch []delivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, d := range batch {
		if m, ok := c.inflight.get(d.id); !ok || m.client != cn.id {
			continue
		}
		m, _ := c.inflight.remove(d.id, &cn.ifl)
		n++
		c.requeued.push(owned{seq: m.seq, attempts: m.attempts - 1})
	}
	cn.inflightN.Add(-int64(n))
	if n > 0 {
		c.signalLocked()
	}
}

// finish completes in-flight messages for client. It returns how many
// succeeded and the first error (with the failing ID's index).
func (c *Channel) finish(cn *conn, ids []uint64, errs []error) int {
	client := cn.id
	var lat []int64
	done := 0
	c.mu.Lock()
	for i, id := range ids {
		m, ok := c.inflight.get(id)
		if !ok {
			errs[i] = errNotInFlight
			continue
		}
		if m.client != client {
			errs[i] = errNotOwner
			continue
		}
		if c.e2e != nil {
			if r, ok := c.topic.log.get(m.seq); ok {
				lat = append(lat, r.ts)
			}
		}
		c.inflight.remove(id, &cn.ifl)
		cn.inflightN.Add(-1)
		done++
	}
	c.version++
	c.mu.Unlock()
	if c.e2e != nil {
		now := time.Now().UnixNano()
		for _, ts := range lat {
			c.e2e.add(now, now-ts)
		}
	}
	return done
}

// requeue puts an in-flight message back: at once when delay is 0, or
// deferred until now+delay.
func (c *Channel) requeue(cn *conn, id uint64, delay time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.inflight.get(id)
	if !ok {
		return errNotInFlight
	}
	if m.client != cn.id {
		return errNotOwner
	}
	r, _ := c.inflight.remove(id, &cn.ifl)
	cn.inflightN.Add(-1)
	c.requeues.Add(1)
	c.version++
	if delay <= 0 {
		c.requeued.push(owned{seq: r.seq, attempts: r.attempts})
		c.signalLocked()
		return nil
	}
	due := time.Now().Add(delay).UnixNano()
	o := owned{seq: r.seq, due: due, attempts: r.attempts}
	c.journalDeferLocked(o)
	c.deferred.push(o)
	c.scanner.want(due)
	return nil
}

// touch extends an in-flight message's deadline to now+timeout, capped at
// delivery+maxTimeout.
func (c *Channel) touch(cn *conn, id uint64, timeout, maxTimeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.inflight.get(id)
	if !ok {
		return errNotInFlight
	}
	if m.client != cn.id {
		return errNotOwner
	}
	now := time.Now().UnixNano()
	d := now + int64(timeout)
	if limit := m.delivered + int64(maxTimeout); d > limit {
		d = limit
	}
	m.deadline = d
	c.inflight.retime(m, &cn.ifl)
	return nil
}

// scan moves expired in-flight messages and due deferred messages to the
// requeued queue. It returns the next deadline (0: none).
func (c *Channel) scan(now int64) int64 {
	var timedOut []uint64 // owners to credit back
	c.mu.Lock()
	moved := false
	for _, cn := range c.consumers {
		for m := c.inflight.first(&cn.ifl); m != nil && m.deadline <= now; m = c.inflight.first(&cn.ifl) {
			r, _ := c.inflight.remove(m.id, &cn.ifl)
			c.requeued.push(owned{seq: r.seq, attempts: r.attempts})
			c.timeouts.Add(1)
			timedOut = append(timedOut, r.client)
			moved = true
		}
	}
	for len(c.deferred) > 0 && c.deferred[0].due <= now {
		o := c.deferred.pop()
		c.requeued.push(owned{seq: o.seq, attempts: o.attempts})
		moved = true
	}
	for _, id := range timedOut {
		if cn := c.consumers[id]; cn != nil {
			cn.timedOut()
		}
	}
	if moved {
		c.signalLocked()
	}
	next := int64(0)
	for _, cn := range c.consumers {
		if m := c.inflight.first(&cn.ifl); m != nil && (next == 0 || m.deadline < next) {
			next = m.deadline
		}
	}
	if len(c.deferred) > 0 && (next == 0 || c.deferred[0].due < next) {
		next = c.deferred[0].due
	}
	c.mu.Unlock()
	return next
}

// lowWater is the lowest log seq the channel still needs.
func (c *Channel) lowWater() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	low := c.cursor
	c.inflight.each(func(m *inflight) {
		if m.seq < low {
			low = m.seq
		}
	})
	for _, o := range c.deferred {
		if o.seq < low {
			low = o.seq
		}
	}
	c.requeued.each(func(o owned) {
		if o.seq < low {
			low = o.seq
		}
	})
	return low
}

// trim drops the oldest queued messages of an ephemeral channel beyond
// limit (NSQ drops an ephemeral channel's overflow too).
func (c *Channel) trim(limit int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := c.topic.readLimit()
	if int64(end-c.cursor) > limit {
		n := end - uint64(limit) - c.cursor
		c.cursor += n
		c.skipped += n
	}
}

// Empty drops every queued, requeued, deferred and in-flight message, and
// gives every consumer its credit back.
func (c *Channel) Empty() {
	end := c.topic.readLimit() // what a paused topic still holds is not the channel's
	c.mu.Lock()
	defer c.mu.Unlock()
	if end > c.cursor {
		c.skipped += end - c.cursor
		c.cursor = end
	}
	c.ahead = nil
	c.requeued.reset()
	c.deferred = nil
	c.inflight.reset()
	for _, cn := range c.consumers {
		cn.ifl.reset()
		cn.emptied()
	}
	c.version++
}

// Pause stops delivery; Unpause resumes it.
func (c *Channel) Pause() { c.setPaused(true) }

// Unpause resumes delivery.
func (c *Channel) Unpause() { c.setPaused(false) }

func (c *Channel) setPaused(p bool) {
	c.mu.Lock()
	c.paused = p
	if !p {
		for _, cn := range c.consumers {
			cn.wake()
		}
	}
	c.mu.Unlock()
	c.topic.hooks.persist()
}

// Paused reports whether delivery is paused.
func (c *Channel) Paused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused
}

// close marks the channel deleted and disconnects its consumers.
func (c *Channel) close() {
	c.mu.Lock()
	c.deleted = true
	cs := make([]*conn, 0, len(c.consumers))
	for _, cn := range c.consumers {
		cs = append(cs, cn)
	}
	c.mu.Unlock()
	for _, cn := range cs {
		cn.closeConn()
	}
}

// channelSnapshot is a snapshot of one channel.
type channelSnapshot struct {
	Name          string
	Depth         int64
	InFlight      int
	Deferred      int
	MessageCount  uint64
	RequeueCount  uint64
	TimeoutCount  uint64
	Paused        bool
	ClientCount   int
	E2E           *latencySnapshot
	ephemeral     bool
	consumerConns []*conn
}

func (c *Channel) stats(now int64) channelSnapshot {
	limit := c.topic.readLimit()
	c.mu.Lock()
	s := channelSnapshot{
		Name:         c.name,
		InFlight:     c.inflight.len(),
		Deferred:     len(c.deferred),
		RequeueCount: c.requeues.Load(),
		TimeoutCount: c.timeouts.Load(),
		Paused:       c.paused,
		ClientCount:  len(c.consumers),
		ephemeral:    c.ephemeral,
	}
	cursor := c.cursor
	if limit > c.cursor {
		s.Depth = int64(limit - c.cursor)
	}
	s.Depth += int64(c.requeued.len()) - c.passedOverLocked(limit)
	if limit > c.base {
		s.MessageCount = limit - c.base
	}
	for _, cn := range c.consumers {
		s.consumerConns = append(s.consumerConns, cn)
	}
	c.mu.Unlock()
	sort.Slice(s.consumerConns, func(i, j int) bool { return s.consumerConns[i].id < s.consumerConns[j].id })
	if k := c.topic.pendingDeferred(cursor, limit, now); k > 0 {
		s.Depth -= k
		s.Deferred += int(k)
	}
	if c.e2e != nil {
		s.E2E = c.e2e.snapshot(now)
	}
	return s
}

// skipRange makes the cursor jump over [from, to) when it gets there (an
// emptied, paused topic).
func (c *Channel) skipRange(from, to uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cursor >= from {
		if c.cursor < to {
			c.skipped += to - c.cursor
			c.cursor = to
		}
		return
	}
	if c.skipFrom >= c.cursor && c.skipTo > c.skipFrom {
		// A jump is pending already (an NSQ import's, or an earlier
		// empty): there is room for one.
		if from <= c.skipTo {
			c.skipFrom, c.skipTo = min(c.skipFrom, from), max(c.skipTo, to)
			return
		}
		c.ownUntilSkipLocked()
	}
	c.skipFrom, c.skipTo = from, to
}

// ownUntilSkipLocked takes the records from the cursor to the pending jump
// as owned messages (requeued, or deferred when a DPUB is not yet due) and
// makes the jump, freeing the jump for another range. Rare: a paused topic
// emptied while a channel has not reached an earlier jump. Caller holds
// t.mu (for t.dpub) and c.mu.
func (c *Channel) ownUntilSkipLocked() {
	now := time.Now().UnixNano()
	dues := map[uint64]int64{}
	for _, p := range c.topic.dpub {
		if p.seq >= c.cursor && p.seq < c.skipFrom && p.due > now {
			dues[p.seq] = p.due
		}
	}
	for seq := c.cursor; seq < c.skipFrom; seq++ {
		if c.ahead[seq] {
			delete(c.ahead, seq)
			continue
		}
		if due, ok := dues[seq]; ok {
			c.deferred.push(owned{seq: seq, due: due})
			c.scanner.want(due)
			continue
		}
		c.requeued.push(owned{seq: seq})
	}
	c.skipped += c.skipTo - c.skipFrom
	c.cursor, c.skipFrom, c.skipTo = c.skipTo, 0, 0
	c.version++
	c.signalLocked()
}

// passedOverLocked counts the records in [cursor, limit) that the cursor
// will pass over rather than hand out: a pending jump, and messages owned
// beyond the cursor (Channel.ahead), which /stats counts as requeued.
// Caller holds c.mu.
func (c *Channel) passedOverLocked(limit uint64) int64 {
	var n int64
	if c.skipFrom >= c.cursor && c.skipTo > c.skipFrom && c.skipFrom < limit {
		n += int64(min(c.skipTo, limit) - c.skipFrom)
	}
	for seq := range c.ahead {
		if seq >= c.cursor && seq < limit {
			n++
		}
	}
	return n
}
