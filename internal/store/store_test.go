package store

import (
	"errors"
	"path/filepath"
	"strings"
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

// TestMemoryCopy: reads come from memory, yet what a caller does to a record
// it got changes nothing stored, and the memory copy follows every write in
// bbolt's order.
func TestMemoryCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b", "a", "c"} {
		if err := db.Containers.Create(id, Container{ID: id, Labels: map[string]string{"k": id}}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := db.Containers.Get("a")
	got.Labels["k"] = "changed"
	got.VolumeImages = append(got.VolumeImages, "x")
	list, _ := db.Containers.List()
	list[0].Labels["k"] = "changed too"
	if again, _ := db.Containers.Get("a"); again.Labels["k"] != "a" || len(again.VolumeImages) != 0 {
		t.Fatalf("a caller's change reached the store: %+v", again)
	}
	if err := db.Containers.Delete("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Containers.Update("c", func(c *Container) error { c.Pid = 9; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.Containers.Put("d", Container{ID: "d"}); err != nil {
		t.Fatal(err)
	}
	want := func(db *DB) {
		t.Helper()
		list, err := db.Containers.List()
		var ids []string
		for _, c := range list {
			ids = append(ids, c.ID)
		}
		if err != nil || strings.Join(ids, ",") != "a,c,d" || list[1].Pid != 9 {
			t.Fatalf("list: %v %+v %v", ids, list, err)
		}
	}
	want(db)
	db.Close()
	if db, err = Open(path); err != nil { // what bbolt holds agrees
		t.Fatal(err)
	}
	defer db.Close()
	want(db)
}

// Each hands out copies in ID order, one at a time, skips what is removed
// meanwhile, and stops at fn's error.
func TestEach(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range []string{"c3", "c1", "c2"} {
		if err := db.Containers.Create(id, Container{ID: id, Labels: map[string]string{"k": id}}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	err = db.Containers.Each(func(c Container) error {
		seen = append(seen, c.ID)
		c.Labels["k"] = "changed" // a copy: the store keeps its own
		if c.ID == "c1" {
			return db.Containers.Delete("c2")
		}
		return nil
	})
	if err != nil || strings.Join(seen, " ") != "c1 c3" {
		t.Fatalf("Each: %v %v, want c1 c3 (c2 removed meanwhile)", seen, err)
	}
	if c, _ := db.Containers.Get("c3"); c.Labels["k"] != "c3" {
		t.Fatalf("Each handed out the store's own record: %v", c.Labels)
	}
	stop := errors.New("stop")
	n := 0
	if err := db.Containers.Each(func(Container) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("Each after fn's error: %v, %d calls", err, n)
	}
}

func TestFilterAndFirst(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range []string{"c3", "c1", "c2"} {
		if err := db.Containers.Create(id, Container{ID: id, SandboxID: "p" + id[1:2], Labels: map[string]string{"k": id}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Containers.Filter(func(c Container) bool { return c.ID != "c2" })
	if err != nil || len(got) != 2 || got[0].ID != "c1" || got[1].ID != "c3" {
		t.Fatalf("Filter: %+v %v, want c1 c3", got, err)
	}
	got[0].Labels["k"] = "changed"
	c, ok, err := db.Containers.First(func(c Container) bool { return c.SandboxID == "p1" })
	if err != nil || !ok || c.ID != "c1" || c.Labels["k"] != "c1" {
		t.Fatalf("First: %+v %v %v (a Filter result must be a copy)", c, ok, err)
	}
	c.Labels["k"] = "changed"
	if again, _ := db.Containers.Get("c1"); again.Labels["k"] != "c1" {
		t.Fatalf("First handed out the store's own record: %v", again.Labels)
	}
	if _, ok, err := db.Containers.First(func(Container) bool { return false }); ok || err != nil {
		t.Fatalf("First of nothing: %v %v", ok, err)
	}
}
