package nsqd

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// checkIDTable compares t with the model map: same size, every model entry
// found with its slot, and each reports exactly the model's slots.
func checkIDTable(t *testing.T, tab *idTable, model map[uint64]int32) {
	t.Helper()
	if tab.len() != len(model) {
		t.Fatalf("len() = %d, want %d", tab.len(), len(model))
	}
	for id, slot := range model {
		got, ok := tab.get(id)
		if !ok || got != slot {
			t.Fatalf("get(%#x) = %d, %v; want %d, true", id, got, ok, slot)
		}
	}
	seen := map[int32]int{}
	tab.each(func(slot int32) { seen[slot]++ })
	if len(seen) != len(model) {
		t.Fatalf("each visited %d slots, want %d", len(seen), len(model))
	}
	for _, slot := range model {
		if seen[slot] != 1 {
			t.Fatalf("each visited slot %d %d times, want once", slot, seen[slot])
		}
	}
}

// runIDTableOps applies ops, a byte script, to a table and to a map and
// checks that they agree after every step. Keys come from a small range so
// that collisions, long probe runs and wrap-around deletions are common.
func runIDTableOps(t *testing.T, ops []byte, keySpace uint64) {
	var tab idTable
	model := map[uint64]int32{}
	next := int32(0)
	for len(ops) >= 3 {
		op, k := ops[0], uint64(binary.LittleEndian.Uint16(ops[1:]))%keySpace
		ops = ops[3:]
		id := k<<40 | k // spread over the high bits too
		switch op % 3 {
		case 0, 1:
			_, exists := model[id]
			if ok := tab.put(id, next); ok == exists {
				t.Fatalf("put(%#x) = %v with the key present = %v", id, ok, exists)
			}
			if !exists {
				model[id] = next
				next++
			}
		case 2:
			want, exists := model[id]
			got, ok := tab.del(id)
			if ok != exists || (ok && got != want) {
				t.Fatalf("del(%#x) = %d, %v; want %d, %v", id, got, ok, want, exists)
			}
			delete(model, id)
		}
		if _, ok := tab.get(id ^ 1<<63); ok {
			t.Fatalf("get of an absent key found something")
		}
	}
	checkIDTable(t, &tab, model)
}

func TestIDTable(t *testing.T) {
	for _, keySpace := range []uint64{7, 64, 1000, 1 << 16} {
		r := rand.New(rand.NewPCG(keySpace, 1))
		ops := make([]byte, 3*20000)
		for i := range ops {
			ops[i] = byte(r.Uint32())
		}
		runIDTableOps(t, ops, keySpace)
	}
}

// TestIDTableConsecutive fills and drains a table with consecutive IDs,
// the common shape of message IDs, in and out of order.
func TestIDTableConsecutive(t *testing.T) {
	var tab idTable
	model := map[uint64]int32{}
	const base, n = uint64(0x1234_5678_0000), 5000
	for i := range uint64(n) {
		if !tab.put(base+i, int32(i)) {
			t.Fatalf("put(%d) refused", i)
		}
		model[base+i] = int32(i)
	}
	checkIDTable(t, &tab, model)
	for i := uint64(0); i < n; i += 2 {
		tab.del(base + i)
		delete(model, base+i)
	}
	checkIDTable(t, &tab, model)
	for i := uint64(1); i < n; i += 2 {
		tab.del(base + i)
		delete(model, base+i)
	}
	checkIDTable(t, &tab, model)
	if _, ok := tab.del(base); ok {
		t.Fatalf("del on an empty table found something")
	}
}

func FuzzIDTable(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 2, 0, 2, 1, 0})
	f.Add([]byte{0, 1, 0, 0, 1, 0, 1, 2, 0, 2, 1, 0, 2, 2, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		runIDTableOps(t, ops, 50)
	})
}

func BenchmarkIDTable(b *testing.B) {
	const inflight = 2500
	var tab idTable
	id := uint64(1 << 40)
	for i := range inflight {
		tab.put(id+uint64(i), int32(i))
	}
	b.ResetTimer()
	for i := range b.N {
		old := id + uint64(i)
		slot, _ := tab.del(old)
		tab.put(old+inflight, slot)
	}
}

func BenchmarkIDMap(b *testing.B) {
	const inflight = 2500
	m := map[uint64]int32{}
	id := uint64(1 << 40)
	for i := range inflight {
		m[id+uint64(i)] = int32(i)
	}
	b.ResetTimer()
	for i := range b.N {
		old := id + uint64(i)
		slot := m[old]
		delete(m, old)
		if _, dup := m[old+inflight]; !dup {
			m[old+inflight] = slot
		}
	}
}
