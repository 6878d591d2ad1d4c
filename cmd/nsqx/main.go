// Command nsqx runs a whole local NSQ cluster in one process for
// development: `nsqx dev` starts nsqlookupd, nsqd (registered with it) and
// nsqadmin on NSQ's default ports, with data under ./data. Ctrl-C stops
// everything cleanly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/nsqx/nsqx/internal/version"
	"github.com/nsqx/nsqx/nsqd"
	"github.com/nsqx/nsqx/nsqlookupd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: nsqx <command> [flags]

commands:
  dev       run nsqlookupd + nsqd + nsqadmin locally (data under ./data)
  version   print the version
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "dev":
		return dev(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version.String("nsqx"))
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "nsqx: unknown command %q\n%s", args[0], usage)
	return 2
}

// devConfig is what `nsqx dev` starts.
type devConfig struct {
	host     string
	dataDir  string
	tcpPort  int // nsqd TCP; HTTP is +1 (0: any free ports)
	lookPort int // nsqlookupd TCP; HTTP is +1 (0: any free ports)
	admin    int // nsqadmin HTTP (0: any free port)
	noAdmin  bool
	logLevel string
}

func dev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nsqx dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c devConfig
	fs.StringVar(&c.host, "host", "127.0.0.1", "address every daemon listens on")
	fs.StringVar(&c.dataDir, "data", "data", "directory for nsqd's data")
	fs.IntVar(&c.tcpPort, "nsqd-port", 4150, "nsqd TCP port (HTTP is the next port; 0 picks free ports)")
	fs.IntVar(&c.lookPort, "lookupd-port", 4160, "nsqlookupd TCP port (HTTP is the next port; 0 picks free ports)")
	fs.IntVar(&c.admin, "admin-port", 4171, "nsqadmin HTTP port (0 picks a free port)")
	fs.BoolVar(&c.noAdmin, "no-admin", false, "do not start nsqadmin")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		fmt.Fprintf(stderr, "nsqx dev: --log-level: %v\n", err)
		return 2
	}
	if err := runDev(ctx, c, level, stdout); err != nil {
		fmt.Fprintf(stderr, "nsqx dev: %v\n", err)
		return 1
	}
	return 0
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, fmt.Sprint(port)) }

// next is the port n after port, or 0 (any free port) when port is 0.
func next(port, n int) int {
	if port == 0 {
		return 0
	}
	return port + n
}

func logger(w io.Writer, level slog.Level, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})).With("daemon", name)
}

func runDev(ctx context.Context, c devConfig, level slog.Level, out io.Writer) error {
	dataDir, err := filepath.Abs(filepath.Join(c.dataDir, "nsqd"))
	if err != nil {
		return err
	}
	lcfg := nsqlookupd.DefaultConfig()
	lcfg.TCPAddress = hostPort(c.host, c.lookPort)
	lcfg.HTTPAddress = hostPort(c.host, next(c.lookPort, 1))
	lcfg.BroadcastAddress = c.host
	lcfg.Logger = logger(out, level, "nsqlookupd")
	lookupd, err := nsqlookupd.New(lcfg)
	if err != nil {
		return fmt.Errorf("nsqlookupd: %w", err)
	}

	ncfg := nsqd.DefaultConfig()
	ncfg.TCPAddress = hostPort(c.host, c.tcpPort)
	ncfg.HTTPAddress = hostPort(c.host, next(c.tcpPort, 1))
	ncfg.HTTPSAddress = hostPort(c.host, next(c.tcpPort, 2))
	ncfg.BroadcastAddress = c.host
	ncfg.DataPath = dataDir
	ncfg.LookupdTCPAddrs = []string{lookupd.TCPAddr().String()}
	ncfg.Logger = logger(out, level, "nsqd")
	broker, err := nsqd.New(ncfg)
	if err != nil {
		return fmt.Errorf("nsqd: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return lookupd.Run(gctx) })
	g.Go(func() error { return broker.Run(gctx) })
	admin, err := startAdmin(gctx, g, c, level, out, lookupd.HTTPAddr().String())
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "\nnsqx %s local cluster is up (NSQ %s compatible)\n", version.Release, version.Compat)
	fmt.Fprintf(out, "  nsqd        tcp %s   http http://%s   data %s\n", broker.TCPAddr(), broker.HTTPAddr(), dataDir)
	fmt.Fprintf(out, "  nsqlookupd  tcp %s   http http://%s\n", lookupd.TCPAddr(), lookupd.HTTPAddr())
	if admin != "" {
		fmt.Fprintf(out, "  nsqadmin    http://%s\n", admin)
	}
	fmt.Fprintf(out, "try:\n  curl -d 'hello' 'http://%s/pub?topic=test'\n  curl 'http://%s/stats'\n", broker.HTTPAddr(), broker.HTTPAddr())
	fmt.Fprintf(out, "Ctrl-C stops everything.\n\n")
	return g.Wait()
}
