package nsqd_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// TestGoNSQSampleRate: a consumer with sample_rate N receives about N+1
// percent of a channel's messages; the rest are dropped for that channel,
// not requeued (NSQ's "tap").
func TestGoNSQSampleRate(t *testing.T) {
	n := nsqtest.StartNSQD(t, nil)
	top, _ := n.Topic("sampled")
	top.Channel("c")
	const total = 2000
	var bodies [][]byte
	for i := 0; i < total; i++ {
		bodies = append(bodies, []byte(fmt.Sprint(i)))
	}
	if err := top.PublishBodies(bodies); err != nil {
		t.Fatal(err)
	}
	cfg := nsq.NewConfig()
	cfg.SampleRate = 9 // about 10%
	cfg.MaxInFlight = 100
	c, err := nsq.NewConsumer("sampled", "c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(nil, nsq.LogLevelError)
	var got atomic.Int64
	c.AddHandler(nsq.HandlerFunc(func(*nsq.Message) error { got.Add(1); return nil }))
	if err := c.ConnectToNSQD(n.TCPAddr); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	nsqtest.Eventually(t, 10*time.Second, "the channel to drain", func() bool {
		st := n.Stats(nsqd.StatsFilter{Topic: "sampled"})
		ch := st.Topics[0].Channels[0]
		return ch.Depth == 0 && ch.InFlightCount == 0
	})
	// 10% of 2000 is 200; a binomial spread of ±4σ is about ±55.
	if g := got.Load(); g < 120 || g > 300 {
		t.Fatalf("sample_rate 9 delivered %d of %d, want about 200", g, total)
	}
}
