// Command nsqlookupd runs an nsqx directory service, a drop-in replacement
// for NSQ's nsqlookupd.
//
// Options come from four layers; the first that sets an option wins: a flag
// on the command line, an NSQLOOKUPD_* environment variable, the TOML file
// named by --config (or NSQLOOKUPD_CONFIG), and the built-in default. Flag
// names, TOML keys (the flag name with '_' for '-') and defaults are NSQ's.
// nsqlookupd serves until SIGINT or SIGTERM and exits 0 after a clean
// shutdown, or 1 on any error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nsqx/nsqx/internal/cliconfig"
	"github.com/nsqx/nsqx/internal/logging"
	"github.com/nsqx/nsqx/internal/version"
	"github.com/nsqx/nsqx/nsqlookupd"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is main with its arguments and outputs passed in; it returns the exit
// code. SIGINT and SIGTERM end the server gracefully.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, args, os.Environ(), stdout, stderr)
}

// serve loads the configuration from args, environ (os.Environ form) and
// the config file, and runs the server until ctx ends.
func serve(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	opts, err := parse(args, environ)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout, opts.fs)
		return 0
	case opts != nil && opts.version:
		// --version wins even over an otherwise invalid configuration.
		fmt.Fprintln(stdout, version.String("nsqlookupd"))
		return 0
	case err != nil:
		printError(stderr, err)
		return 1
	}
	opts.cfg.Logger, err = logging.New(stderr, logging.Options{Level: opts.logLevel, Prefix: opts.logPrefix, Format: opts.logFormat})
	if err != nil {
		printError(stderr, err)
		return 1
	}

	srv, err := nsqlookupd.New(opts.cfg)
	if err != nil {
		printError(stderr, err)
		return 1
	}
	if err := srv.Run(ctx); err != nil {
		printError(stderr, err)
		return 1
	}
	return 0
}

// options is everything the command line sets: the server's Config plus
// what only main uses.
type options struct {
	cfg       *nsqlookupd.Config
	logLevel  slog.Level
	logPrefix string
	logFormat string
	version   bool
	fs        *flag.FlagSet
}

// parse layers args, environ and the --config file over the defaults and
// validates the result. It returns flag.ErrHelp for -h; opts is non-nil
// whenever the flags themselves parsed, so --version can be honoured.
func parse(args, environ []string) (*options, error) {
	opts := &options{cfg: nsqlookupd.DefaultConfig(), logLevel: slog.LevelInfo, logPrefix: "[nsqlookupd] ", logFormat: logging.FormatText}
	fs := newFlagSet(opts)
	opts.fs = fs
	fs.SetOutput(io.Discard) // errors are printed once, by the caller

	layers := cliconfig.Layers{
		EnvPrefix: "NSQLOOKUPD_",
		Ignore:    map[string]bool{"version": true},
		Environ:   environ,
	}
	if layers.Environ == nil {
		layers.Environ = []string{} // nil would mean os.Environ()
	}
	if err := layers.Apply(fs, args, "config"); err != nil {
		return opts, err
	}
	if err := opts.cfg.Validate(); err != nil {
		return opts, err
	}
	return opts, nil
}

// newFlagSet binds NSQ's nsqlookupd flags to opts, with opts' current
// values as the defaults.
func newFlagSet(opts *options) *flag.FlagSet {
	cfg := opts.cfg
	fs := flag.NewFlagSet("nsqlookupd", flag.ContinueOnError)
	fs.String("config", "", "path to a TOML `file` of options (keys are flag names with '_' for '-')")
	fs.Var(logging.LevelFlag{P: &opts.logLevel}, "log-level", "least severe `level` to log: debug, info, warn, error or fatal")
	fs.StringVar(&opts.logPrefix, "log-prefix", opts.logPrefix, "text put at the start of every log line (with --log-format=json, a \"prefix\" field)")
	fs.Var(logging.FormatFlag{P: &opts.logFormat}, "log-format", "log line `format`: text, or json for one JSON object per line")
	fs.Bool("verbose", false, "deprecated, has no effect (use --log-level)")
	fs.BoolVar(&opts.version, "version", false, "print the version and exit")

	fs.StringVar(&cfg.TCPAddress, "tcp-address", cfg.TCPAddress, "host:port to listen on for nsqd (protocol V1)")
	fs.StringVar(&cfg.HTTPAddress, "http-address", cfg.HTTPAddress, "host:port to listen on for HTTP clients")
	fs.StringVar(&cfg.BroadcastAddress, "broadcast-address", cfg.BroadcastAddress, "address of this lookupd sent to nsqd in the IDENTIFY reply; the hostname by default")
	fs.Var(cliconfig.Duration{V: &cfg.InactiveProducerTimeout}, "inactive-producer-timeout",
		"hide producers from /lookup and /nodes when they have not pinged for this `duration`")
	fs.Var(cliconfig.Duration{V: &cfg.TombstoneLifetime}, "tombstone-lifetime",
		"`duration` a producer of a topic stays hidden from /lookup after /topic/tombstone")
	return fs
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, "Usage: nsqlookupd [flags]\n\n"+
		"Each flag may also be given as an environment variable (NSQLOOKUPD_ and the\n"+
		"flag name upper-cased with '_' for '-', e.g. NSQLOOKUPD_TCP_ADDRESS) or in the\n"+
		"--config TOML file (the flag name with '_' for '-', e.g. tcp_address).\n"+
		"The command line beats the environment, which beats the file.\n\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// printError writes err with one "nsqlookupd: " line per line (Validate
// joins one error per bad option).
func printError(w io.Writer, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(w, "nsqlookupd: %s\n", line)
	}
}
