// Command berth-lazyfs serves one lazily pulled eStargz layer over FUSE for
// berthd and outlives it. berthd starts it; it is not meant to be run by hand.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/images/lazy"
	"github.com/berth-runtime/berth/internal/spawn"
	"github.com/berth-runtime/berth/internal/version"
)

func main() {
	dir := flag.String("dir", "", "the layer's lazy directory, holding "+images.LazyConfigFile)
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: berth-lazyfs --dir DIR\n\nberth-lazyfs serves one eStargz image layer over FUSE at the layer's place in\nberthd's snapshots while it fetches it: what is read comes from the registry by\nranges, checked against the layer's table of contents. berthd starts it, one per\nlazily pulled layer, and stops it when the layer is removed.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *showVersion {
		fmt.Println("berth-lazyfs version", version.Version)
		return
	}
	if *dir == "" {
		flag.Usage()
		os.Exit(2)
	}
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, nil)))
	ready, err := spawn.ReadyPipe("berth-lazyfs")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()
	signal.Ignore(unix.SIGPIPE, unix.SIGHUP)
	err = lazy.Serve(ctx, *dir, slog.Default(), func(err error) {
		if err != nil {
			fmt.Fprintf(ready, "error: %v", err)
		} else {
			fmt.Fprint(ready, "ok")
		}
		ready.Close()
	})
	if err != nil {
		slog.Error("berth-lazyfs", slog.Any("error", err))
		os.Exit(1)
	}
}
