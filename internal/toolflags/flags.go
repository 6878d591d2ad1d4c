package toolflags

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/version"
)

// Exit codes shared by the tools.
const (
	ExitOK    = 0 // done, or stopped by SIGINT/SIGTERM after a clean shutdown
	ExitError = 1 // a runtime failure
	ExitUsage = 2 // bad or missing flags
)

// Main runs a tool's run function with a context that ends on SIGINT or
// SIGTERM and exits with its code. It is all a tool's main does. The first
// signal asks for a clean shutdown; a second one kills the process the
// usual way, for when the shutdown hangs.
func Main(run func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }() // ends with the first signal or the process
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Tool is one command's flag set plus what its help text says.
type Tool struct {
	Name     string // the binary, e.g. "nsq_tail"
	Synopsis string // usage line(s) after "Usage: "
	About    string // a paragraph or two shown by -h, before the flags
	Flags    *flag.FlagSet

	version bool
}

// New returns a Tool whose flag set already has --version.
func New(name, synopsis, about string) *Tool {
	t := &Tool{Name: name, Synopsis: synopsis, About: about}
	t.Flags = flag.NewFlagSet(name, flag.ContinueOnError)
	t.Flags.SetOutput(io.Discard) // Parse prints errors and usage itself
	t.Flags.BoolVar(&t.version, "version", false, "print the version and exit")
	return t
}

// Parse parses args. When the tool should stop right away it returns the
// exit code and done=true: after -h (usage on stdout, 0), --version (0) or
// a flag error (message on stderr, 2). Positional arguments are an error:
// every tool takes flags only.
func (t *Tool) Parse(args []string, stdout, stderr io.Writer) (code int, done bool) {
	err := t.Flags.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		t.PrintUsage(stdout)
		return ExitOK, true
	case err != nil:
		return t.UsageError(stderr, "%v", err), true
	case t.version:
		fmt.Fprintln(stdout, version.String(t.Name))
		return ExitOK, true
	case t.Flags.NArg() > 0:
		return t.UsageError(stderr, "unexpected argument %q (all options are flags)", t.Flags.Arg(0)), true
	}
	return ExitOK, false
}

// PrintUsage writes the -h text to w.
func (t *Tool) PrintUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n", t.Synopsis)
	if t.About != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(t.About))
	}
	fmt.Fprintln(w, "Flags:")
	t.Flags.SetOutput(w)
	t.Flags.PrintDefaults()
	t.Flags.SetOutput(io.Discard)
}

// UsageError reports a bad or missing flag on stderr and returns ExitUsage.
func (t *Tool) UsageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "%s: %s\nRun '%s -h' for usage.\n", t.Name, fmt.Sprintf(format, args...), t.Name)
	return ExitUsage
}

// Fail reports a runtime error on stderr and returns ExitError.
func (t *Tool) Fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", t.Name, err)
	return ExitError
}

// Strings is a repeatable flag: every occurrence appends its value.
type Strings []string

func (s *Strings) String() string {
	if s == nil {
		return ""
	}
	return strings.Join(*s, ",")
}

func (s *Strings) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// ConfigOpt is --consumer-opt or --producer-opt: "key,value" is applied with
// Config.Set(key, value), and a bare "key" sets a boolean option to true,
// the way NSQ's tools read these flags. The error names the option.
type ConfigOpt struct{ Config *nsq.Config }

func (c ConfigOpt) String() string { return "" }

func (c ConfigOpt) Set(opt string) error {
	key, value, hasValue := strings.Cut(opt, ",")
	var err error
	if hasValue {
		err = c.Config.Set(key, value)
	} else {
		err = c.Config.Set(key, true)
	}
	if err != nil {
		return fmt.Errorf("option %q: %w", key, err)
	}
	return nil
}

// AddConfigOpt binds a --consumer-opt or --producer-opt flag to cfg.
func AddConfigOpt(fs *flag.FlagSet, name, role string, cfg *nsq.Config) {
	fs.Var(ConfigOpt{cfg}, name, fmt.Sprintf("`key,value` go-nsq Config option for the %s, e.g. tls_v1,true or "+
		"auth_secret,S (repeatable; see https://pkg.go.dev/github.com/nsqio/go-nsq#Config)", role))
}

// UserAgent is the user agent the tools send in IDENTIFY, as NSQ's do.
func UserAgent(app string) string {
	return fmt.Sprintf("%s/%s go-nsq/%s", app, version.Compat, nsq.VERSION)
}

// CheckSource checks that exactly one of the two address lists is set:
// the nsqd addresses to consume from or the lookupd addresses to discover
// them. The flag names go into the error.
func CheckSource(nsqdAddrs, lookupdAddrs []string, nsqdFlag, lookupdFlag string) error {
	switch {
	case len(nsqdAddrs) == 0 && len(lookupdAddrs) == 0:
		return fmt.Errorf("--%s or --%s required", nsqdFlag, lookupdFlag)
	case len(nsqdAddrs) > 0 && len(lookupdAddrs) > 0:
		return fmt.Errorf("use --%s or --%s, not both", nsqdFlag, lookupdFlag)
	}
	return nil
}

// Connect connects c to the given nsqds or, through the given lookupds, to
// every nsqd that has c's topic.
func Connect(c *nsq.Consumer, nsqdAddrs, lookupdAddrs []string) error {
	if len(nsqdAddrs) > 0 {
		if err := c.ConnectToNSQDs(nsqdAddrs); err != nil {
			return fmt.Errorf("connect to nsqd: %w", err)
		}
	}
	if len(lookupdAddrs) > 0 {
		if err := c.ConnectToNSQLookupds(lookupdAddrs); err != nil {
			return fmt.Errorf("connect to nsqlookupd: %w", err)
		}
	}
	return nil
}

// StopConsumers stops consumers and waits until each has answered the
// messages it took and closed its connections. It first sets every
// consumer's RDY to 0, so that no nsqd starts sending another message while
// the CLS handshake is under way.
func StopConsumers(consumers ...*nsq.Consumer) {
	for _, c := range consumers {
		c.ChangeMaxInFlight(0)
	}
	for _, c := range consumers {
		c.Stop()
	}
	for _, c := range consumers {
		<-c.StopChan
	}
}
