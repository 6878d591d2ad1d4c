package daemon

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"testing"

	"github.com/nsqx/nsqx/internal/cliconfig"
	"github.com/nsqx/nsqx/internal/logging"
	"github.com/nsqx/nsqx/internal/version"
)

// config is a stand-in daemon's configuration; *ran is set to name when
// the daemon runs.
type config struct {
	name    string
	format  string
	version bool
	ran     *string
}

func testApp(ran *string) *App[*config] {
	return &App[*config]{
		Name:   "testd",
		Usage:  "Usage: testd [flags]\n\nFlags:\n",
		Layers: cliconfig.Layers{EnvPrefix: "TESTD_"},
		Flags: func() (*config, *flag.FlagSet) {
			cfg := &config{name: "default", format: logging.FormatText, ran: ran}
			fs := flag.NewFlagSet("testd", flag.ContinueOnError)
			fs.String("config", "", "config `file`")
			fs.StringVar(&cfg.name, "name", cfg.name, "a name")
			fs.StringVar(&cfg.format, "log-format", cfg.format, "log format")
			fs.BoolVar(&cfg.version, "version", false, "print the version and exit")
			return cfg, fs
		},
		Validate: func(cfg *config) error {
			if cfg.name == "" || cfg.name == "bad" {
				return errors.Join(errors.New("--name: must not be empty or bad"), errors.New("second problem"))
			}
			return nil
		},
		Logging: func(cfg *config) logging.Options {
			return logging.Options{Prefix: "[testd] ", Format: cfg.format}
		},
		New: func(cfg *config, log *slog.Logger) (Server, error) {
			log.Info("starting")
			if cfg.name == "fail-new" {
				return nil, errors.New("listen failed\nsecond line")
			}
			return runFunc(func(ctx context.Context) error {
				*cfg.ran = cfg.name
				if cfg.name == "fail-run" {
					return errors.New("run failed")
				}
				return nil
			}), nil
		},
	}
}

// runFunc is a Server that runs the function.
type runFunc func(ctx context.Context) error

func (f runFunc) Run(ctx context.Context) error { return f(ctx) }

func TestServe(t *testing.T) {
	testdVersion := version.String("testd") + "\n"
	tests := []struct {
		name          string
		args, environ []string
		usageToStderr bool
		code          int
		stdout        string // exact
		stderr        string // exact, or a prefix when it ends in "..."
		ran           string // the name Run saw; "" if it did not run
	}{
		{"runs", []string{"--name=x"}, nil, false, 0, "", "[testd] time=...", "x"},
		{"help", []string{"-h"}, nil, false, 0, "Usage: testd [flags]\n\nFlags:\n  -config file\n    \tconfig ...", "", ""},
		{"help to stderr", []string{"--help"}, nil, true, 0, "", "Usage: testd [flags]\n\nFlags:\n  -config file\n...", ""},
		{"version", []string{"--version"}, nil, false, 0, testdVersion, "", ""},
		{"version over invalid", []string{"--version", "--name=bad"}, nil, false, 0, testdVersion, "", ""},
		{"version after a bad flag", []string{"--version", "--nope"}, nil, false, 0, testdVersion, "", ""},
		{"version not from env", []string{"--name=x"}, []string{"TESTD_VERSION=true"}, false, 0, "", "[testd] ...", "x"},
		{"env", nil, []string{"TESTD_NAME=env"}, false, 0, "", "[testd] ...", "env"},
		{"flag over env", []string{"--name=flag"}, []string{"TESTD_NAME=env"}, false, 0, "", "[testd] ...", "flag"},
		{"bad flag", []string{"--nope"}, nil, false, 1, "", "testd: flag provided but not defined: -nope\n", ""},
		{"argument", []string{"extra"}, nil, false, 1, "", "testd: unexpected argument \"extra\"\n", ""},
		{"invalid", []string{"--name=bad"}, nil, false, 1, "", "testd: --name: must not be empty or bad\ntestd: second problem\n", ""},
		{"bad logger", []string{"--log-format=xml"}, nil, false, 1, "", "testd: unknown log format \"xml\" (want text or json)\n", ""},
		{"new fails", []string{"--name=fail-new"}, nil, false, 1, "", "[testd] ...testd: listen failed\ntestd: second line\n", ""},
		{"run fails", []string{"--name=fail-run"}, nil, false, 1, "", "[testd] ...testd: run failed\n", "fail-run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ran string
			app := testApp(&ran)
			app.UsageToStderr = tt.usageToStderr
			var stdout, stderr bytes.Buffer
			code := app.Serve(context.Background(), tt.args, tt.environ, &stdout, &stderr)
			if code != tt.code || !matches(stdout.String(), tt.stdout) || !matches(stderr.String(), tt.stderr) || ran != tt.ran {
				t.Errorf("Serve(%q, %q) = %d, stdout %q, stderr %q, ran %q; want %d, %q, %q, %q",
					tt.args, tt.environ, code, stdout.String(), stderr.String(), ran, tt.code, tt.stdout, tt.stderr, tt.ran)
			}
		})
	}
}

// matches reports whether got is want, or, when want has "...", whether
// got holds the pieces between them in order, starting with the first.
func matches(got, want string) bool {
	pieces := strings.Split(want, "...")
	if len(pieces) == 1 {
		return got == want
	}
	if !strings.HasPrefix(got, pieces[0]) {
		return false
	}
	got = got[len(pieces[0]):]
	for _, p := range pieces[1:] {
		i := strings.Index(got, p)
		if i < 0 {
			return false
		}
		got = got[i+len(p):]
	}
	return strings.HasSuffix(want, "...") || got == ""
}

// TestLoadEnviron checks that a nil environ is an empty environment, not
// the process's, and that Load validates.
func TestLoadEnviron(t *testing.T) {
	t.Setenv("TESTD_NAME", "from-process")
	var ran string
	app := testApp(&ran)
	cfg, err := app.Load(nil, nil)
	if err != nil || cfg.name != "default" {
		t.Errorf("Load(nil, nil) = %+v, %v; want name %q", cfg, err, "default")
	}
	if cfg, err := app.Load([]string{"--name="}, nil); err == nil || cfg != nil {
		t.Errorf("Load(--name=) = %+v, %v; want nil and an error", cfg, err)
	}
	if _, err := app.Load([]string{"-h"}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("Load(-h) error = %v, want flag.ErrHelp", err)
	}
	if ran != "" {
		t.Errorf("Load ran the daemon (%q)", ran)
	}
}
