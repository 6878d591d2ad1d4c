package nsqd

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// scanner is the one goroutine that times out in-flight messages and
// releases deferred ones for every channel. Channels tell it their
// deadlines with want; it sleeps until the earliest, scans, and asks each
// channel for its next deadline. No timer or goroutine per message.
type scanner struct {
	next    atomic.Int64 // earliest deadline wanted (ns), 0: none
	kick    chan struct{}
	topics  func() []*Topic
	minWait time.Duration
	// releaseEvery is the period of the sweep that releases and trims
	// every topic (1 s; tests lengthen it).
	releaseEvery time.Duration

	// Topics whose readers loaded segments back from disk: released at
	// once rather than at the next tick, so that a backlog drained from
	// disk holds only the segments its channels still need, not a
	// second's worth of them.
	relMu      sync.Mutex
	relTopics  map[*Topic]struct{}
	relPending chan struct{}
}

func newScanner(topics func() []*Topic) *scanner {
	return &scanner{
		kick: make(chan struct{}, 1), topics: topics, minWait: 5 * time.Millisecond, releaseEvery: time.Second,
		relTopics: map[*Topic]struct{}{}, relPending: make(chan struct{}, 1),
	}
}

// releaseSoon asks for t's unneeded segments to be released. It does not
// block (readers call it under a channel's lock).
func (s *scanner) releaseSoon(t *Topic) {
	s.relMu.Lock()
	s.relTopics[t] = struct{}{}
	s.relMu.Unlock()
	select {
	case s.relPending <- struct{}{}:
	default:
	}
}

// releaseRequested releases the topics releaseSoon named.
func (s *scanner) releaseRequested() {
	s.relMu.Lock()
	ts := make([]*Topic, 0, len(s.relTopics))
	for t := range s.relTopics {
		ts = append(ts, t)
	}
	clear(s.relTopics)
	s.relMu.Unlock()
	for _, t := range ts {
		t.release()
	}
}

// want asks for a scan no later than deadline.
func (s *scanner) want(deadline int64) {
	for {
		cur := s.next.Load()
		if cur != 0 && cur <= deadline {
			return
		}
		if s.next.CompareAndSwap(cur, deadline) {
			select {
			case s.kick <- struct{}{}:
			default:
			}
			return
		}
	}
}

// run scans until ctx ends. Once a second it also releases log segments no
// channel needs any more and evicts segments that readers loaded back from
// disk beyond the memory budget.
func (s *scanner) run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	release := time.NewTicker(s.releaseEvery)
	defer release.Stop()
	for {
		wait := time.Hour
		if n := s.next.Load(); n != 0 {
			wait = max(time.Duration(n-time.Now().UnixNano()), s.minWait)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
			continue
		case <-s.relPending:
			s.releaseRequested()
			continue
		case <-release.C:
			for _, t := range s.topics() {
				t.release()
				t.trimMemory()
			}
			continue
		case <-timer.C:
		}
		now := time.Now().UnixNano()
		if n := s.next.Load(); n == 0 || n > now {
			continue
		}
		s.next.Store(0)
		for _, t := range s.topics() {
			for _, c := range t.channelList() {
				if d := c.scan(now); d != 0 {
					s.want(d)
				}
			}
		}
	}
}
