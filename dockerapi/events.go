package dockerapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-runtime/berth/containers"
)

func (s *Server) routeEvents() { s.mux.HandleFunc("GET /events", s.events) }

var eventActions = map[containers.EventType]string{
	containers.EventCreated: "create", containers.EventStarted: "start",
	containers.EventStopped: "die", containers.EventDeleted: "destroy",
}

// events is `docker events`: the Docker containers' lifecycle as it
// happens (create, start, die, destroy), filtered by type, container and
// event, until `until` if given. Berth keeps no history: `since` in the
// past replays nothing.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	for _, t := range filters["type"] {
		if t != "container" {
			// Only container events exist here: a filter for others matches nothing.
			filters["event"] = append(filters["event"], "\x00none")
		}
	}
	var until <-chan time.Time
	if u := unixParam(r.URL.Query().Get("until")); !u.IsZero() {
		t := time.NewTimer(time.Until(u))
		defer t.Stop()
		until = t.C
	}
	ev, stop := s.containers.Subscribe()
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
	// Docker's containers' names and images, for the destroy event of one
	// whose record is gone by then.
	names := map[string][2]string{}
	if all, err := s.containers.ListOwned(Owner); err == nil {
		for _, c := range all {
			names[c.ID] = [2]string{c.Name, c.ImageRef}
		}
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-until:
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
			if !eventMatches(filters, e.ContainerID, n[0], action) {
				continue
			}
			attrs := map[string]string{"name": n[0], "image": n[1]}
			if action == "die" && err == nil {
				attrs["exitCode"] = strconv.Itoa(int(c.ExitCode))
			}
			_ = enc.Encode(map[string]any{
				"Type": "container", "Action": action, "status": action, "id": e.ContainerID, "from": n[1],
				"Actor": map[string]any{"ID": e.ContainerID, "Attributes": attrs},
				"scope": "local", "time": e.At.Unix(), "timeNano": e.At.UnixNano(),
			})
			flush()
		}
	}
}

func eventMatches(filters map[string][]string, id, name, action string) bool {
	if cs := filters["container"]; len(cs) > 0 {
		ok := false
		for _, c := range cs {
			ok = ok || c == name || c == id || len(c) >= 4 && len(id) >= len(c) && id[:len(c)] == c
		}
		if !ok {
			return false
		}
	}
	if es := filters["event"]; len(es) > 0 {
		ok := false
		for _, e := range es {
			ok = ok || e == action
		}
		if !ok {
			return false
		}
	}
	return true
}
