// Command nsqadmin runs the nsqx web UI and JSON API over an NSQ cluster, a
// drop-in replacement for NSQ's nsqadmin.
//
// Options come from four layers; the first that sets an option wins: a flag
// on the command line, an NSQADMIN_* environment variable, the TOML file
// named by --config (or NSQADMIN_CONFIG), and the built-in default. Flag
// names, TOML keys and defaults are NSQ's; the TOML keys of the repeatable
// flags are nsqlookupd_http_addresses, nsqd_http_addresses and admin_users.
// nsqadmin serves until SIGINT or SIGTERM and exits 0 after a clean
// shutdown, or 1 on any error.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/nsqx/nsqx/internal/cliconfig"
	"github.com/nsqx/nsqx/internal/daemon"
	"github.com/nsqx/nsqx/internal/logging"
	"github.com/nsqx/nsqx/nsqadmin"
)

// app is nsqadmin's command line; internal/daemon does the rest of main.
var app = &daemon.App[*options]{
	Name: "nsqadmin",
	Usage: "Usage: nsqadmin [flags]\n\n" +
		"Each flag may also be given as an environment variable (NSQADMIN_ and the\n" +
		"flag name upper-cased with '_' for '-', e.g. NSQADMIN_HTTP_ADDRESS; repeatable\n" +
		"flags take a comma-separated list) or in the --config TOML file (the flag name\n" +
		"with '_' for '-', except nsqlookupd_http_addresses, nsqd_http_addresses and\n" +
		"admin_users). The command line beats the environment, which beats the file.\n\nFlags:\n",
	Layers: cliconfig.Layers{
		EnvPrefix: "NSQADMIN_",
		Aliases: map[string]string{
			"lookupd-http-address": "nsqlookupd_http_addresses",
			"nsqd-http-address":    "nsqd_http_addresses",
			"admin-user":           "admin_users",
		},
		Repeatable: map[string]bool{
			"lookupd-http-address": true,
			"nsqd-http-address":    true,
			"admin-user":           true,
		},
	},
	Flags: func() (*options, *flag.FlagSet) {
		opts := &options{cfg: nsqadmin.DefaultConfig(), logPrefix: "[nsqadmin] ", logFormat: logging.FormatText}
		opts.cfg.LogLevel.Set(slog.LevelInfo)
		return opts, newFlagSet(opts)
	},
	Validate: func(opts *options) error { return opts.cfg.Validate() },
	Logging: func(opts *options) logging.Options {
		// cfg.LogLevel is a LevelVar so that PUT /config/log_level takes effect.
		return logging.Options{Level: opts.cfg.LogLevel, Prefix: opts.logPrefix, Format: opts.logFormat}
	},
	New: func(opts *options, log *slog.Logger) (daemon.Server, error) {
		opts.cfg.Logger = log
		return nsqadmin.New(opts.cfg)
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
	cfg       *nsqadmin.Config
	logPrefix string
	logFormat string
	version   bool
}

// newFlagSet binds NSQ's nsqadmin flags to opts, with opts' current values
// as the defaults.
func newFlagSet(opts *options) *flag.FlagSet {
	cfg := opts.cfg
	fs := flag.NewFlagSet("nsqadmin", flag.ContinueOnError)
	fs.String("config", "", "path to a TOML `file` of options (keys are flag names with '_' for '-')")
	fs.Var(levelFlag{cfg.LogLevel}, "log-level", "least severe `level` to log: debug, info, warn, error or fatal")
	fs.StringVar(&opts.logPrefix, "log-prefix", opts.logPrefix, "text put at the start of every log line")
	fs.Var(logging.FormatFlag{P: &opts.logFormat}, "log-format", "log line `format`: text, or json for one JSON object per line")
	fs.Bool("verbose", false, "deprecated, has no effect (use --log-level)")
	fs.BoolVar(&opts.version, "version", false, "print the version and exit")

	fs.StringVar(&cfg.HTTPAddress, "http-address", cfg.HTTPAddress, "host:port to listen on for HTTP clients")
	fs.StringVar(&cfg.BasePath, "base-path", cfg.BasePath, "URL `path` every page and API route is served under")
	fs.StringVar(&cfg.DevStaticDir, "dev-static-dir", cfg.DevStaticDir, "serve /static/ from this `directory` (development use only)")

	fs.Var(cliconfig.StringList{V: &cfg.LookupdHTTPAddresses}, "lookupd-http-address",
		"nsqlookupd HTTP `address` (may be given multiple times)")
	fs.Var(cliconfig.StringList{V: &cfg.NSQDHTTPAddresses}, "nsqd-http-address",
		"nsqd HTTP `address` (may be given multiple times)")

	fs.StringVar(&cfg.GraphiteURL, "graphite-url", cfg.GraphiteURL, "graphite HTTP `address`")
	fs.BoolVar(&cfg.ProxyGraphite, "proxy-graphite", cfg.ProxyGraphite, "proxy HTTP requests to graphite at /render")
	fs.StringVar(&cfg.StatsdCounterFormat, "statsd-counter-format", cfg.StatsdCounterFormat,
		"the counter stats key formatting applied by the implementation of statsd; empty for none")
	fs.StringVar(&cfg.StatsdGaugeFormat, "statsd-gauge-format", cfg.StatsdGaugeFormat,
		"the gauge stats key formatting applied by the implementation of statsd; empty for none")
	fs.StringVar(&cfg.StatsdPrefix, "statsd-prefix", cfg.StatsdPrefix,
		"prefix used for keys sent to statsd (%s for host replacement, must match nsqd)")
	fs.Var(cliconfig.Duration{V: &cfg.StatsdInterval}, "statsd-interval",
		"`duration` between nsqd's pushes to statsd (must match nsqd)")

	fs.StringVar(&cfg.NotificationHTTPEndpoint, "notification-http-endpoint", cfg.NotificationHTTPEndpoint,
		"HTTP `URL` to which a JSON notification of each admin action is POSTed")

	fs.Var(cliconfig.Duration{V: &cfg.HTTPClientConnectTimeout}, "http-client-connect-timeout",
		"`timeout` for connecting to nsqd and nsqlookupd")
	fs.Var(cliconfig.Duration{V: &cfg.HTTPClientRequestTimeout}, "http-client-request-timeout",
		"`timeout` for a whole request to nsqd and nsqlookupd")
	fs.StringVar(&cfg.HTTPClientAuthSecret, "http-client-auth-secret", cfg.HTTPClientAuthSecret,
		"`secret` sent as a bearer token to nsqds whose HTTP API requires auth (nsqx)")
	fs.BoolVar(&cfg.HTTPClientTLSInsecureSkipVerify, "http-client-tls-insecure-skip-verify", cfg.HTTPClientTLSInsecureSkipVerify,
		"do not verify the certificates of nodes served over HTTPS")
	fs.StringVar(&cfg.HTTPClientTLSRootCAFile, "http-client-tls-root-ca-file", cfg.HTTPClientTLSRootCAFile,
		"`path` to a PEM file of CA certificates for HTTPS requests")
	fs.StringVar(&cfg.HTTPClientTLSCert, "http-client-tls-cert", cfg.HTTPClientTLSCert,
		"`path` to the client certificate for HTTPS requests")
	fs.StringVar(&cfg.HTTPClientTLSKey, "http-client-tls-key", cfg.HTTPClientTLSKey,
		"`path` to the client certificate's key for HTTPS requests")

	fs.StringVar(&cfg.AllowConfigFromCIDR, "allow-config-from-cidr", cfg.AllowConfigFromCIDR,
		"`CIDR` from which requests to /config are allowed")
	fs.StringVar(&cfg.ACLHTTPHeader, "acl-http-header", cfg.ACLHTTPHeader,
		"HTTP `header` naming the authenticated user (set by a trusted proxy)")
	fs.Var(cliconfig.StringList{V: &cfg.AdminUsers}, "admin-user",
		"admin `user` (may be given multiple times); when set, only these users may perform admin actions")
	return fs
}

// levelFlag is --log-level, taking NSQ's level names in any case.
type levelFlag struct{ v *slog.LevelVar }

func (f levelFlag) String() string {
	if f.v == nil {
		return "" // the zero Value: lets PrintDefaults show the default
	}
	switch l := f.v.Level(); l {
	case nsqadmin.LevelFatal:
		return "fatal"
	default:
		return strings.ToLower(l.String())
	}
}

func (f levelFlag) Set(s string) error {
	l, ok := nsqadmin.ParseLevel(s)
	if !ok {
		return fmt.Errorf("unknown level %q: want debug, info, warn, error or fatal", s)
	}
	f.v.Set(l)
	return nil
}
