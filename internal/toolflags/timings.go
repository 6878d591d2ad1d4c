package toolflags

import (
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Timings logs a summary of request durations every `every` requests
// (--status-every); every <= 0 disables it. It is safe for concurrent use.
type Timings struct {
	log   *slog.Logger
	name  string // "aggregate" or a destination address
	every int

	mu    sync.Mutex
	durs  []time.Duration
	total uint64
}

// NewTimings returns Timings logging to l with name as the "dest" attribute.
func NewTimings(l *slog.Logger, name string, every int) *Timings {
	return &Timings{log: l, name: name, every: every}
}

// Add records one request that started at start.
func (t *Timings) Add(start time.Time) {
	if t == nil || t.every <= 0 {
		return
	}
	d := time.Since(start)
	t.mu.Lock()
	t.durs = append(t.durs, d)
	t.total++
	if len(t.durs) < t.every {
		t.mu.Unlock()
		return
	}
	durs, total := t.durs, t.total
	t.durs = make([]time.Duration, 0, t.every)
	t.mu.Unlock()

	slices.Sort(durs)
	var sum time.Duration
	for _, d := range durs {
		sum += d
	}
	t.log.Info("status", "dest", t.name, "requests", total, "window", len(durs),
		"p99", durs[len(durs)*99/100], "p95", durs[len(durs)*95/100],
		"avg", sum/time.Duration(len(durs)))
}
