package nsqadmin

import (
	"sync"
	"time"
)

const (
	// rateWindow is the span a rate is averaged over.
	rateWindow = 30 * time.Second
	// rateMinSpan is the least span a rate is computed from.
	rateMinSpan = time.Second
	// rateExpiry forgets a series not observed for this long.
	rateExpiry = 10 * time.Minute
)

// rateTracker turns the message counters seen in successive /stats
// gathers into per-second rates, so pages can show rates without Graphite.
// Each series is keyed by what it counts ("t:topic", "c:topic/channel"…).
type rateTracker struct {
	now func() time.Time

	mu        sync.Mutex
	series    map[string]*rateSeries
	lastSweep time.Time
}

type rateSample struct {
	at    time.Time
	count int64
}

type rateSeries struct {
	samples []rateSample // oldest first, within rateWindow of the newest
}

func newRateTracker(now func() time.Time) *rateTracker {
	return &rateTracker{now: now, series: map[string]*rateSeries{}}
}

// observe records count for key now and returns the rate over the samples
// in the window, or ok=false until there is a long enough span. A counter
// that goes down (a node left, a topic was recreated) restarts the series.
func (r *rateTracker) observe(key string, count int64) (rate float64, ok bool) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.lastSweep) > rateExpiry {
		for k, s := range r.series {
			if now.Sub(s.samples[len(s.samples)-1].at) > rateExpiry {
				delete(r.series, k)
			}
		}
		r.lastSweep = now
	}
	s := r.series[key]
	if s == nil {
		s = &rateSeries{}
		r.series[key] = s
	}
	if n := len(s.samples); n > 0 && count < s.samples[n-1].count {
		s.samples = s.samples[:0]
	}
	// Keep one sample per 250ms, so many requests in a burst do not crowd
	// out the older samples the rate is measured against.
	if n := len(s.samples); n > 0 && now.Sub(s.samples[n-1].at) < 250*time.Millisecond {
		s.samples[n-1] = rateSample{now, count}
	} else {
		s.samples = append(s.samples, rateSample{now, count})
	}
	i := 0
	for i < len(s.samples)-2 && now.Sub(s.samples[i+1].at) >= rateWindow {
		i++
	}
	s.samples = s.samples[i:]
	first, last := s.samples[0], s.samples[len(s.samples)-1]
	span := last.at.Sub(first.at)
	if span < rateMinSpan {
		return 0, false
	}
	return float64(last.count-first.count) / span.Seconds(), true
}
