package nsqd

import "math/bits"

// idTable maps the IDs of a channel's in-flight messages to their slab
// slots. It is the hottest lookup of the consume path (every delivery adds
// an entry, every FIN, REQ and TOUCH finds one), so it is a flat
// open-addressing table rather than a Go map: Fibonacci hashing (IDs are
// mostly consecutive, which the multiplication spreads), linear probing over
// one array of 16-byte entries, and deletion by shifting the following
// entries back, so no tombstones pile up. The zero value is an empty table.
type idTable struct {
	ents  []idEntry
	n     int
	shift uint8 // 64 - log2(len(ents))
}

// idEntry is one bucket; slot1 is the slot plus one, zero when empty.
type idEntry struct {
	id    uint64
	slot1 int32
}

const idTableMin = 16

func (t *idTable) len() int { return t.n }

func (t *idTable) home(id uint64) int {
	return int((id * 0x9E3779B97F4A7C15) >> t.shift)
}

// get returns the slot of id.
func (t *idTable) get(id uint64) (int32, bool) {
	if t.n == 0 {
		return 0, false
	}
	mask := len(t.ents) - 1
	for i := t.home(id); ; i = (i + 1) & mask {
		e := &t.ents[i]
		if e.slot1 == 0 {
			return 0, false
		}
		if e.id == id {
			return e.slot1 - 1, true
		}
	}
}

// put adds id → slot. It reports false, changing nothing, when id is
// already present.
func (t *idTable) put(id uint64, slot int32) bool {
	if (t.n+1)*4 > len(t.ents)*3 { // load factor at most 3/4
		t.resize(max(idTableMin, 2*len(t.ents)))
	}
	mask := len(t.ents) - 1
	for i := t.home(id); ; i = (i + 1) & mask {
		e := &t.ents[i]
		if e.slot1 == 0 {
			e.id, e.slot1 = id, slot+1
			t.n++
			return true
		}
		if e.id == id {
			return false
		}
	}
}

// del removes id and returns its slot.
func (t *idTable) del(id uint64) (int32, bool) {
	if t.n == 0 {
		return 0, false
	}
	mask := len(t.ents) - 1
	i := t.home(id)
	for {
		e := &t.ents[i]
		if e.slot1 == 0 {
			return 0, false
		}
		if e.id == id {
			break
		}
		i = (i + 1) & mask
	}
	slot := t.ents[i].slot1 - 1
	// Shift back every following entry of the run whose home is not in
	// (i, j]: it would be unreachable across the hole at i otherwise.
	for j := (i + 1) & mask; t.ents[j].slot1 != 0; j = (j + 1) & mask {
		h := t.home(t.ents[j].id)
		if i <= j {
			if i < h && h <= j {
				continue
			}
		} else if i < h || h <= j {
			continue
		}
		t.ents[i] = t.ents[j]
		i = j
	}
	t.ents[i] = idEntry{}
	t.n--
	return slot, true
}

// resize rehashes into size buckets (a power of two).
func (t *idTable) resize(size int) {
	old := t.ents
	t.ents = make([]idEntry, size)
	t.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	mask := size - 1
	for _, e := range old {
		if e.slot1 == 0 {
			continue
		}
		i := t.home(e.id)
		for t.ents[i].slot1 != 0 {
			i = (i + 1) & mask
		}
		t.ents[i] = e
	}
}

// each calls fn with every slot.
func (t *idTable) each(fn func(slot int32)) {
	for _, e := range t.ents {
		if e.slot1 != 0 {
			fn(e.slot1 - 1)
		}
	}
}
