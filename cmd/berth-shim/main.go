// Command berth-shim runs one container for berthd and outlives it.
// berthd starts it; it is not meant to be run by hand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/spawn"
	"github.com/berth-runtime/berth/internal/version"
	"github.com/berth-runtime/berth/shim"
)

func main() {
	dir := flag.String("dir", "", "the container's shim directory, holding "+shim.ConfigFile)
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: berth-shim --dir DIR\n\nberth-shim runs one container for berthd: it creates it with the OCI runtime,\nreaps it, writes its logs and answers berthd on a unix socket. berthd starts it.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *showVersion {
		fmt.Println("berth-shim version", version.Version)
		return
	}
	if *dir == "" {
		flag.Usage()
		os.Exit(2)
	}
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, nil)))
	// No runtime or container may inherit the ready pipe: berthd waits for it to close.
	ready, err := spawn.ReadyPipe("berth-shim")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// SIGTERM from an operator ends the shim, not the container (which runs on,
	// reparented); berthd never sends it.
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()
	signal.Ignore(unix.SIGPIPE, unix.SIGHUP)
	if err := shim.Run(ctx, *dir, ready); err != nil && !errors.Is(err, context.Canceled) {
		slog.Error("shim", slog.Any("error", err))
		os.Exit(1)
	}
}
