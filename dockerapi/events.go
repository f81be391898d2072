package dockerapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-runtime/berth/containers"
)

func (s *Server) routeEvents() { s.mux.HandleFunc("GET /events", s.streamEvents) }

var eventActions = map[containers.EventType]string{
	containers.EventCreated: "create", containers.EventStarted: "start",
	containers.EventStopped: "die", containers.EventDeleted: "destroy",
}

// dockerEvent is one of Docker's events, as /events sends it.
type dockerEvent struct {
	Type, Action, ID string
	Attrs            map[string]string
	At               time.Time
}

func (e dockerEvent) json() map[string]any {
	m := map[string]any{
		"Type": e.Type, "Action": e.Action, "Actor": map[string]any{"ID": e.ID, "Attributes": e.Attrs},
		"scope": "local", "time": e.At.Unix(), "timeNano": e.At.UnixNano(),
	}
	if e.Type == "container" { // the old fields the CLI still reads
		m["status"], m["id"], m["from"] = e.Action, e.ID, e.Attrs["image"]
	}
	return m
}

// eventLog keeps the last events (for --since) and hands new ones to the
// /events streams. In memory, as dockerd keeps its own.
type eventLog struct {
	mu   sync.Mutex
	ring []dockerEvent
	subs map[chan dockerEvent]struct{}
}

const eventHistory = 1024

func (l *eventLog) publish(typ, action, id string, attrs map[string]string) {
	if attrs == nil {
		attrs = map[string]string{}
	}
	e := dockerEvent{Type: typ, Action: action, ID: id, Attrs: attrs, At: time.Now()}
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
func (l *eventLog) subscribe(since time.Time) ([]dockerEvent, chan dockerEvent, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var past []dockerEvent
	if !since.IsZero() {
		for _, e := range l.ring {
			if !e.At.Before(since) {
				past = append(past, e)
			}
		}
	}
	ch := make(chan dockerEvent, 256)
	if l.subs == nil {
		l.subs = map[chan dockerEvent]struct{}{}
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
func (s *Server) recordContainerEvents(ctx context.Context) {
	ev, stop := s.containers.Subscribe()
	defer stop()
	names := map[string][2]string{}
	if all, err := s.containers.ListOwned(Owner); err == nil {
		for _, c := range all {
			names[c.ID] = [2]string{c.Name, c.ImageRef}
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-ev:
			c, err := s.containers.Get(e.ContainerID)
			if err == nil {
				if c.Owner != Owner {
					continue
				}
				names[c.ID] = [2]string{c.Name, c.ImageRef}
			}
			n, ok := names[e.ContainerID]
			if !ok {
				continue // not one of Docker's
			}
			action := eventActions[e.Type]
			if e.Type == containers.EventDeleted {
				delete(names, e.ContainerID)
			}
			attrs := map[string]string{"name": n[0], "image": n[1]}
			if action == "die" && err == nil {
				attrs["exitCode"] = strconv.Itoa(int(c.ExitCode))
			}
			s.events.publish("container", action, e.ContainerID, attrs)
		}
	}
}

// streamEvents is `docker events`: the events kept since --since, then
// new ones as they happen, until --until or the client goes; filtered by
// type, container, image, volume, network, event and label.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	since, until := unixParam(r.URL.Query().Get("since")), unixParam(r.URL.Query().Get("until"))
	past, ch, stop := s.events.subscribe(since)
	defer stop()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	flush()
	enc := json.NewEncoder(w)
	send := func(e dockerEvent) bool {
		if !until.IsZero() && e.At.After(until) {
			return false
		}
		if eventMatches(filters, e) {
			_ = enc.Encode(e.json())
			flush()
		}
		return true
	}
	for _, e := range past {
		if !send(e) {
			return
		}
	}
	var end <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		end = t.C
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-end:
			return
		case e := <-ch:
			if !send(e) {
				return
			}
		}
	}
}

// eventMatches: every filter key must match, any of its values may.
func eventMatches(filters map[string][]string, e dockerEvent) bool {
	for key, values := range filters {
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
			case "label":
				k, val, hasVal := strings.Cut(v, "=")
				got, has := e.Attrs[k]
				ok = ok || has && (!hasVal || got == val)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
