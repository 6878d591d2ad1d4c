package nsqd_test

import (
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// TestDeferredCountSurvivesRestart: a DPUB message no consumer has reached
// counts as deferred, not depth, before and after a clean restart, in both
// storage modes.
func TestDeferredCountSurvivesRestart(t *testing.T) {
	for _, mem := range []int64{10000, 0} {
		dir := t.TempDir()
		start := func() *nsqtest.NSQD {
			return nsqtest.StartNSQD(t, func(c *nsqd.Config) { c.DataPath = dir; c.MemQueueSize = mem })
		}
		check := func(n *nsqtest.NSQD, when string) {
			t.Helper()
			st := n.Stats(nsqd.StatsFilter{Topic: "t"})
			if len(st.Topics) != 1 || len(st.Topics[0].Channels) != 1 {
				t.Fatalf("mem-queue-size=%d %s: stats %+v", mem, when, st.Topics)
			}
			c := st.Topics[0].Channels[0]
			if c.Depth != 1 || c.DeferredCount != 1 {
				t.Fatalf("mem-queue-size=%d %s: depth %d deferred %d, want 1 and 1", mem, when, c.Depth, c.DeferredCount)
			}
		}
		n := start()
		top, _ := n.Topic("t")
		top.Channel("c")
		if err := top.Publish([]byte("later"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := top.Publish([]byte("now"), 0); err != nil {
			t.Fatal(err)
		}
		check(n, "before restart")
		n.Stop(t)
		check(start(), "after restart")
	}
}
