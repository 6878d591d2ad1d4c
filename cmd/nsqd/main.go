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
	"flag"
	"io"
	"log/slog"
	"os"

	"github.com/nsqx/nsqx/internal/daemon"
	"github.com/nsqx/nsqx/internal/logging"
	"github.com/nsqx/nsqx/nsqd"
)

// app is nsqd's command line; internal/daemon does the rest of main.
var app = &daemon.App[*nsqd.Config]{
	Name: "nsqd",
	Usage: "Usage: nsqd [flags]\n       nsqd check --data-path DIR   (verify a data path offline)\n\n" +
		"Every flag can also be set by an environment variable (NSQD_ and the flag\n" +
		"name in upper case with '_' for '-', e.g. NSQD_MEM_QUEUE_SIZE) or by the\n" +
		"--config TOML file (the flag name with '_' for '-', e.g. mem_queue_size).\n" +
		"A flag beats the environment, which beats the file.\n\nFlags:\n",
	UsageToStderr: true,
	Layers:        layers,
	Flags: func() (*nsqd.Config, *flag.FlagSet) {
		cfg := nsqd.DefaultConfig()
		return cfg, newFlagSet(cfg)
	},
	Validate: func(cfg *nsqd.Config) error {
		// As in NSQ, asking for client certificates implies TLS; an explicit
		// tcp-https is kept.
		if cfg.TLSClientAuthPolicy != "" && cfg.TLSRequired == nsqd.TLSNotRequired {
			cfg.TLSRequired = nsqd.TLSRequired
		}
		return cfg.Validate()
	},
	Logging: func(cfg *nsqd.Config) logging.Options {
		// The level is a LevelVar so that PUT /config/log_level takes effect.
		cfg.LogLevelVar = new(slog.LevelVar)
		cfg.LogLevelVar.Set(cfg.LogLevel)
		return logging.Options{Level: cfg.LogLevelVar, Prefix: cfg.LogPrefix, Format: cfg.LogFormat}
	},
	New: func(cfg *nsqd.Config, log *slog.Logger) (daemon.Server, error) {
		cfg.Logger = log
		return nsqd.New(cfg)
	},
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is nsqd's main with its outputs passed in; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check" {
		return checkMain(args[1:], stdout, stderr)
	}
	return app.Main(args, stdout, stderr)
}

// serve loads the configuration and runs the server until ctx ends.
func serve(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	return app.Serve(ctx, args, environ, stdout, stderr)
}

// loadConfig builds the Config that args and environ (os.Environ form; nil
// means an empty environment) describe, layered over DefaultConfig and the
// --config file, and validates it. Config.Logger is left nil.
func loadConfig(args, environ []string) (*nsqd.Config, error) { return app.Load(args, environ) }
