package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/nsqx/nsqx/nsqd"
)

// checkMain runs "nsqd check": it verifies a --data-path offline with
// nsqd.Check, changing nothing, and exits 0 when it found no problem, 1
// when it found some, and 2 on a usage error or a data path that cannot
// be checked at all.
func checkMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nsqd check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dataPath := fs.String("data-path", nsqd.DefaultConfig().DataPath, "the data path to verify (nsqd's --data-path)")
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: nsqd check --data-path DIR\n\n"+
			"Verifies a data path offline: topics, channels and their depths, and any\n"+
			"damage (corrupt records, torn writes, bad headers, unreadable channel\n"+
			"progress, a garbled nsqd.dat, NSQ files not yet imported). It opens files\n"+
			"read-only and works while nsqd runs. Exit status: 0 no problem found,\n"+
			"1 problems found, 2 usage error.\n\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout)
		return 0
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(stderr, "nsqd check: %v\n", err)
		usage(stderr)
		return 2
	}
	ok, err := nsqd.Check(*dataPath, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "nsqd check: %v\n", err)
		return 2
	}
	if !ok {
		return 1
	}
	return 0
}
