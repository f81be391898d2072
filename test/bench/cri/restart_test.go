package cri

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// BenchmarkRestart: a daemon holding 100 running containers (one a pod) is
// killed with SIGKILL and started again; timed from the start of the new
// process to its first answered CRI call (Version). berthd and containerd
// 1.6 in one run, five restarts each, interleaved.
//
//	make bench-restart   (go test -run '^$' -bench Restart -benchtime 1x ./test/bench/cri)
func BenchmarkRestart(b *testing.B) {
	const pods = 100
	targets, stop := startWithSleepers(b, "restart", pods)
	defer stop()
	ctx := b.Context()
	times := map[string][]time.Duration{}
	for range 5 {
		for _, t := range targets {
			times[t.name] = append(times[t.name], restartTarget(b, t))
		}
	}
	fmt.Printf("\nrestart (SIGKILL, start) to the first answered CRI call, %d running containers, 5 rounds\n", pods)
	bd, cd := times["berthd"], times["containerd"]
	fmt.Printf("berthd %s (min %s, max %s), containerd %s (min %s, max %s): %.2fx\n",
		pct(bd, .5).Round(100*time.Microsecond), pct(bd, 0).Round(100*time.Microsecond), pct(bd, 1).Round(100*time.Microsecond),
		pct(cd, .5).Round(100*time.Microsecond), pct(cd, 0).Round(100*time.Microsecond), pct(cd, 1).Round(100*time.Microsecond),
		float64(pct(bd, .5))/float64(pct(cd, .5)))
	for _, t := range targets {
		if list, err := t.rs.ListContainers(ctx, nil); err != nil || len(list) != pods {
			b.Fatalf("%s after the restarts: %d containers, %v", t.name, len(list), err)
		}
	}
}

// restartTarget kills t's daemon, starts it again with the same command
// line, and returns the time to its first answered Version call.
func restartTarget(b *testing.B, t *target) time.Duration {
	_ = t.cmd.Process.Signal(syscall.SIGKILL)
	_ = t.cmd.Wait()
	path, args := t.cmd.Path, t.cmd.Args[1:]
	s := time.Now()
	t.cmd = exec.Command(path, args...)
	start(b, t)
	for deadline := s.Add(60 * time.Second); ; {
		// A connection per attempt: gRPC would wait out its reconnect
		// backoff (a second) after a refused one.
		conn, err := grpc.NewClient("unix://"+t.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
		cancel()
		conn.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not answer within a minute of its restart: %v", t.name, err)
		}
		time.Sleep(time.Millisecond)
	}
	d := time.Since(s)
	connect(b, t, t.sock)
	return d
}
