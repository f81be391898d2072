package cri

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Batches stay under streamBatchBytes, keep every item in order, and an
// item larger than a batch goes alone.
func TestSendBatches(t *testing.T) {
	item := func(id string, size int) *runtimeapi.Container {
		return &runtimeapi.Container{Id: id, Labels: map[string]string{"l": strings.Repeat("x", size)}}
	}
	items := []*runtimeapi.Container{item("a", 900<<10), item("b", 900<<10), item("c", 900<<10), item("huge", 3<<20), item("d", 10)}
	var batches [][]string
	err := sendBatches(items, func(b []*runtimeapi.Container) error {
		size := 0
		var ids []string
		for _, c := range b {
			size += proto.Size(c)
			ids = append(ids, c.Id)
		}
		if size > streamBatchBytes && len(b) > 1 {
			t.Errorf("a batch of %d bytes", size)
		}
		batches = append(batches, ids)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, b := range batches {
		got += "[" + strings.Join(b, " ") + "]"
	}
	if got != "[a b][c][huge][d]" {
		t.Errorf("batches %s", got)
	}
	if err := sendBatches([]*runtimeapi.Container{}, func([]*runtimeapi.Container) error { t.Error("sent for nothing"); return nil }); err != nil {
		t.Fatal(err)
	}
}
