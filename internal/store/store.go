package store

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// SchemaVersion is written into every record.
const SchemaVersion = 1

// DB is the metadata database.
type DB struct {
	db         *bolt.DB
	Sandboxes  *Collection[Sandbox]
	Containers *Collection[Container]
	Images     *Collection[Image]
}

// Open opens (creating if needed) the database at path.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create metadata dir: %w", err)
	}
	// A short timeout: a second berthd on the same --root must fail fast, not hang.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open metadata %s (is another berthd using this --root?): %w", path, err)
	}
	d := &DB{db: db}
	d.Sandboxes = &Collection[Sandbox]{db: db, bucket: []byte("sandboxes"), kind: "sandbox"}
	d.Containers = &Collection[Container]{db: db, bucket: []byte("containers"), kind: "container"}
	d.Images = &Collection[Image]{db: db, bucket: []byte("images"), kind: "image"}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, c := range [][]byte{d.Sandboxes.bucket, d.Containers.bucket, d.Images.bucket} {
			if _, err := tx.CreateBucketIfNotExists(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init metadata %s: %w", path, err)
	}
	return d, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Record is what every stored type implements.
type Record interface {
	Sandbox | Container | Image
}

// Collection is one typed bucket of JSON records keyed by ID, with every
// record also kept decoded in memory: reads (a ListContainers, an ExecSync's
// lookup) need not decode JSON, which cost ~13 µs a record — 13 ms for each
// of kubelet's relists on a node of a thousand containers. bbolt stays the
// truth: the memory copy changes only after a write has committed, under the
// same lock, and readers get deep copies, never the cached values.
type Collection[T Record] struct {
	db     *bolt.DB
	bucket []byte
	kind   string

	mu     sync.RWMutex
	cache  map[string]T // nil until loaded
	sorted []string     // cache's IDs, in bbolt's (byte) order
}

type envelope[T Record] struct {
	Schema int `json:"schema"`
	Record T   `json:"record"`
}

func (c *Collection[T]) decode(id string, b []byte) (T, error) {
	var e envelope[T]
	if err := json.Unmarshal(b, &e); err != nil {
		return e.Record, fmt.Errorf("decode %s %s: %w", c.kind, id, err)
	}
	if e.Schema > SchemaVersion {
		return e.Record, fmt.Errorf("%s %s has schema %d, newer than this berthd's %d", c.kind, id, e.Schema, SchemaVersion)
	}
	return e.Record, nil
}

func encode[T Record](r T) ([]byte, error) {
	return json.Marshal(envelope[T]{Schema: SchemaVersion, Record: r})
}

// Create stores a new record; it fails with ErrAlreadyExists if id is taken.
func (c *Collection[T]) Create(id string, r T) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(c.bucket)
		if b.Get([]byte(id)) != nil {
			return fmt.Errorf("%s %s: %w", c.kind, id, errdefs.ErrAlreadyExists)
		}
		v, err := encode(r)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), v)
	})
	if err == nil {
		c.remember(id, r)
	}
	return err
}

// Put stores r under id, replacing any record there.
func (c *Collection[T]) Put(id string, r T) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.db.Update(func(tx *bolt.Tx) error {
		v, err := encode(r)
		if err != nil {
			return err
		}
		return tx.Bucket(c.bucket).Put([]byte(id), v)
	})
	if err == nil {
		c.remember(id, r)
	}
	return err
}

// Get returns the record id, or an error wrapping ErrNotFound.
func (c *Collection[T]) Get(id string) (T, error) {
	if err := c.load(); err != nil {
		var zero T
		return zero, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.cache[id]
	if !ok {
		return r, fmt.Errorf("%s %s: %w", c.kind, id, errdefs.ErrNotFound)
	}
	return deepCopy(r), nil
}

// Update reads, changes and writes back record id in one transaction.
// If fn returns an error nothing is written.
func (c *Collection[T]) Update(id string, fn func(*T) error) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var r T
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(c.bucket)
		v := b.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("%s %s: %w", c.kind, id, errdefs.ErrNotFound)
		}
		var err error
		if r, err = c.decode(id, v); err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
		nv, err := encode(r)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), nv)
	})
	if err == nil {
		c.remember(id, r)
	}
	return r, err
}

// Delete removes id; deleting a missing record is not an error.
func (c *Collection[T]) Delete(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(c.bucket).Delete([]byte(id))
	})
	if err == nil && c.cache != nil {
		if _, ok := c.cache[id]; ok {
			delete(c.cache, id)
			i, _ := slices.BinarySearch(c.sorted, id)
			c.sorted = slices.Delete(c.sorted, i, i+1)
		}
	}
	return err
}

// List returns every record, sorted by ID.
func (c *Collection[T]) List() ([]T, error) {
	if err := c.load(); err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]T, len(c.sorted))
	for i, id := range c.sorted {
		out[i] = deepCopy(c.cache[id])
	}
	return out, nil
}

// Filter returns copies of the records, in ID order, that match says to
// keep. match sees each stored record itself (a shallow copy, under the
// read lock): it must only read it. Only what it keeps is copied deeply:
// the checks of every create (a name taken?) cost no copy of a node's
// thousand records.
func (c *Collection[T]) Filter(match func(T) bool) ([]T, error) { return c.filter(match, -1) }

// First is the first record, in ID order, that match (as Filter's) takes.
func (c *Collection[T]) First(match func(T) bool) (T, bool, error) {
	out, err := c.filter(match, 1)
	if len(out) == 0 {
		var zero T
		return zero, false, err
	}
	return out[0], true, err
}

// filter is Filter stopping once limit records are kept (-1: no limit).
func (c *Collection[T]) filter(match func(T) bool, limit int) ([]T, error) {
	if err := c.load(); err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []T
	for _, id := range c.sorted {
		if r := c.cache[id]; match(r) {
			if out = append(out, deepCopy(r)); len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// Each calls fn with a copy of each record in ID order, one at a time, for
// answers sent as they are built, whose memory must not grow with the
// store. A record added meanwhile may be missed, one removed is skipped.
func (c *Collection[T]) Each(fn func(T) error) error {
	if err := c.load(); err != nil {
		return err
	}
	c.mu.RLock()
	ids := slices.Clone(c.sorted)
	c.mu.RUnlock()
	for _, id := range ids {
		c.mu.RLock()
		r, ok := c.cache[id]
		if ok {
			r = deepCopy(r)
		}
		c.mu.RUnlock()
		if !ok {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// load reads the whole bucket into memory once. A record that does not
// decode fails every read until it is fixed, as it did when each read
// decoded it.
func (c *Collection[T]) load() error {
	c.mu.RLock()
	loaded := c.cache != nil
	c.mu.RUnlock()
	if loaded {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache != nil {
		return nil
	}
	cache := map[string]T{}
	var sorted []string
	err := c.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(c.bucket).ForEach(func(k, v []byte) error {
			r, err := c.decode(string(k), v)
			if err != nil {
				return err
			}
			cache[string(k)] = r
			sorted = append(sorted, string(k))
			return nil
		})
	})
	if err != nil {
		return err
	}
	c.cache, c.sorted = cache, sorted
	return nil
}

// remember puts r, as just committed, in the memory copy; c.mu is held.
func (c *Collection[T]) remember(id string, r T) {
	if c.cache == nil {
		return // not loaded yet: the first read loads it from bbolt
	}
	if _, ok := c.cache[id]; !ok {
		i, _ := slices.BinarySearch(c.sorted, id)
		c.sorted = slices.Insert(c.sorted, i, id)
	}
	c.cache[id] = deepCopy(r)
}
