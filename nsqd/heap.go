package nsqd

// owned is a message a channel owns behind its cursor: requeued (ready
// again) or deferred (due at due). A plain value: no pointers, so a million
// deferred messages are one flat slice, not a million GC-scanned objects.
type owned struct {
	seq      uint64
	due      int64
	attempts uint16
}

// dueHeap is a min-heap of owned messages by due time.
type dueHeap []owned

func (h *dueHeap) push(o owned) {
	*h = append(*h, o)
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if a[p].due <= a[i].due {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *dueHeap) pop() owned {
	a := *h
	top := a[0]
	n := len(a) - 1
	a[0] = a[n]
	*h = a[:n]
	a = a[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && a[r].due < a[l].due {
			m = r
		}
		if a[i].due <= a[m].due {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	return top
}

// fifo is a ring buffer of owned messages.
type fifo struct {
	buf  []owned
	head int
	n    int
}

func (q *fifo) len() int { return q.n }

func (q *fifo) push(o owned) {
	if q.n == len(q.buf) {
		nb := make([]owned, max(16, 2*len(q.buf)))
		for i := 0; i < q.n; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = o
	q.n++
}

func (q *fifo) pop() owned {
	o := q.buf[q.head]
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	if q.n == 0 {
		q.head = 0
		if len(q.buf) > 1024 {
			q.buf = nil // give back a large idle buffer
		}
	}
	return o
}

func (q *fifo) each(fn func(o owned)) {
	for i := 0; i < q.n; i++ {
		fn(q.buf[(q.head+i)%len(q.buf)])
	}
}

func (q *fifo) reset() { *q = fifo{} }

// inflight is one delivered, unfinished message.
type inflight struct {
	id        uint64
	seq       uint64
	client    uint64 // owning connection's ID
	delivered int64  // ns
	deadline  int64  // ns
	attempts  uint16
	prev      int32 // neighbours in the owner's list (-1: none)
	next      int32
}

// inflightList is one consumer's in-flight messages in deadline order. A
// consumer's deadlines are its delivery times plus its own msg_timeout, so
// appending keeps the order; only a capped TOUCH needs to search. The list
// lives in the consumer's conn and is guarded by its channel's lock.
type inflightList struct {
	head, tail int32
	n          int
}

func (l *inflightList) reset() { *l = inflightList{head: -1, tail: -1} }

// inflightSet holds a channel's in-flight messages: a slab of values and a
// map from message ID to slab slot, threaded into per-consumer lists in
// deadline order. FIN, REQ and TOUCH are O(1) (a map lookup and an unlink);
// the scanner looks at each consumer's first entry.
type inflightSet struct {
	slab []inflight
	free []int32
	byID idTable
}

func (s *inflightSet) len() int { return s.byID.len() }

// add appends m to l (m.deadline must not be earlier than l's last). It
// reports false if the ID is already in flight.
func (s *inflightSet) add(m inflight, l *inflightList) bool {
	var slot int32
	n := len(s.free)
	if n > 0 {
		slot = s.free[n-1]
	} else {
		slot = int32(len(s.slab))
	}
	if !s.byID.put(m.id, slot) {
		return false
	}
	if n > 0 {
		s.free = s.free[:n-1]
	} else {
		s.slab = append(s.slab, inflight{})
	}
	s.slab[slot] = m
	s.linkTail(slot, l)
	return true
}

func (s *inflightSet) linkTail(slot int32, l *inflightList) {
	e := &s.slab[slot]
	e.prev, e.next = l.tail, -1
	if l.tail >= 0 {
		s.slab[l.tail].next = slot
	} else {
		l.head = slot
	}
	l.tail = slot
	l.n++
}

func (s *inflightSet) unlink(slot int32, l *inflightList) {
	e := &s.slab[slot]
	if e.prev >= 0 {
		s.slab[e.prev].next = e.next
	} else {
		l.head = e.next
	}
	if e.next >= 0 {
		s.slab[e.next].prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = -1, -1
	l.n--
}

func (s *inflightSet) get(id uint64) (*inflight, bool) {
	slot, ok := s.byID.get(id)
	if !ok {
		return nil, false
	}
	return &s.slab[slot], true
}

// remove deletes the message with id from the set and from l (its owner's
// list) and returns a copy of it.
func (s *inflightSet) remove(id uint64, l *inflightList) (inflight, bool) {
	slot, ok := s.byID.del(id)
	if !ok {
		return inflight{}, false
	}
	s.unlink(slot, l)
	m := s.slab[slot]
	s.free = append(s.free, slot)
	if s.byID.len() == 0 {
		// Start afresh so a burst does not pin a large slab forever.
		s.slab, s.free = s.slab[:0], s.free[:0]
		if cap(s.slab) > 4096 {
			s.slab, s.free, s.byID = nil, nil, idTable{}
		}
	}
	return m, true
}

// retime moves m (in l) to the place its new deadline puts it.
func (s *inflightSet) retime(m *inflight, l *inflightList) {
	slot, _ := s.byID.get(m.id)
	s.unlink(slot, l)
	at := l.tail
	for at >= 0 && s.slab[at].deadline > m.deadline {
		at = s.slab[at].prev
	}
	if at == l.tail {
		s.linkTail(slot, l)
		return
	}
	// Insert after at (or first when at < 0).
	e := &s.slab[slot]
	e.prev = at
	if at >= 0 {
		e.next = s.slab[at].next
		s.slab[at].next = slot
	} else {
		e.next = l.head
		l.head = slot
	}
	s.slab[e.next].prev = slot
	l.n++
}

// first returns l's earliest entry, or nil.
func (s *inflightSet) first(l *inflightList) *inflight {
	if l.head < 0 {
		return nil
	}
	return &s.slab[l.head]
}

// each calls fn for every in-flight message.
func (s *inflightSet) each(fn func(m *inflight)) {
	s.byID.each(func(slot int32) { fn(&s.slab[slot]) })
}

func (s *inflightSet) reset() { *s = inflightSet{} }
