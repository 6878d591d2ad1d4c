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
	hidx      int32 // position in the deadline heap
}

// inflightSet holds a channel's in-flight messages: a slab of values, a map
// from message ID to slab slot, and an index heap ordered by deadline, so
// FIN, REQ and TOUCH are O(log n) and the scanner finds the earliest
// deadline in O(1).
type inflightSet struct {
	slab []inflight
	free []int32
	byID map[uint64]int32
	heap []int32 // slab slots ordered by deadline
}

func (s *inflightSet) len() int { return len(s.heap) }

func (s *inflightSet) add(m inflight) bool {
	if s.byID == nil {
		s.byID = make(map[uint64]int32)
	}
	if _, dup := s.byID[m.id]; dup {
		return false
	}
	var slot int32
	if n := len(s.free); n > 0 {
		slot = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		slot = int32(len(s.slab))
		s.slab = append(s.slab, inflight{})
	}
	m.hidx = int32(len(s.heap))
	s.slab[slot] = m
	s.byID[m.id] = slot
	s.heap = append(s.heap, slot)
	s.up(int(m.hidx))
	return true
}

func (s *inflightSet) get(id uint64) (*inflight, bool) {
	slot, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	return &s.slab[slot], true
}

// remove deletes the message with id and returns a copy of it.
func (s *inflightSet) remove(id uint64) (inflight, bool) {
	slot, ok := s.byID[id]
	if !ok {
		return inflight{}, false
	}
	m := s.slab[slot]
	delete(s.byID, id)
	i := int(m.hidx)
	n := len(s.heap) - 1
	if i != n {
		s.swap(i, n)
	}
	s.heap = s.heap[:n]
	if i != n {
		s.down(i)
		s.up(i)
	}
	s.free = append(s.free, slot)
	if len(s.heap) == 0 {
		// Start afresh so a burst does not pin a large slab forever.
		s.slab, s.free = s.slab[:0], s.free[:0]
		if cap(s.slab) > 4096 {
			s.slab, s.free, s.byID = nil, nil, nil
		}
	}
	return m, true
}

// fix restores heap order after the deadline of id changed.
func (s *inflightSet) fix(m *inflight) {
	s.down(int(m.hidx))
	s.up(int(m.hidx))
}

// peek returns the message with the earliest deadline.
func (s *inflightSet) peek() *inflight { return &s.slab[s.heap[0]] }

func (s *inflightSet) less(i, j int) bool {
	return s.slab[s.heap[i]].deadline < s.slab[s.heap[j]].deadline
}

func (s *inflightSet) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.slab[s.heap[i]].hidx = int32(i)
	s.slab[s.heap[j]].hidx = int32(j)
}

func (s *inflightSet) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s.swap(i, p)
		i = p
	}
}

func (s *inflightSet) down(i int) {
	n := len(s.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			return
		}
		s.swap(i, m)
		i = m
	}
}

func (s *inflightSet) reset() { *s = inflightSet{} }
