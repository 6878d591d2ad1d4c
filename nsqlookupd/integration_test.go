package nsqlookupd

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// goNSQLogger sends go-nsq's logs to the test output until the test ends:
// go-nsq's Stop does not wait for its connections' goroutines, which may
// log afterwards.
type goNSQLogger struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func newGoNSQLogger(t *testing.T) *goNSQLogger {
	l := &goNSQLogger{w: t.Output()}
	t.Cleanup(func() { // registered first, so it runs after go-nsq's Stop
		l.mu.Lock()
		defer l.mu.Unlock()
		l.done = true
	})
	return l
}

func (l *goNSQLogger) Output(_ int, s string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return nil
	}
	_, err := fmt.Fprintln(l.w, s)
	return err
}

// stopConsumer stops c and waits for it, as far as go-nsq lets us.
func stopConsumer(t *testing.T, c *nsq.Consumer) {
	c.Stop()
	select {
	case <-c.StopChan:
	case <-time.After(testTimeout):
		t.Errorf("go-nsq consumer did not stop")
	}
}

// TestGoNSQConsumerDiscovers checks that go-nsq, as consumers run it, finds
// a producer through /lookup: a registered (fake) nsqd must receive the
// consumer's connection.
func TestGoNSQConsumerDiscovers(t *testing.T) {
	logger := newGoNSQLogger(t)
	s := startServer(t, nil, nil)
	fake, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	port := fake.Addr().(*net.TCPAddr).Port
	peer := dialV1(t, s)
	peer.roundTrip(identifyCmd(fmt.Sprintf(`{"version":"1.3.0","tcp_port":%d,"http_port":1,"broadcast_address":"127.0.0.1"}`, port)), wantReply(t, s))
	peer.roundTrip("REGISTER t c\n", "OK")

	accepted := make(chan string, 1)
	go func() { // ended by fake.Close in the cleanup, or after one connection
		conn, err := fake.Accept()
		if err != nil {
			accepted <- err.Error()
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(testTimeout))
		magic := make([]byte, 4)
		io.ReadFull(conn, magic)
		accepted <- string(magic)
	}()

	cfg := nsq.NewConfig()
	cfg.LookupdPollInterval = 5 * time.Minute // the first query is enough
	consumer, err := nsq.NewConsumer("t", "c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	consumer.SetLogger(logger, nsq.LogLevelInfo)
	consumer.AddHandler(nsq.HandlerFunc(func(*nsq.Message) error { return nil }))
	t.Cleanup(func() { stopConsumer(t, consumer) })
	if err := consumer.ConnectToNSQLookupd(s.HTTPAddr().String()); err != nil {
		t.Fatalf("ConnectToNSQLookupd: %v", err)
	}
	select {
	case got := <-accepted:
		if got != "  V2" {
			t.Errorf("the registered nsqd got %q, want the V2 magic from go-nsq", got)
		}
	case <-time.After(testTimeout):
		t.Fatal("go-nsq never connected to the producer lookupd returned")
	}
}

// TestWithNSQD runs nsqx's nsqd against this lookupd: its topics and
// channels appear and disappear here as they change there, and a go-nsq
// consumer that only knows the lookupd gets a message published to nsqd.
func TestWithNSQD(t *testing.T) {
	logger := newGoNSQLogger(t)
	s := startServer(t, nil, nil)
	n := nsqtest.StartNSQD(t, func(c *nsqd.Config) { c.LookupdTCPAddrs = []string{s.TCPAddr().String()} })
	nsqdPost := func(path string) {
		t.Helper()
		client := &http.Client{Timeout: testTimeout}
		res, err := client.Post("http://"+n.HTTPAddr+path, "", nil)
		if err != nil {
			t.Fatalf("nsqd POST %s: %v", path, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("nsqd POST %s = %d", path, res.StatusCode)
		}
	}
	_, tcpPort, _ := net.SplitHostPort(n.TCPAddr)
	_, httpPort, _ := net.SplitHostPort(n.HTTPAddr)

	nsqdPost("/topic/create?topic=t")
	nsqdPost("/channel/create?topic=t&channel=c")
	waitFor(t, "nsqd's channel to be registered", func() bool {
		r := do(t, s, "GET", "/lookup?topic=t")
		return r.code == 200 && strings.HasPrefix(r.body, `{"channels":["c"],"producers":[{`) &&
			strings.Contains(r.body, `"broadcast_address":"127.0.0.1","tcp_port":`+tcpPort+`,"http_port":`+httpPort+`,"version":"1.3.0"`)
	})

	got := make(chan string, 1)
	cfg := nsq.NewConfig()
	consumer, err := nsq.NewConsumer("t", "c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	consumer.SetLogger(logger, nsq.LogLevelInfo)
	consumer.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		select {
		case got <- string(m.Body):
		default:
		}
		return nil
	}))
	t.Cleanup(func() { stopConsumer(t, consumer) })
	if err := consumer.ConnectToNSQLookupd(s.HTTPAddr().String()); err != nil {
		t.Fatalf("ConnectToNSQLookupd: %v", err)
	}
	producer, err := nsq.NewProducer(n.TCPAddr, nsq.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	producer.SetLogger(logger, nsq.LogLevelInfo)
	t.Cleanup(producer.Stop)
	if err := producer.Publish("t", []byte("hello via lookupd")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	select {
	case body := <-got:
		if body != "hello via lookupd" {
			t.Errorf("consumer got %q", body)
		}
	case <-time.After(testTimeout):
		t.Fatal("the consumer found through lookupd received nothing")
	}

	nsqdPost("/channel/delete?topic=t&channel=c")
	waitFor(t, "the deleted channel to be unregistered", func() bool {
		return !strings.Contains(get(t, s, "/debug"), `"channel:t:c"`)
	})
	n.Stop(t)
	waitFor(t, "the stopped nsqd to be unregistered", func() bool {
		return get(t, s, "/lookup?topic=t") == `{"channels":["c"],"producers":[]}` && get(t, s, "/nodes") == `{"producers":[]}`
	})
}
