// Command nsq_to_nsq copies the messages of NSQ topics to other nsqds, like
// NSQ's nsq_to_nsq, optionally filtering JSON messages on the way.
//
//	nsq_to_nsq --lookupd-http-address=10.0.0.1:4161 --topic=events \
//	    --destination-nsqd-tcp-address=10.1.0.1:4150 --destination-topic=events_copy
//
// A message is finished on the source only after a destination nsqd
// acknowledged it; a failed publish requeues it. SIGINT and SIGTERM wait for
// the outstanding acknowledgements, answer every message and exit 0. Bad
// flags exit 2; a failure to connect to the source exits 1.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/toolflags"
)

func main() { toolflags.Main(run) }

const about = `Consumes --topic on --channel and publishes every message to one of the
--destination-nsqd-tcp-address nsqds, picked by --mode (round-robin, hostpool:
in turn among the healthy ones, or epsilon-greedy: mostly the fastest healthy
one), on --destination-topic or the same topic.

JSON filters (messages must then be JSON objects; others are dropped):
  --require-json-field F              pass only objects that have field F
  --require-json-field F --require-json-value V
                                      pass only objects whose F is the string V
                                      or the number V; an object without F is
                                      requeued with backoff
  --whitelist-json-field F (repeatable) publish only these fields`

type options struct {
	topics       toolflags.Strings
	channel      string
	destTopic    string
	maxInFlight  int
	statusEvery  int
	mode         toolflags.Mode
	nsqdAddrs    toolflags.Strings
	lookupAddrs  toolflags.Strings
	destAddrs    toolflags.Strings
	whitelist    toolflags.Strings
	requireField string
	requireValue string
	ccfg         *nsq.Config
	pcfg         *nsq.Config
}

func newTool() (*toolflags.Tool, *options) {
	t := toolflags.New("nsq_to_nsq",
		"nsq_to_nsq --topic=TOPIC (--nsqd-tcp-address=ADDR | --lookupd-http-address=ADDR) --destination-nsqd-tcp-address=ADDR [flags]", about)
	o := &options{ccfg: nsq.NewConfig(), pcfg: nsq.NewConfig(), mode: toolflags.HostPool}
	fs := t.Flags
	fs.Var(&o.topics, "topic", "NSQ `topic` to copy (repeatable)")
	fs.StringVar(&o.channel, "channel", "nsq_to_nsq", "NSQ `channel`")
	fs.StringVar(&o.destTopic, "destination-topic", "", "`topic` to publish to (default: the topic the message came from)")
	fs.IntVar(&o.maxInFlight, "max-in-flight", 200, "most messages per topic to have in flight at once")
	fs.IntVar(&o.statusEvery, "status-every", 250, "log publish timings every this many messages (0: never)")
	fs.Var(&o.mode, "mode", "how to pick a destination: round-robin, hostpool or epsilon-greedy")
	fs.Var(&o.nsqdAddrs, "nsqd-tcp-address", "source nsqd TCP `address` (repeatable)")
	fs.Var(&o.lookupAddrs, "lookupd-http-address", "nsqlookupd HTTP `address` to discover source nsqds with (repeatable)")
	fs.Var(&o.destAddrs, "destination-nsqd-tcp-address", "destination nsqd TCP `address` (repeatable)")
	fs.Var(&o.whitelist, "whitelist-json-field", "for JSON messages: publish only this `field` (repeatable)")
	fs.StringVar(&o.requireField, "require-json-field", "", "for JSON messages: pass only messages that have this `field`")
	fs.StringVar(&o.requireValue, "require-json-value", "", "for JSON messages: pass only messages whose --require-json-field has this `value`")
	toolflags.AddConfigOpt(fs, "consumer-opt", "consumers", o.ccfg)
	toolflags.AddConfigOpt(fs, "producer-opt", "producers", o.pcfg)
	return t, o
}

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	tool, o := newTool()
	if code, done := tool.Parse(args, stdout, stderr); done {
		return code
	}
	if err := validate(o); err != nil {
		return tool.UsageError(stderr, "%v", err)
	}
	ua := toolflags.UserAgent("nsq_to_nsq")
	o.ccfg.UserAgent, o.ccfg.MaxInFlight = ua, o.maxInFlight
	o.pcfg.UserAgent = ua
	log := toolflags.NewLogger(stderr, "", slog.LevelInfo)
	nsqLog, nsqLevel := toolflags.NSQLogger(log)

	r := &relay{
		log:    log,
		filter: newFilter(o.requireField, o.requireValue, o.whitelist),
		pool:   toolflags.NewPool(o.mode, len(o.destAddrs)),
		done:   make(chan *nsq.ProducerTransaction, len(o.destAddrs)),
		total:  toolflags.NewTimings(log, "aggregate", o.statusEvery),
	}
	for _, addr := range o.destAddrs {
		p, err := nsq.NewProducer(addr, o.pcfg)
		if err != nil {
			return tool.UsageError(stderr, "%v", err)
		}
		p.SetLogger(nsqLog, nsqLevel)
		r.producers = append(r.producers, p)
		if len(o.destAddrs) > 1 {
			r.perDest = append(r.perDest, toolflags.NewTimings(log, addr, o.statusEvery))
		}
	}

	// Shutdown order: consumers first (they stop only once every message
	// is answered, which needs the producers' acknowledgements), then the
	// producers, then the responder.
	var consumers []*nsq.Consumer
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { r.respond(quit) }) // stopped by quit below
	shutdown := func() {
		for _, c := range consumers {
			c.Stop()
		}
		for _, c := range consumers {
			<-c.StopChan
		}
		for _, p := range r.producers {
			p.Stop()
		}
		close(quit)
		wg.Wait()
	}
	for _, topic := range o.topics {
		c, err := nsq.NewConsumer(topic, o.channel, o.ccfg)
		if err != nil {
			shutdown()
			return tool.UsageError(stderr, "%v", err)
		}
		c.SetLogger(nsqLog, nsqLevel)
		dest := topic
		if o.destTopic != "" {
			dest = o.destTopic
		}
		c.AddConcurrentHandlers(&topicHandler{r: r, dest: dest}, len(o.destAddrs))
		consumers = append(consumers, c)
		if err := toolflags.Connect(c, o.nsqdAddrs, o.lookupAddrs); err != nil {
			shutdown()
			return tool.Fail(stderr, fmt.Errorf("topic %s: %w", topic, err))
		}
	}
	<-ctx.Done()
	shutdown()
	return toolflags.ExitOK
}

func validate(o *options) error {
	switch {
	case len(o.topics) == 0 || o.channel == "":
		return fmt.Errorf("--topic and --channel are required")
	case !nsq.IsValidChannelName(o.channel):
		return fmt.Errorf("--channel %q is not a valid channel name", o.channel)
	case o.destTopic != "" && !nsq.IsValidTopicName(o.destTopic):
		return fmt.Errorf("--destination-topic %q is not a valid topic name", o.destTopic)
	case len(o.destAddrs) == 0:
		return fmt.Errorf("--destination-nsqd-tcp-address required")
	case o.requireValue != "" && o.requireField == "":
		return fmt.Errorf("--require-json-value needs --require-json-field")
	case o.maxInFlight < 1:
		return fmt.Errorf("--max-in-flight must be at least 1")
	}
	for _, t := range o.topics {
		if !nsq.IsValidTopicName(t) {
			return fmt.Errorf("--topic %q is not a valid topic name", t)
		}
	}
	return toolflags.CheckSource(o.nsqdAddrs, o.lookupAddrs, "nsqd-tcp-address", "lookupd-http-address")
}

// relay publishes messages to the destinations and answers each source
// message when its publish is acknowledged.
type relay struct {
	log       *slog.Logger
	filter    *filter
	producers []*nsq.Producer
	pool      *toolflags.Pool
	done      chan *nsq.ProducerTransaction // acknowledgements, read by respond
	total     *toolflags.Timings
	perDest   []*toolflags.Timings // nil with one destination
}

// publish is what a publish carries to its acknowledgement.
type publish struct {
	msg   *nsq.Message
	dest  int
	start time.Time
}

// topicHandler relays one source topic to dest.
type topicHandler struct {
	r    *relay
	dest string
}

func (h *topicHandler) HandleMessage(m *nsq.Message) error {
	r := h.r
	body, verdict := r.filter.apply(m.Body)
	switch verdict {
	case drop:
		return nil // finished: filtered out
	case backoff:
		return errMissingField // requeued with backoff
	}
	i := r.pool.Pick()
	m.DisableAutoResponse()
	p := &publish{msg: m, dest: i, start: time.Now()}
	if err := r.producers[i].PublishAsync(h.dest, body, r.done, p); err != nil {
		r.pool.Mark(i, 0, err)
		r.log.Warn("publish failed", "dest", r.producers[i].String(), "err", err)
		m.Requeue(-1)
	}
	return nil
}

// respond answers each source message as its publish completes, until
// quit is closed.
func (r *relay) respond(quit <-chan struct{}) {
	for {
		select {
		case <-quit:
			return
		case t := <-r.done:
			p := t.Args[0].(*publish)
			r.pool.Mark(p.dest, time.Since(p.start), t.Error)
			if t.Error != nil {
				r.log.Warn("publish failed", "dest", r.producers[p.dest].String(), "err", t.Error)
				p.msg.Requeue(-1)
				continue
			}
			p.msg.Finish()
			if r.perDest != nil {
				r.perDest[p.dest].Add(p.start)
			}
			r.total.Add(p.start)
		}
	}
}
