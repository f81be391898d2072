package engine

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/store"
)

// Docker's events: of containers (from the containers service's, names and
// images kept), images, volumes, networks. The last 1024 are kept in
// memory, as dockerd keeps its own, for `docker events --since`.

var eventActions = map[containers.EventType]string{
	containers.EventCreated: "create", containers.EventStarted: "start",
	containers.EventStopped: "die", containers.EventDeleted: "destroy",
}

// Event is one of Docker's events: the type of object, what happened to
// it, its ID and attributes (name, image, exitCode ...).
type Event struct {
	Type, Action, ID string
	Attrs            map[string]string
	At               time.Time
}

// eventLog keeps the last events (for --since) and hands new ones to the
// /events streams. In memory, as dockerd keeps its own.
type eventLog struct {
	mu   sync.Mutex
	ring []Event
	subs map[chan Event]struct{}
}

const eventHistory = 1024

func (l *eventLog) publish(typ, action, id string, attrs map[string]string) {
	if attrs == nil {
		attrs = map[string]string{}
	}
	e := Event{Type: typ, Action: action, ID: id, Attrs: attrs, At: time.Now()}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring = append(l.ring, e)
	if len(l.ring) > eventHistory {
		l.ring = slices.Delete(l.ring, 0, len(l.ring)-eventHistory)
	}
	for ch := range l.subs {
		select {
		case ch <- e:
		default: // a stream that cannot keep up misses events rather than stall the daemon
		}
	}
}

// subscribe returns the events kept since since, and a channel of new ones.
func (l *eventLog) subscribe(since time.Time) ([]Event, chan Event, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var past []Event
	if !since.IsZero() {
		for _, e := range l.ring {
			if !e.At.Before(since) {
				past = append(past, e)
			}
		}
	}
	ch := make(chan Event, 256)
	if l.subs == nil {
		l.subs = map[chan Event]struct{}{}
	}
	l.subs[ch] = struct{}{}
	return past, ch, func() {
		l.mu.Lock()
		delete(l.subs, ch)
		l.mu.Unlock()
	}
}

// recordContainerEvents turns the containers service's events of Docker's
// containers into Docker's (names and images kept for the destroy of one
// whose record is gone by then).
// Events returns the events kept since since (none when zero), a channel
// of new ones, and the function that ends the subscription.
func (e *Engine) Events(since time.Time) ([]Event, <-chan Event, func()) {
	past, ch, stop := e.events.subscribe(since)
	return past, ch, stop
}

func (e *Engine) recordContainerEvents(ctx context.Context) {
	events, stop := e.containers.Subscribe()
	defer stop()
	// Attributes are the container's labels, name and image, as dockerd's:
	// kept here, for a removed container's events still carry them.
	attrsOf := map[string]map[string]string{}
	keep := func(c store.Container) {
		a := maps.Clone(c.Labels)
		if a == nil {
			a = map[string]string{}
		}
		a["name"], a["image"] = c.Name, c.ImageRef
		attrsOf[c.ID] = a
	}
	if all, err := e.containers.ListOwned(Owner); err == nil {
		for _, c := range all {
			keep(c)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if c, err := e.containers.Get(ev.ContainerID); err == nil {
				if c.Owner != Owner {
					continue
				}
				keep(c)
			}
			kept, ok := attrsOf[ev.ContainerID]
			if !ok {
				continue // not one of Docker's
			}
			action := eventActions[ev.Type]
			if ev.Type == containers.EventDeleted {
				delete(attrsOf, ev.ContainerID)
			}
			attrs := maps.Clone(kept)
			if action == "die" {
				attrs["exitCode"] = strconv.Itoa(int(ev.ExitCode))
			}
			e.events.publish("container", action, ev.ContainerID, attrs)
		}
	}
}

// Matches is `docker events --filter`: every key must match, any of its
// values may.
func (e Event) Matches(filters Filters) bool {
	for key, values := range filters {
		if key == "label" {
			// Every label asked for, as dockerd's filters.MatchKVList.
			if !labelsMatch(e.Attrs, values) {
				return false
			}
			continue
		}
		ok := false
		for _, v := range values {
			switch key {
			case "type":
				ok = ok || e.Type == v
			case "event":
				ok = ok || e.Action == v
			case "container", "image", "volume", "network":
				ok = ok || e.Type == key && (e.ID == v || e.Attrs["name"] == v || len(v) >= 4 && strings.HasPrefix(e.ID, v)) ||
					key == "image" && e.Type == "container" && e.Attrs["image"] == v
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
