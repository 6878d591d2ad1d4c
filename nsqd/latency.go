package nsqd

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// latencyWindow records end-to-end processing latencies (publish to FIN)
// over a rolling window: two histograms, each covering half the window,
// rotated as time passes, so a snapshot covers between half and all of the
// window (NSQ does the same with two quantile streams). Buckets are
// log-linear (16 per power of two, ~4% error); a value is a few adds.
type latencyWindow struct {
	quantiles []float64
	half      int64

	mu      sync.Mutex
	cur     *histogram
	prev    *histogram
	started int64
}

const subBuckets = 16

type histogram struct {
	counts [64 * subBuckets]uint32
	n      uint64
}

func newLatencyWindow(cfg *Config) *latencyWindow {
	if len(cfg.E2EProcessingLatencyPercentiles) == 0 {
		return nil
	}
	return &latencyWindow{
		quantiles: cfg.E2EProcessingLatencyPercentiles,
		half:      int64(cfg.E2EProcessingLatencyWindowTime / 2),
		cur:       &histogram{},
		prev:      &histogram{},
		started:   time.Now().UnixNano(),
	}
}

func bucketOf(v int64) int {
	if v < subBuckets {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 1 // v in [2^e, 2^(e+1))
	m := int(uint64(v)>>(uint(e)-4)) & (subBuckets - 1)
	return (e-3)*subBuckets + m
}

// bucketValue is the middle of a bucket.
func bucketValue(b int) float64 {
	if b < subBuckets {
		return float64(b)
	}
	e := b/subBuckets + 3
	m := b % subBuckets
	lo := math.Ldexp(float64(subBuckets+m), e-4)
	return lo + math.Ldexp(0.5, e-4)
}

func (w *latencyWindow) rotate(now int64) {
	for now-w.started >= w.half {
		w.prev, w.cur = w.cur, w.prev
		*w.cur = histogram{}
		w.started += w.half
		if now-w.started >= 2*w.half { // idle for a whole window
			*w.prev = histogram{}
			w.started = now
		}
	}
}

func (w *latencyWindow) add(now, v int64) {
	w.mu.Lock()
	w.rotate(now)
	b := bucketOf(v)
	if b >= len(w.cur.counts) {
		b = len(w.cur.counts) - 1
	}
	w.cur.counts[b]++
	w.cur.n++
	w.mu.Unlock()
}

// latencySnapshot is a merged histogram of one or more windows.
type latencySnapshot struct {
	quantiles []float64
	counts    [64 * subBuckets]uint64
	n         uint64
}

func (w *latencyWindow) snapshot(now int64) *latencySnapshot {
	s := &latencySnapshot{quantiles: w.quantiles}
	w.mu.Lock()
	w.rotate(now)
	for i := range s.counts {
		s.counts[i] = uint64(w.cur.counts[i]) + uint64(w.prev.counts[i])
	}
	s.n = w.cur.n + w.prev.n
	w.mu.Unlock()
	return s
}

func (s *latencySnapshot) merge(o *latencySnapshot) {
	for i := range s.counts {
		s.counts[i] += o.counts[i]
	}
	s.n += o.n
}

// value returns the q-quantile in ns.
func (s *latencySnapshot) value(q float64) float64 {
	if s.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(s.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for b, c := range s.counts {
		seen += c
		if seen >= rank {
			return bucketValue(b)
		}
	}
	return bucketValue(len(s.counts) - 1)
}
