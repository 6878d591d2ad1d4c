// Command nsq_tail prints the messages of one or more topics to stdout, one
// per line, like NSQ's nsq_tail. It consumes from a fresh ephemeral channel
// by default, so it sees a copy of the stream without disturbing other
// consumers.
//
//	nsq_tail --lookupd-http-address=127.0.0.1:4161 --topic=events
//	nsq_tail --nsqd-tcp-address=127.0.0.1:4150 --topic=events -n 10
//
// With -n it exits 0 after printing that many messages in total. It exits 0
// on SIGINT or SIGTERM, 2 on bad flags and 1 when it cannot connect or write.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/toolflags"
)

func main() { toolflags.Main(run) }

const about = `Prints every message of the topics to stdout followed by a newline. Consume
from nsqd directly (--nsqd-tcp-address) or from every nsqd that nsqlookupd
knows has the topic (--lookupd-http-address). The default channel is a new
ephemeral one, tail<6 random digits>#ephemeral, which disappears when
nsq_tail disconnects.`

type options struct {
	topics      toolflags.Strings
	channel     string
	nsqdAddrs   toolflags.Strings
	lookupAddrs toolflags.Strings
	maxInFlight int
	total       int
	printTopic  bool
	cfg         *nsq.Config
}

func newTool() (*toolflags.Tool, *options) {
	t := toolflags.New("nsq_tail",
		"nsq_tail --topic=TOPIC (--nsqd-tcp-address=ADDR | --lookupd-http-address=ADDR) [flags]", about)
	o := &options{cfg: nsq.NewConfig()}
	fs := t.Flags
	fs.Var(&o.topics, "topic", "NSQ `topic` to print (repeatable)")
	fs.StringVar(&o.channel, "channel", "", "NSQ `channel` (default tail<6 random digits>#ephemeral)")
	fs.Var(&o.nsqdAddrs, "nsqd-tcp-address", "nsqd TCP `address` to consume from (repeatable)")
	fs.Var(&o.lookupAddrs, "lookupd-http-address", "nsqlookupd HTTP `address` to discover nsqds with (repeatable)")
	fs.IntVar(&o.maxInFlight, "max-in-flight", 200, "most messages to have in flight at once")
	fs.IntVar(&o.total, "n", 0, "exit after printing this many messages in total, waiting for them if need be (0: never)")
	fs.BoolVar(&o.printTopic, "print-topic", false, "print the topic name and \" | \" before each message")
	toolflags.AddConfigOpt(fs, "consumer-opt", "consumer", o.cfg)
	return t, o
}

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	tool, o := newTool()
	if code, done := tool.Parse(args, stdout, stderr); done {
		return code
	}
	if err := toolflags.CheckSource(o.nsqdAddrs, o.lookupAddrs, "nsqd-tcp-address", "lookupd-http-address"); err != nil {
		return tool.UsageError(stderr, "%v", err)
	}
	switch {
	case len(o.topics) == 0:
		return tool.UsageError(stderr, "--topic required")
	case o.total < 0:
		return tool.UsageError(stderr, "-n must not be negative")
	case o.maxInFlight < 1:
		return tool.UsageError(stderr, "--max-in-flight must be at least 1")
	}
	if o.channel == "" {
		o.channel = fmt.Sprintf("tail%06d#ephemeral", rand.IntN(1000000))
	}
	// Asking for more than we will print would only take messages from the
	// channel to hand them back.
	if o.total > 0 && o.total < o.maxInFlight {
		o.maxInFlight = o.total
	}
	o.cfg.MaxInFlight = o.maxInFlight
	o.cfg.UserAgent = toolflags.UserAgent("nsq_tail")

	log := toolflags.NewLogger(stderr, "", slog.LevelInfo)
	nsqLog, nsqLevel := toolflags.NSQLogger(log)
	p := &printer{w: stdout, limit: o.total, printTopic: o.printTopic, done: make(chan struct{})}

	var consumers []*nsq.Consumer
	// stop ends every consumer and waits for each; go-nsq answers the
	// messages handed to the handlers before it closes a connection.
	stop := func() { toolflags.StopConsumers(consumers...) }
	// Once -n messages are printed, ask for no more before the last one is
	// finished: its FIN would otherwise let an nsqd send another.
	p.pause = func() {
		for _, c := range consumers {
			c.ChangeMaxInFlight(0)
		}
	}
	for _, topic := range o.topics {
		c, err := nsq.NewConsumer(topic, o.channel, o.cfg)
		if err != nil {
			stop()
			return tool.UsageError(stderr, "%v", err)
		}
		c.SetLogger(nsqLog, nsqLevel)
		c.AddHandler(p.handler(topic))
		consumers = append(consumers, c)
	}
	// Connect only once consumers is complete: handlers may read it.
	for i, c := range consumers {
		if err := toolflags.Connect(c, o.nsqdAddrs, o.lookupAddrs); err != nil {
			stop()
			return tool.Fail(stderr, fmt.Errorf("topic %s: %w", o.topics[i], err))
		}
	}

	select {
	case <-ctx.Done():
	case <-p.done:
	}
	stop()
	if err := p.failure(); err != nil {
		return tool.Fail(stderr, err)
	}
	return toolflags.ExitOK
}

// printer writes messages from every consumer to one writer and counts
// them against -n. Messages that arrive after the count is reached, or when
// stdout fails, are requeued rather than dropped.
type printer struct {
	w          io.Writer
	limit      int // 0: no limit
	printTopic bool
	done       chan struct{} // closed when the limit is reached or a write fails
	pause      func()        // called once, by the handler, when the limit is reached

	mu    sync.Mutex
	shown int
	err   error
	buf   []byte
}

func (p *printer) handler(topic string) nsq.HandlerFunc {
	return func(m *nsq.Message) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.err != nil || (p.limit > 0 && p.shown >= p.limit) {
			m.DisableAutoResponse()
			m.RequeueWithoutBackoff(0)
			return nil
		}
		// One Write per message keeps lines whole when stdout is shared.
		p.buf = p.buf[:0]
		if p.printTopic {
			p.buf = append(append(p.buf, topic...), " | "...)
		}
		p.buf = append(append(p.buf, m.Body...), '\n')
		if _, err := p.w.Write(p.buf); err != nil {
			p.err = fmt.Errorf("write to stdout: %w", err)
			close(p.done)
			m.DisableAutoResponse()
			m.RequeueWithoutBackoff(0)
			return nil
		}
		p.shown++
		if p.shown == p.limit {
			p.pause()
			close(p.done)
		}
		return nil
	}
}

func (p *printer) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
