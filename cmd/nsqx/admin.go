package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/nsqx/nsqx/nsqadmin"
)

// startAdmin starts nsqadmin over the dev cluster's lookupd, unless
// --no-admin. It returns the address it listens on.
func startAdmin(ctx context.Context, g *errgroup.Group, c devConfig, level slog.Level, out io.Writer, lookupdHTTP string) (string, error) {
	if c.noAdmin {
		return "", nil
	}
	cfg := nsqadmin.DefaultConfig()
	cfg.HTTPAddress = hostPort(c.host, c.admin)
	cfg.LookupdHTTPAddresses = []string{lookupdHTTP}
	cfg.Logger = logger(out, level, "nsqadmin")
	admin, err := nsqadmin.New(cfg)
	if err != nil {
		return "", fmt.Errorf("nsqadmin: %w", err)
	}
	g.Go(func() error { return admin.Run(ctx) })
	return admin.HTTPAddr().String(), nil
}
