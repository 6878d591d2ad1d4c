package nsqd

// backend_depth, the part of a depth that is on disk only, as /stats,
// statsd and /metrics report it. In NSQ a queue's messages are in its
// memory channel or in its diskqueue (the "backend"); here they are in log
// segments that are resident or evicted to disk. So a message counts as
// backend depth when its segment is not in memory, and, with
// --mem-queue-size=0 (every message written to disk before it is
// acknowledged, NSQ's "all to the backend"), always.

// onDisk counts the records in [from, to) whose segment is not resident.
func (l *msgLog) onDisk(from, to uint64) int64 {
	if l.store == nil || from >= to {
		return 0
	}
	segs := l.segments()
	var n int64
	for i, s := range segs {
		end := to
		if i+1 < len(segs) {
			end = segs[i+1].base
		}
		lo, hi := max(from, s.base), min(to, end)
		if lo < hi && s.res.Load() == nil {
			n += int64(hi - lo)
		}
	}
	return n
}

// backend is the backend part of depth messages that are the records
// [from, to) of l.
func (l *msgLog) backend(from, to uint64, depth int64) int64 {
	switch st := l.store; {
	case depth <= 0 || st == nil:
		return 0
	case st.durable:
		return depth
	}
	return min(l.onDisk(from, to), depth)
}

// depthOnDisk is the topic's depth and its backend part.
func (t *Topic) depthOnDisk() (depth, backend int64) {
	depth = t.depth()
	if depth <= 0 {
		return depth, 0
	}
	tail := t.log.tail.Load()
	return depth, t.log.backend(tail-min(uint64(depth), tail), tail, depth)
}

// backendDepth is the backend part of the channel's depth: the records
// between its cursor and what it may read that are on disk only.
// Requeued messages count as in memory.
func (c *Channel) backendDepth(depth int64) int64 {
	limit := c.topic.readLimit()
	c.mu.Lock()
	cursor := c.cursor
	c.mu.Unlock()
	if limit <= cursor {
		if st := c.topic.log.store; st != nil && st.durable {
			return max(depth, 0)
		}
		return 0
	}
	return c.topic.log.backend(cursor, limit, depth)
}
