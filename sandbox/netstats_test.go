package sandbox

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestReadNetDev(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dev")
	os.WriteFile(p, []byte(`Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    1296      16    1    2    0     0          0         0     1166      13    3    4    0     0       0          0
`), 0o644)
	got, err := readNetDev(p)
	want := []Interface{{Name: "eth0", RxBytes: 1296, RxPackets: 16, RxErrors: 1, RxDropped: 2, TxBytes: 1166, TxPackets: 13, TxErrors: 3, TxDropped: 4}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("readNetDev: %+v %v, want %+v", got, err, want)
	}
}
