// Command nsqd runs an nsqx broker, a drop-in replacement for NSQ's nsqd.
//
// Options come from four layers, the first that sets an option wins: a flag
// on the command line, an NSQD_* environment variable, the TOML file named
// by --config (or NSQD_CONFIG), and the built-in default. Flag names, TOML
// keys and defaults are NSQ's (see flags.go); nsqd.Config.Validate checks
// the result. nsqd then serves until SIGINT or SIGTERM and exits 0 after a
// clean shutdown, or 1 on any error.
//
// "nsqd check --data-path DIR" verifies a data path offline instead (see
// check.go).
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

	"github.com/nsqx/nsqx/internal/logging"
	"github.com/nsqx/nsqx/internal/version"
	"github.com/nsqx/nsqx/nsqd"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is nsqd's main with its outputs passed in; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check" {
		return checkMain(args[1:], stdout, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, args, os.Environ(), stdout, stderr)
}

// serve loads the configuration and runs the server until ctx ends.
func serve(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	cfg, showVersion, err := parse(args, environ, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case showVersion:
		fmt.Fprintln(stdout, version.String("nsqd"))
		return 0
	case err != nil:
		printError(stderr, err)
		return 1
	}
	// The level is a LevelVar so that PUT /config/log_level takes effect.
	cfg.LogLevelVar = new(slog.LevelVar)
	cfg.LogLevelVar.Set(cfg.LogLevel)
	cfg.Logger, err = logging.New(stderr, logging.Options{Level: cfg.LogLevelVar, Prefix: cfg.LogPrefix, Format: cfg.LogFormat})
	if err != nil {
		printError(stderr, err)
		return 1
	}

	srv, err := nsqd.New(cfg)
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

// printError writes err, one "nsqd: " line per line of it (Validate joins
// one error per invalid option).
func printError(w io.Writer, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(w, "nsqd: %s\n", line)
	}
}

// loadConfig builds the Config that args and environ (os.Environ form; nil
// means an empty environment) describe, layered over DefaultConfig and the
// --config file, and validates it. Config.Logger is left nil.
func loadConfig(args, environ []string) (*nsqd.Config, error) {
	cfg, _, err := parse(args, environ, io.Discard)
	return cfg, err
}

// parse is loadConfig that also reports --version and writes the usage text
// to usage on -h or --help (returning flag.ErrHelp). When --version is
// given it is reported even if the rest of the configuration is invalid.
func parse(args, environ []string, usage io.Writer) (cfg *nsqd.Config, showVersion bool, err error) {
	cfg = nsqd.DefaultConfig()
	fs := newFlagSet(cfg)
	// Parse errors come back from Apply and are printed once by the caller,
	// not also by the flag package.
	fs.SetOutput(io.Discard)

	l := layers
	l.Environ = environ
	if l.Environ == nil {
		l.Environ = []string{} // cliconfig reads os.Environ for nil
	}
	err = l.Apply(fs, args, "config")
	showVersion = fs.Lookup("version").Value.(flag.Getter).Get().(bool)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(usage, fs)
		return nil, false, err
	}
	if err != nil {
		return nil, showVersion, err
	}

	// As in NSQ, asking for client certificates implies TLS; an explicit
	// tcp-https is kept.
	if cfg.TLSClientAuthPolicy != "" && cfg.TLSRequired == nsqd.TLSNotRequired {
		cfg.TLSRequired = nsqd.TLSRequired
	}
	if err := cfg.Validate(); err != nil {
		return nil, showVersion, err
	}
	return cfg, showVersion, nil
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: nsqd [flags]\n       nsqd check --data-path DIR   (verify a data path offline)\n\n"+
		"Every flag can also be set by an environment variable (NSQD_ and the flag\n"+
		"name in upper case with '_' for '-', e.g. NSQD_MEM_QUEUE_SIZE) or by the\n"+
		"--config TOML file (the flag name with '_' for '-', e.g. mem_queue_size).\n"+
		"A flag beats the environment, which beats the file.\n\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
