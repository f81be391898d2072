// berth is the docker-compatible command line for Berth.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-runtime/berth/cli"
	"github.com/berth-runtime/berth/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	code := cli.Execute(ctx, version.Version, os.Args[1:])
	stop()
	os.Exit(code)
}
