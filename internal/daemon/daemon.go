package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nsqx/nsqx/internal/cliconfig"
	"github.com/nsqx/nsqx/internal/logging"
	"github.com/nsqx/nsqx/internal/version"
)

// App describes one daemon command. C is its configuration, usually a
// pointer that its flags write into.
type App[C any] struct {
	// Name is the command's name ("nsqd"): the version line is
	// version.String(Name) and every error line starts with Name + ": ".
	Name string
	// Usage is what -h prints before the flags, ending in "Flags:\n".
	Usage string
	// UsageToStderr sends -h's output to stderr rather than stdout (nsqd's
	// has always gone there, as with Go's flag package).
	UsageToStderr bool
	// Layers are where options come from besides the command line. Serve
	// and Load add "version" to Ignore and set Environ.
	Layers cliconfig.Layers

	// Flags returns a new configuration holding the defaults and a flag set
	// bound to it. The set must have a string flag --config (the file to
	// read) and a bool flag --version.
	Flags func() (C, *flag.FlagSet)
	// Validate checks the configuration once every layer is applied; it
	// may also complete it (defaults that depend on other options).
	Validate func(C) error
	// Logging returns the options of the daemon's logger. It is called
	// once, after Validate and before New, and may prepare the
	// configuration for the logger (nsqd's run-time log level).
	Logging func(C) logging.Options
	// New starts the daemon with its logger (listening, as the daemons'
	// own New functions do); Serve then runs it until ctx ends.
	New func(cfg C, log *slog.Logger) (Server, error)
}

// Server is a daemon New has started: Run serves until ctx ends, then
// shuts down.
type Server interface {
	Run(ctx context.Context) error
}

// Main runs the daemon with the process's environment until SIGINT or
// SIGTERM, and returns the exit code.
func (a *App[C]) Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return a.Serve(ctx, args, os.Environ(), stdout, stderr)
}

// Serve loads the configuration from args, environ (os.Environ form; nil
// means an empty environment) and the --config file, runs the daemon until
// ctx ends, and returns the exit code: 0 after a clean shutdown, -h or
// --version, 1 on any error.
func (a *App[C]) Serve(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	cfg, fs, showVersion, unknown, err := a.parse(args, environ)
	switch {
	case errors.Is(err, flag.ErrHelp):
		w := stdout
		if a.UsageToStderr {
			w = stderr
		}
		fmt.Fprint(w, a.Usage)
		fs.SetOutput(w)
		fs.PrintDefaults()
		return 0
	case showVersion:
		// --version wins even over an otherwise invalid configuration.
		fmt.Fprintln(stdout, version.String(a.Name))
		return 0
	case err != nil:
		a.printError(stderr, err)
		return 1
	}
	log, err := logging.New(stderr, a.Logging(cfg))
	if err != nil {
		a.printError(stderr, err)
		return 1
	}
	if unknown != nil {
		log.Warn("config file options that name no flag are ignored, as NSQ ignores them; check them for typos",
			"file", unknown.file, "options", strings.Join(unknown.keys, ","))
	}
	srv, err := a.New(cfg, log)
	if err != nil {
		a.printError(stderr, err)
		return 1
	}
	if err := srv.Run(ctx); err != nil {
		a.printError(stderr, err)
		return 1
	}
	return 0
}

// Load returns the valid configuration that args and environ (nil means an
// empty environment) describe over the defaults and the --config file, as
// Serve would run it. It returns flag.ErrHelp for -h and ignores
// --version.
func (a *App[C]) Load(args, environ []string) (C, error) {
	cfg, _, _, _, err := a.parse(args, environ)
	if err != nil {
		var zero C
		return zero, err
	}
	return cfg, nil
}

// unknownKeys are the --config file's keys that name no flag.
type unknownKeys struct {
	file string
	keys []string
}

// parse is Load that also returns the flag set, for the usage text,
// whether --version was given, which it reports even when the
// configuration is invalid, and the config file's unknown keys, if any.
func (a *App[C]) parse(args, environ []string) (cfg C, fs *flag.FlagSet, showVersion bool, unknown *unknownKeys, err error) {
	cfg, fs = a.Flags()
	fs.SetOutput(io.Discard) // errors are printed once, by Serve

	l := a.Layers
	// The environment and the file cannot ask for the version: that would
	// stop the daemon from starting.
	l.Ignore = map[string]bool{"version": true}
	maps.Copy(l.Ignore, a.Layers.Ignore)
	l.Environ = environ
	if l.Environ == nil {
		l.Environ = []string{} // nil would mean os.Environ()
	}
	l.OnUnknown = func(file string, keys []string) { unknown = &unknownKeys{file, keys} }
	err = l.Apply(fs, args, "config")
	showVersion = fs.Lookup("version").Value.(flag.Getter).Get().(bool)
	if err != nil {
		return cfg, fs, showVersion, unknown, err
	}
	return cfg, fs, showVersion, unknown, a.Validate(cfg)
}

// printError writes err, one Name + ": " line per line of it.
func (a *App[C]) printError(w io.Writer, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(w, "%s: %s\n", a.Name, line)
	}
}
