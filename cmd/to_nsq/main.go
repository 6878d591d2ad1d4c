// Command to_nsq publishes stdin to an NSQ topic, one message per
// delimiter-separated record, like NSQ's to_nsq.
//
//	tail -F app.log | to_nsq --topic=logs --nsqd-tcp-address=127.0.0.1:4150
//
// Records go to the nsqds in turn; a record an nsqd refuses is tried on the
// next one. At the end of input to_nsq waits until every record has been
// acknowledged and exits 0. It exits 1 when a record could not be published
// anywhere, 2 on bad flags. On SIGINT or SIGTERM it stops reading, waits for
// the acknowledgements of what it has read and exits 0.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/toolflags"
)

func main() { toolflags.Main(run) }

const about = `Reads stdin and publishes each record (the bytes up to --delimiter, which is
not part of the message) to --topic. Empty records are skipped. With several
--nsqd-tcp-address, every nsqd gets every record, as NSQ's to_nsq does
(--mode=all); with --mode=round-robin records are spread over them instead
and a failed publish is retried on the next nsqd. --rate caps the records
published per second.`

// window is how many publishes may await their acknowledgement at once.
const window = 256

type options struct {
	topic     string
	nsqdAddrs toolflags.Strings
	delimiter string
	rate      int64
	mode      string
	cfg       *nsq.Config
}

func newTool() (*toolflags.Tool, *options) {
	t := toolflags.New("to_nsq", "to_nsq --topic=TOPIC --nsqd-tcp-address=ADDR [flags] < input", about)
	o := &options{cfg: nsq.NewConfig()}
	fs := t.Flags
	fs.StringVar(&o.topic, "topic", "", "NSQ `topic` to publish to")
	fs.Var(&o.nsqdAddrs, "nsqd-tcp-address", "nsqd TCP `address` to publish to (repeatable; see --mode)")
	fs.StringVar(&o.mode, "mode", "all", "with several nsqd: `all` publishes every record to each (NSQ's behaviour), round-robin spreads them")
	fs.StringVar(&o.delimiter, "delimiter", "\n", "the single `byte` that ends each record of stdin")
	fs.Int64Var(&o.rate, "rate", 0, "publish at most this many messages per second (0: no limit)")
	toolflags.AddConfigOpt(fs, "producer-opt", "producers", o.cfg)
	return t, o
}

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	tool, o := newTool()
	if code, done := tool.Parse(args, stdout, stderr); done {
		return code
	}
	switch {
	case o.topic == "":
		return tool.UsageError(stderr, "--topic required")
	case !nsq.IsValidTopicName(o.topic):
		return tool.UsageError(stderr, "--topic %q is not a valid topic name", o.topic)
	case len(o.delimiter) != 1:
		return tool.UsageError(stderr, "--delimiter must be a single byte")
	case len(o.nsqdAddrs) == 0:
		return tool.UsageError(stderr, "--nsqd-tcp-address required")
	case o.rate < 0:
		return tool.UsageError(stderr, "--rate must not be negative")
	case o.mode != "all" && o.mode != "round-robin":
		return tool.UsageError(stderr, "--mode must be all or round-robin, not %q", o.mode)
	}
	o.cfg.UserAgent = toolflags.UserAgent("to_nsq")

	log := toolflags.NewLogger(stderr, "", slog.LevelInfo)
	nsqLog, nsqLevel := toolflags.NSQLogger(log)
	var producers []*nsq.Producer
	defer func() {
		for _, p := range producers {
			p.Stop()
		}
	}()
	for _, addr := range o.nsqdAddrs {
		p, err := nsq.NewProducer(addr, o.cfg)
		if err != nil {
			return tool.UsageError(stderr, "%v", err)
		}
		p.SetLogger(nsqLog, nsqLevel)
		producers = append(producers, p)
	}

	pub := &publisher{topic: o.topic, producers: producers, all: o.mode == "all", done: make(chan *nsq.ProducerTransaction, window)}
	err := pub.run(ctx, stdin, o.delimiter[0], o.rate)
	if err != nil {
		return tool.Fail(stderr, err)
	}
	return toolflags.ExitOK
}

// publisher owns the publishing state; only run's goroutine touches it.
type publisher struct {
	topic     string
	producers []*nsq.Producer
	all       bool                          // every record to every producer
	done      chan *nsq.ProducerTransaction // go-nsq reports each publish here

	next        int // producer for the next record
	outstanding int // publishes awaiting their acknowledgement
	err         error
}

// attempt is what a publish carries through go-nsq to its acknowledgement.
type attempt struct {
	body  []byte
	first int  // producer of the first try
	tries int  // producers tried so far
	only  bool // this producer or fail (--mode=all)
}

// run publishes records read from r until the end of input, ctx's end or a
// record that every nsqd refused, then waits for the outstanding
// acknowledgements.
func (p *publisher) run(ctx context.Context, r io.Reader, delim byte, rate int64) error {
	records := make(chan []byte)
	readErr := make(chan error, 1)
	quit := make(chan struct{})
	defer close(quit)
	// The reader goroutine is stopped by quit, except while it is blocked
	// in a Read of stdin, which nothing can interrupt; it then ends with
	// the process.
	go readRecords(r, delim, records, readErr, quit)

	var (
		pace    *time.Timer // set while --rate holds the next record back
		paceC   <-chan time.Time
		nextAt  time.Time
		reading = true
	)
	if rate > 0 {
		nextAt = time.Now()
	}
	defer func() {
		if pace != nil {
			pace.Stop()
		}
	}()
	stopCtx := ctx.Done()
	for reading || p.outstanding > 0 {
		in := records
		if !reading || p.err != nil || p.outstanding >= window || paceC != nil {
			in = nil
		}
		select {
		case <-stopCtx:
			stopCtx, reading = nil, false
		case <-paceC:
			paceC = nil
		case body, ok := <-in:
			if !ok {
				reading = false
				if err := <-readErr; err != nil {
					p.fail(fmt.Errorf("read stdin: %w", err))
				}
				break
			}
			if p.all {
				for i := range p.producers {
					p.publish(&attempt{body: body, first: i, only: true})
				}
			} else {
				p.publish(&attempt{body: body, first: p.next})
				p.next = (p.next + 1) % len(p.producers)
			}
			if rate > 0 {
				now := time.Now()
				// Pace against a schedule, but never bank more than a
				// second of unused allowance.
				if floor := now.Add(-time.Second); nextAt.Before(floor) {
					nextAt = floor
				}
				nextAt = nextAt.Add(time.Second / time.Duration(rate))
				if d := nextAt.Sub(now); d > 0 {
					if pace == nil {
						pace = time.NewTimer(d)
					} else {
						pace.Reset(d)
					}
					paceC = pace.C
				}
			}
		case t := <-p.done:
			p.outstanding--
			a := t.Args[0].(*attempt)
			if t.Error != nil {
				p.retry(a, t.Error)
			}
		}
		if p.err != nil {
			reading = false
		}
	}
	return p.err
}

// publish sends a to its next producer; a producer that fails at once
// (cannot connect) is skipped for the one after.
func (p *publisher) publish(a *attempt) {
	limit := len(p.producers)
	if a.only {
		limit = 1
	}
	for a.tries < limit {
		i := (a.first + a.tries) % len(p.producers)
		a.tries++
		err := p.producers[i].PublishAsync(p.topic, a.body, p.done, a)
		if err == nil {
			p.outstanding++
			return
		}
		if a.tries == limit {
			p.fail(fmt.Errorf("publish to %s: %w", p.producers[i], err))
		}
	}
}

func (p *publisher) retry(a *attempt, err error) {
	if a.only || a.tries >= len(p.producers) {
		i := (a.first + a.tries - 1) % len(p.producers)
		p.fail(fmt.Errorf("publish to %s: %w", p.producers[i], err))
		return
	}
	p.publish(a)
}

func (p *publisher) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// readRecords sends each non-empty record of r, without its delimiter, on
// records; at the end of input it sends the read error (nil at EOF) on
// errc and closes records.
func readRecords(r io.Reader, delim byte, records chan<- []byte, errc chan<- error, quit <-chan struct{}) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		rec, err := br.ReadBytes(delim)
		if len(rec) > 0 && rec[len(rec)-1] == delim {
			rec = rec[:len(rec)-1]
		}
		if len(rec) > 0 {
			select {
			case records <- rec:
			case <-quit:
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			errc <- err
			close(records)
			return
		}
	}
}
