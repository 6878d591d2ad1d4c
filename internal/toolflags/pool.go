package toolflags

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Mode is --mode: how nsq_to_http and nsq_to_nsq pick one destination of
// several for each message.
type Mode int

const (
	// RoundRobin takes the destinations in turn, failed or not.
	RoundRobin Mode = iota
	// HostPool takes the healthy destinations in turn. A failure takes a
	// destination out for a while (30s, doubling on each further failure
	// up to 15m); when every destination is out, all are tried again.
	HostPool
	// EpsilonGreedy is HostPool that usually takes the healthy destination
	// with the lowest recent response time, and a random healthy one a
	// tenth of the time so that slow ones get measured again.
	EpsilonGreedy
)

var modeNames = []string{"round-robin", "hostpool", "epsilon-greedy"}

func (m *Mode) String() string {
	if m == nil || int(*m) >= len(modeNames) {
		return ""
	}
	return modeNames[*m]
}

func (m *Mode) Set(s string) error {
	for i, name := range modeNames {
		if s == name {
			*m = Mode(i)
			return nil
		}
	}
	return fmt.Errorf("unknown mode %q: want round-robin, hostpool or epsilon-greedy", s)
}

const (
	retryFirst = 30 * time.Second
	retryMax   = 15 * time.Minute
	epsilon    = 0.1
	ewmaWeight = 0.2 // weight of the newest response time in the average
)

// Pool picks destinations by index according to a Mode and learns from
// Mark. It is safe for concurrent use.
type Pool struct {
	mode Mode
	now  func() time.Time // for tests

	mu    sync.Mutex
	next  int
	hosts []hostState
}

type hostState struct {
	deadUntil time.Time     // zero when healthy
	retry     time.Duration // the next out-of-service period
	avg       time.Duration // moving average of response times; 0 = unmeasured
}

// NewPool returns a Pool over n destinations (n > 0).
func NewPool(mode Mode, n int) *Pool {
	return &Pool{mode: mode, now: time.Now, hosts: make([]hostState, n)}
}

// Pick returns the index of the destination to use next.
func (p *Pool) Pick() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.hosts)
	if p.mode == RoundRobin || n == 1 {
		i := p.next
		p.next = (p.next + 1) % n
		return i
	}
	now := p.now()
	alive := make([]int, 0, n)
	for k := range n {
		i := (p.next + k) % n
		if h := &p.hosts[i]; h.deadUntil.IsZero() || !now.Before(h.deadUntil) {
			alive = append(alive, i)
		}
	}
	if len(alive) == 0 {
		// Everything failed recently: give every destination another go
		// rather than refusing to send anywhere.
		for i := range p.hosts {
			p.hosts[i].deadUntil = time.Time{}
		}
		for k := range n {
			alive = append(alive, (p.next+k)%n)
		}
	}
	pick := alive[0]
	if p.mode == EpsilonGreedy {
		if rand.Float64() < epsilon {
			pick = alive[rand.IntN(len(alive))]
		} else {
			for _, i := range alive[1:] {
				if p.hosts[i].avg < p.hosts[pick].avg {
					pick = i
				}
			}
		}
	}
	p.next = (pick + 1) % n
	return pick
}

// Mark records the outcome of a request to destination i that took took.
func (p *Pool) Mark(i int, took time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := &p.hosts[i]
	if err != nil {
		if h.retry == 0 {
			h.retry = retryFirst
		}
		h.deadUntil = p.now().Add(h.retry)
		h.retry = min(2*h.retry, retryMax)
		return
	}
	h.deadUntil, h.retry = time.Time{}, 0
	if h.avg == 0 {
		h.avg = max(took, 1)
	} else {
		h.avg = time.Duration(ewmaWeight*float64(took) + (1-ewmaWeight)*float64(h.avg))
	}
}
