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
	"flag"
	"io"
	"log/slog"
	"os"

	"github.com/nsqx/nsqx/internal/cliconfig"
	"github.com/nsqx/nsqx/internal/daemon"
	"github.com/nsqx/nsqx/internal/logging"
	"github.com/nsqx/nsqx/nsqlookupd"
)

// app is nsqlookupd's command line; internal/daemon does the rest of main.
var app = &daemon.App[*options]{
	Name: "nsqlookupd",
	Usage: "Usage: nsqlookupd [flags]\n\n" +
		"Each flag may also be given as an environment variable (NSQLOOKUPD_ and the\n" +
		"flag name upper-cased with '_' for '-', e.g. NSQLOOKUPD_TCP_ADDRESS) or in the\n" +
		"--config TOML file (the flag name with '_' for '-', e.g. tcp_address).\n" +
		"The command line beats the environment, which beats the file.\n\nFlags:\n",
	Layers: cliconfig.Layers{EnvPrefix: "NSQLOOKUPD_"},
	Flags: func() (*options, *flag.FlagSet) {
		opts := &options{cfg: nsqlookupd.DefaultConfig(), logLevel: slog.LevelInfo, logPrefix: "[nsqlookupd] ", logFormat: logging.FormatText}
		return opts, newFlagSet(opts)
	},
	Validate: func(opts *options) error { return opts.cfg.Validate() },
	Logging: func(opts *options) logging.Options {
		return logging.Options{Level: opts.logLevel, Prefix: opts.logPrefix, Format: opts.logFormat}
	},
	New: func(opts *options, log *slog.Logger) (daemon.Server, error) {
		opts.cfg.Logger = log
		return nsqlookupd.New(opts.cfg)
	},
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run, serve and parse are app's Main, Serve and Load, under the names
// the tests use.
func run(args []string, stdout, stderr io.Writer) int { return app.Main(args, stdout, stderr) }

func serve(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	return app.Serve(ctx, args, environ, stdout, stderr)
}

func parse(args, environ []string) (*options, error) { return app.Load(args, environ) }

// options is everything the command line sets: the server's Config plus
// what only main uses.
type options struct {
	cfg       *nsqlookupd.Config
	logLevel  slog.Level
	logPrefix string
	logFormat string
	version   bool
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
