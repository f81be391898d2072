package cri

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Every signal of CRI's enum has its Linux number, and a number reads back
// as its usual name.
func TestSignals(t *testing.T) {
	for v, name := range runtimeapi.Signal_name {
		n, err := signalNumber(runtimeapi.Signal(v))
		if v == 0 {
			if n != 0 || err != nil {
				t.Errorf("RUNTIME_DEFAULT: %d %v", n, err)
			}
			continue
		}
		if err != nil || n < 1 || n > 64 {
			t.Errorf("%s: %d %v", name, n, err)
		}
	}
	for _, c := range []struct {
		record string
		want   runtimeapi.Signal
	}{
		{"", runtimeapi.Signal_SIGNAL_SIGTERM},
		{"SIGUSR1", runtimeapi.Signal_SIGNAL_SIGUSR1},
		{"QUIT", runtimeapi.Signal_SIGNAL_SIGQUIT},
		{"6", runtimeapi.Signal_SIGNAL_SIGABRT},
		{"17", runtimeapi.Signal_SIGNAL_SIGCHLD},
		{"37", runtimeapi.Signal_SIGNAL_SIGRTMINPLUS3},
		{"63", runtimeapi.Signal_SIGNAL_SIGRTMAXMINUS1},
		{"nonsense", runtimeapi.Signal_SIGNAL_SIGTERM},
	} {
		if got := criSignal(c.record); got != c.want {
			t.Errorf("record %q: %v, want %v", c.record, got, c.want)
		}
	}
	if n, _ := signalNumber(runtimeapi.Signal_SIGNAL_SIGRTMINPLUS3); n != 37 {
		t.Errorf("SIGRTMIN+3 is %d", n)
	}
	if _, err := signalNumber(runtimeapi.Signal(999)); err == nil {
		t.Error("signal 999 accepted")
	}
}

// A pod's cgroup takes its containers' sum and its overhead; what the sum
// leaves unlimited stays so.
func TestPodResources(t *testing.T) {
	r := podResources(&runtimeapi.LinuxContainerResources{CpuQuota: 150000, CpuPeriod: 100000, CpuShares: 1536, MemoryLimitInBytes: 256 << 20},
		&runtimeapi.LinuxContainerResources{CpuQuota: 5000, CpuPeriod: 50000, CpuShares: 10, MemoryLimitInBytes: 32 << 20})
	if r.CPUQuota != 160000 || r.CPUShares != 1546 || r.MemoryLimit != 288<<20 {
		t.Errorf("sum with overhead: %+v", r)
	}
	r = podResources(&runtimeapi.LinuxContainerResources{CpuQuota: -1, CpuShares: 2}, &runtimeapi.LinuxContainerResources{CpuQuota: 5000, MemoryLimitInBytes: 32 << 20})
	if r.CPUQuota != -1 || r.MemoryLimit != 0 {
		t.Errorf("unlimited sum: %+v", r)
	}
}
