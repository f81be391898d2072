package store

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestCollectionLifecycle(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	c := Container{ID: "c1", Name: "web", State: ContainerCreated}
	if err := db.Containers.Create("c1", c); err != nil {
		t.Fatal(err)
	}
	if err := db.Containers.Create("c1", c); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second create: got %v, want ErrAlreadyExists", err)
	}
	got, err := db.Containers.Update("c1", func(r *Container) error {
		r.State = ContainerRunning
		r.Pid = 42
		return nil
	})
	if err != nil || got.State != ContainerRunning || got.Pid != 42 {
		t.Fatalf("update: %+v %v", got, err)
	}
	// A failing update writes nothing.
	boom := errors.New("boom")
	if _, err := db.Containers.Update("c1", func(r *Container) error { r.Pid = 7; return boom }); !errors.Is(err, boom) {
		t.Fatalf("update error: %v", err)
	}
	if got, _ := db.Containers.Get("c1"); got.Pid != 42 {
		t.Fatalf("failed update leaked: pid %d", got.Pid)
	}
	if _, err := db.Containers.Update("nope", func(*Container) error { return nil }); !errdefs.IsNotFound(err) {
		t.Fatalf("update missing: %v", err)
	}
	list, err := db.Containers.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	if err := db.Containers.Delete("c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Containers.Get("c1"); !errdefs.IsNotFound(err) {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestReopenKeepsRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Sandboxes.Create("s1", Sandbox{ID: "s1", Name: "pod"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := db.Sandboxes.Get("s1")
	if err != nil || s.Name != "pod" {
		t.Fatalf("after reopen: %+v %v", s, err)
	}
}
