package dockerapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/berth-runtime/berth/engine"
)

func (s *Server) routeEvents() { s.mux.HandleFunc("GET /events", s.streamEvents) }

// eventJSON is one of Docker's events as /events sends it.
func eventJSON(e engine.Event) map[string]any {
	m := map[string]any{
		"Type": e.Type, "Action": e.Action, "Actor": map[string]any{"ID": e.ID, "Attributes": e.Attrs},
		"scope": "local", "time": e.At.Unix(), "timeNano": e.At.UnixNano(),
	}
	if e.Type == "container" { // the old fields the CLI still reads
		m["status"], m["id"], m["from"] = e.Action, e.ID, e.Attrs["image"]
	}
	return m
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
	past, ch, stop := s.engine.Events(since)
	defer stop()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush := flusher(w)
	flush()
	enc := json.NewEncoder(w)
	send := func(e engine.Event) bool {
		if !until.IsZero() && e.At.After(until) {
			return false
		}
		if e.Matches(filters) {
			_ = enc.Encode(eventJSON(e))
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
