package nsqd_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/nsqtest"
)

func TestGoNSQRoundTrip(t *testing.T) {
	n := nsqtest.StartNSQD(t, nil)
	cfg := nsq.NewConfig()
	p, err := nsq.NewProducer(n.TCPAddr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.SetLogger(nil, nsq.LogLevelError)
	defer p.Stop()
	const N = 1000
	var bodies [][]byte
	for i := 0; i < N; i++ {
		bodies = append(bodies, []byte(fmt.Sprintf("msg-%d", i)))
	}
	if err := p.MultiPublish("smoke", bodies[:N/2]); err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies[N/2:] {
		if err := p.Publish("smoke", b); err != nil {
			t.Fatal(err)
		}
	}
	c, err := nsq.NewConsumer("smoke", "ch", cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(nil, nsq.LogLevelError)
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{})
	c.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen[string(m.Body)]++
		if len(seen) == N {
			close(done)
		}
		return nil
	}))
	if err := c.ConnectToNSQD(n.TCPAddr); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("got %d of %d messages", len(seen), N)
	}
}
