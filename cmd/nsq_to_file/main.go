// Command nsq_to_file writes the messages of NSQ topics to files, one
// message per line, like NSQ's nsq_to_file.
//
//	nsq_to_file --lookupd-http-address=127.0.0.1:4161 --topic=events --output-dir=/data/events
//	nsq_to_file --lookupd-http-address=127.0.0.1:4161 --topic-pattern='^app\.' --gzip --rotate-size=1000000000
//
// A message is finished (FIN) only after the file holding it has been
// fsynced, so an nsq_to_file that crashes loses nothing: what it had not
// synced is delivered again. Files are written in --work-dir and moved to
// --output-dir when they are rotated or at exit. SIGHUP closes (and moves)
// the current files; SIGINT and SIGTERM sync, finish, close, move and exit 0.
// Bad flags exit 2; a file that cannot be written exits 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/toolflags"
	"github.com/nsqx/nsqx/internal/version"
)

func main() { toolflags.Main(run) }

const about = `Writes each message of the topics, followed by a newline, to files named by
--filename-format, in which these are replaced:
  <TOPIC>     the topic
  <HOST>      --host-identifier, by default the short host name
  <PID>       the process id
  <DATETIME>  the time in --datetime-format (strftime: %Y %y %m %d %H %I %M %S
              %p %b %B %a %A %Z %z %%)
  <REV>       -000000, -000001, ...: bumped when a file of that name exists.
              Required with --gzip, --rotate-size, --rotate-interval or a
              --work-dir other than --output-dir; removed otherwise.
A file is rotated when its name changes (the date moved on), after
--rotate-interval, or once it holds more than --rotate-size bytes.

Topics are given with --topic, or discovered from nsqlookupd every
--topic-refresh with --topic-pattern (a regular expression).`

type options struct {
	topics         toolflags.Strings
	topicPattern   string
	topicRefresh   time.Duration
	channel        string
	nsqdAddrs      toolflags.Strings
	lookupAddrs    toolflags.Strings
	maxInFlight    int
	connectTimeout time.Duration
	requestTimeout time.Duration
	logLevel       slog.Level
	logPrefix      string
	outputDir      string
	workDir        string
	datetimeFormat string
	filenameFormat string
	hostIdentifier string
	gzipLevel      int
	gzip           bool
	skipEmpty      bool
	rotateSize     int64
	rotateInterval time.Duration
	syncInterval   time.Duration
	cfg            *nsq.Config
}

func newTool() (*toolflags.Tool, *options) {
	t := toolflags.New("nsq_to_file",
		"nsq_to_file (--topic=TOPIC | --topic-pattern=REGEXP) (--nsqd-tcp-address=ADDR | --lookupd-http-address=ADDR) [flags]", about)
	o := &options{cfg: nsq.NewConfig(), logLevel: slog.LevelInfo}
	fs := t.Flags
	fs.Var(&o.topics, "topic", "NSQ `topic` to write (repeatable)")
	fs.StringVar(&o.topicPattern, "topic-pattern", "", "write only topics matching this `regexp`; without --topic, discover topics from nsqlookupd")
	fs.DurationVar(&o.topicRefresh, "topic-refresh", time.Minute, "how often to ask nsqlookupd for new topics (with --topic-pattern)")
	fs.StringVar(&o.channel, "channel", "nsq_to_file", "NSQ `channel`")
	fs.Var(&o.nsqdAddrs, "nsqd-tcp-address", "nsqd TCP `address` to consume from (repeatable)")
	fs.Var(&o.lookupAddrs, "lookupd-http-address", "nsqlookupd HTTP `address` to discover nsqds and topics with (repeatable)")
	fs.IntVar(&o.maxInFlight, "max-in-flight", 200, "most messages per topic to have in flight, i.e. written but not yet synced")
	fs.DurationVar(&o.connectTimeout, "http-client-connect-timeout", 2*time.Second, "timeout for connecting to nsqlookupd")
	fs.DurationVar(&o.requestTimeout, "http-client-request-timeout", 5*time.Second, "timeout for a whole request to nsqlookupd")
	fs.Var(toolflags.Level{P: &o.logLevel}, "log-level", "least severe `level` to log: debug, info, warn, error or fatal")
	fs.StringVar(&o.logPrefix, "log-prefix", "[nsq_to_file] ", "text put at the start of every log line")
	fs.StringVar(&o.outputDir, "output-dir", "/tmp", "`directory` for finished files")
	fs.StringVar(&o.workDir, "work-dir", "", "`directory` for files being written (default --output-dir)")
	fs.StringVar(&o.datetimeFormat, "datetime-format", "%Y-%m-%d_%H", "strftime `format` of <DATETIME>")
	fs.StringVar(&o.filenameFormat, "filename-format", "<TOPIC>.<HOST><REV>.<DATETIME>.log", "file name `format` (see above)")
	fs.StringVar(&o.hostIdentifier, "host-identifier", "", "`value` of <HOST> in file names; <SHORT_HOST> and <HOSTNAME> in it are replaced")
	fs.IntVar(&o.gzipLevel, "gzip-level", 6, "gzip compression `level`, 1 (fastest) to 9 (smallest)")
	fs.BoolVar(&o.gzip, "gzip", false, "gzip the files (and add .gz to their names)")
	fs.BoolVar(&o.skipEmpty, "skip-empty-files", false, "create no file for a period without messages")
	fs.Int64Var(&o.rotateSize, "rotate-size", 0, "rotate a file once it holds more than this many `bytes` (uncompressed; 0: never)")
	fs.DurationVar(&o.rotateInterval, "rotate-interval", 0, "rotate a file after this long (0: never)")
	fs.DurationVar(&o.syncInterval, "sync-interval", 30*time.Second, "fsync the files and finish their messages at least this often")
	toolflags.AddConfigOpt(fs, "consumer-opt", "consumers", o.cfg)
	return t, o
}

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	tool, o := newTool()
	if code, done := tool.Parse(args, stdout, stderr); done {
		return code
	}
	pattern, err := validate(o)
	if err != nil {
		return tool.UsageError(stderr, "%v", err)
	}
	if o.workDir == "" {
		o.workDir = o.outputDir
	}
	hostname, err := os.Hostname()
	if err != nil {
		return tool.Fail(stderr, err)
	}
	format, err := filenameFormat(o, hostname, os.Getpid())
	if err != nil {
		return tool.UsageError(stderr, "%v", err)
	}
	o.cfg.MaxInFlight = o.maxInFlight
	o.cfg.UserAgent = toolflags.UserAgent("nsq_to_file")
	if err := o.cfg.Validate(); err != nil {
		return tool.UsageError(stderr, "%v", err)
	}

	log := toolflags.NewLogger(stderr, o.logPrefix, o.logLevel)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	d := &discoverer{
		o:       o,
		format:  format,
		pattern: pattern,
		log:     log,
		hup:     hup,
		loggers: map[string]*fileLogger{},
		client:  newHTTPClient(o.connectTimeout, o.requestTimeout),
	}
	if err := d.run(ctx); err != nil {
		return tool.Fail(stderr, err)
	}
	return toolflags.ExitOK
}

func validate(o *options) (*regexp.Regexp, error) {
	if err := toolflags.CheckSource(o.nsqdAddrs, o.lookupAddrs, "nsqd-tcp-address", "lookupd-http-address"); err != nil {
		return nil, err
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.channel == "" {
		bad("--channel is required")
	} else if !nsq.IsValidChannelName(o.channel) {
		bad("--channel %q is not a valid channel name", o.channel)
	}
	for _, t := range o.topics {
		if !nsq.IsValidTopicName(t) {
			bad("--topic %q is not a valid topic name", t)
		}
	}
	if len(o.topics) == 0 && o.topicPattern == "" {
		bad("--topic or --topic-pattern required")
	}
	if len(o.topics) == 0 && len(o.lookupAddrs) == 0 {
		bad("--lookupd-http-address must be specified when no --topic specified")
	}
	var pattern *regexp.Regexp
	if o.topicPattern != "" {
		var err error
		if pattern, err = regexp.Compile(o.topicPattern); err != nil {
			bad("--topic-pattern: %v", err)
		}
	}
	switch {
	case o.gzipLevel < 1 || o.gzipLevel > 9:
		bad("invalid --gzip-level value (%d), should be 1-9", o.gzipLevel)
	}
	if o.connectTimeout <= 0 {
		bad("--http-client-connect-timeout must be positive")
	}
	if o.requestTimeout <= 0 {
		bad("--http-client-request-timeout must be positive")
	}
	if o.topicRefresh <= 0 {
		bad("--topic-refresh must be positive")
	}
	if o.syncInterval <= 0 {
		bad("--sync-interval must be positive")
	}
	if o.maxInFlight < 1 {
		bad("--max-in-flight must be at least 1")
	}
	if o.rotateSize < 0 {
		bad("--rotate-size must not be negative")
	}
	if o.rotateInterval < 0 {
		bad("--rotate-interval must not be negative")
	}
	if o.outputDir == "" {
		bad("--output-dir must not be empty")
	}
	return pattern, errors.Join(errs...)
}

// filenameFormat replaces the per-process parts of --filename-format:
// everything but <DATETIME> and <REV>.
func filenameFormat(o *options, hostname string, pid int) (string, error) {
	short, _, _ := strings.Cut(hostname, ".")
	host := short
	if o.hostIdentifier != "" {
		host = strings.ReplaceAll(o.hostIdentifier, "<SHORT_HOST>", short)
		host = strings.ReplaceAll(host, "<HOSTNAME>", hostname)
	}
	f := o.filenameFormat
	if o.gzip || o.rotateSize > 0 || o.rotateInterval > 0 || o.workDir != o.outputDir {
		if !strings.Contains(f, "<REV>") {
			return "", errors.New("missing <REV> in --filename-format when gzip, rotation, or work dir enabled")
		}
	} else {
		f = strings.ReplaceAll(f, "<REV>", "")
	}
	f = strings.ReplaceAll(f, "<HOST>", host)
	f = strings.ReplaceAll(f, "<PID>", strconv.Itoa(pid))
	if o.gzip && !strings.HasSuffix(f, ".gz") {
		f += ".gz"
	}
	return f, nil
}

// discoverer starts a fileLogger per topic: the --topic list, or the
// topics nsqlookupd knows that match --topic-pattern, refreshed every
// --topic-refresh. It owns the loggers' goroutines and waits for them.
type discoverer struct {
	o       *options
	format  string
	pattern *regexp.Regexp
	log     *slog.Logger
	hup     <-chan os.Signal
	client  *http.Client

	loggers map[string]*fileLogger

	mu  sync.Mutex // guards err
	err error
}

func (d *discoverer) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()

	var refresh <-chan time.Time
	if len(d.o.topics) > 0 {
		for _, t := range d.o.topics {
			if err := d.start(ctx, cancel, &wg, t); err != nil {
				cancel()
				return err
			}
		}
	} else {
		ticker := time.NewTicker(d.o.topicRefresh)
		defer ticker.Stop()
		refresh = ticker.C
		d.discover(ctx, cancel, &wg)
	}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.err
		case <-refresh:
			d.discover(ctx, cancel, &wg)
		case <-d.hup:
			for _, l := range d.loggers {
				select {
				case l.hup <- struct{}{}:
				default:
				}
			}
		}
	}
}

// discover starts a logger for each new topic that nsqlookupd knows and
// the pattern matches. Failures are logged and retried at the next refresh.
func (d *discoverer) discover(ctx context.Context, cancel context.CancelFunc, wg *sync.WaitGroup) {
	topics, err := d.lookupTopics(ctx)
	if err != nil {
		d.log.Error("topic discovery failed", "err", err)
	}
	for _, t := range topics {
		if err := d.start(ctx, cancel, wg, t); err != nil {
			d.log.Error("cannot start topic", "topic", t, "err", err)
		}
	}
}

// start begins writing topic unless it is already being written or does
// not match the pattern.
func (d *discoverer) start(ctx context.Context, cancel context.CancelFunc, wg *sync.WaitGroup, topic string) error {
	if _, ok := d.loggers[topic]; ok {
		return nil
	}
	if d.pattern != nil && !d.pattern.MatchString(topic) {
		d.log.Warn("skipping topic: does not match --topic-pattern", "topic", topic, "pattern", d.pattern.String())
		return nil
	}
	c, err := nsq.NewConsumer(topic, d.o.channel, d.o.cfg)
	if err != nil {
		return err
	}
	nsqLog, nsqLevel := toolflags.NSQLogger(d.log)
	c.SetLogger(nsqLog, nsqLevel)
	l := newFileLogger(fileConfig{
		format:         strings.ReplaceAll(d.format, "<TOPIC>", topic),
		datetimeFormat: d.o.datetimeFormat,
		outputDir:      d.o.outputDir,
		workDir:        d.o.workDir,
		gzip:           d.o.gzip,
		gzipLevel:      d.o.gzipLevel,
		rotateSize:     d.o.rotateSize,
		rotateInterval: d.o.rotateInterval,
		syncInterval:   d.o.syncInterval,
		skipEmpty:      d.o.skipEmpty,
		maxInFlight:    d.o.maxInFlight,
	}, topic, d.o.channel, c, d.log)
	if err := toolflags.Connect(c, d.o.nsqdAddrs, d.o.lookupAddrs); err != nil {
		c.Stop()
		<-c.StopChan
		return fmt.Errorf("topic %s: %w", topic, err)
	}
	d.loggers[topic] = l
	wg.Go(func() {
		if err := l.run(ctx); err != nil {
			d.mu.Lock()
			if d.err == nil {
				d.err = fmt.Errorf("topic %s: %w", topic, err)
			}
			d.mu.Unlock()
			cancel() // one broken topic stops them all, cleanly
			l.consumer.Stop()
			<-l.consumer.StopChan
		}
	})
	return nil
}

// lookupTopics returns the union of the topics the lookupds know.
func (d *discoverer) lookupTopics(ctx context.Context) ([]string, error) {
	var topics []string
	seen := map[string]bool{}
	var errs []error
	for _, addr := range d.o.lookupAddrs {
		u := addr
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(u, "/")+"/topics", nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		req.Header.Set("User-Agent", "nsq_to_file/"+version.Compat)
		req.Header.Set("Accept", "application/vnd.nsq; version=1.0")
		resp, err := d.client.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var body struct {
			Topics []string `json:"topics"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", req.URL, resp.Status)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, t := range body.Topics {
			if !seen[t] {
				seen[t] = true
				topics = append(topics, t)
			}
		}
	}
	return topics, errors.Join(errs...)
}

func newHTTPClient(connect, request time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Transport: tr, Timeout: request}
}
