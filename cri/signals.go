package cri

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/linux"
)

// CRI's Signal enum (a pod's lifecycle.stopSignal) and Linux signal
// numbers. The real-time ones are counted as glibc and runc count them:
// SIGRTMIN is 34, SIGRTMAX 64.

var signalAliases = map[string]string{"SIGCLD": "SIGCHLD", "SIGPOLL": "SIGIO", "SIGIOT": "SIGABRT"}

// signalNumber is the Linux number of a CRI signal; 0 for
// RUNTIME_DEFAULT (the image's STOPSIGNAL, else SIGTERM).
func signalNumber(s runtimeapi.Signal) (int, error) {
	if s == runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		return 0, nil
	}
	full, ok := runtimeapi.Signal_name[int32(s)]
	if !ok {
		return 0, fmt.Errorf("unknown signal %d", s)
	}
	name := strings.TrimPrefix(full, "SIGNAL_")
	if a, ok := signalAliases[name]; ok {
		name = a
	}
	switch {
	case name == "SIGRTMIN":
		return 34, nil
	case name == "SIGRTMAX":
		return 64, nil
	case strings.HasPrefix(name, "SIGRTMINPLUS"):
		n, err := strconv.Atoi(strings.TrimPrefix(name, "SIGRTMINPLUS"))
		return 34 + n, err
	case strings.HasPrefix(name, "SIGRTMAXMINUS"):
		n, err := strconv.Atoi(strings.TrimPrefix(name, "SIGRTMAXMINUS"))
		return 64 - n, err
	}
	if n := unix.SignalNum(name); n != 0 {
		return int(n), nil
	}
	return 0, fmt.Errorf("signal %s has no number here", full)
}

// criSignal is the CRI signal a container stops with: its record's (a
// number or a name, from the request or the image), SIGTERM when none.
func criSignal(stopSignal string) runtimeapi.Signal {
	num := int(unix.SIGTERM)
	if stopSignal != "" {
		if n, err := linux.ParseSignal(stopSignal); err == nil {
			num = int(n)
		}
	}
	// The enum is in name order, so the first match is the usual name
	// (SIGABRT before SIGIOT, SIGCHLD before SIGCLD, SIGIO before SIGPOLL).
	for v := int32(1); ; v++ {
		if _, ok := runtimeapi.Signal_name[v]; !ok {
			return runtimeapi.Signal_SIGNAL_SIGTERM
		}
		if n, err := signalNumber(runtimeapi.Signal(v)); err == nil && n == num {
			return runtimeapi.Signal(v)
		}
	}
}
