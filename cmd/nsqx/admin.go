package main

import (
	"context"
	"io"
	"log/slog"

	"golang.org/x/sync/errgroup"
)

// startAdmin starts nsqadmin once it exists; until then the dev cluster
// runs without it.
func startAdmin(ctx context.Context, g *errgroup.Group, c devConfig, level slog.Level, out io.Writer, lookupdHTTP string) (string, error) {
	return "", nil
}
