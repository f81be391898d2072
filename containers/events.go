package containers

import (
	"log/slog"
	"sync"
	"time"
)

// EventType is what happened to a container.
type EventType int

const (
	EventCreated EventType = iota
	EventStarted
	EventStopped
	EventDeleted
)

// Event is one change of a container's state, published when its record
// has been written.
type Event struct {
	Type        EventType
	ContainerID string
	SandboxID   string
	At          time.Time
	// ExitCode is a stopped container's: its record may be gone (--rm)
	// by the time a subscriber reads the event.
	ExitCode int32
}

// events fans events out to subscribers. A subscriber that falls 256
// events behind loses events (and is told in the log): consumers such as
// kubelet's evented PLEG relist now and then, and a stuck one must not stall
// container lifecycles.
type events struct {
	mu   sync.Mutex
	subs map[chan Event]bool
	log  *slog.Logger
}

func (e *events) publish(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.subs {
		select {
		case ch <- ev:
		default:
			e.log.Warn("container event dropped: a subscriber is too slow", slog.String("container", ev.ContainerID))
		}
	}
}

// Subscribe returns a channel of events and a function that ends the subscription.
func (s *Service) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 256)
	s.events.mu.Lock()
	if s.events.subs == nil {
		s.events.subs = map[chan Event]bool{}
	}
	s.events.subs[ch] = true
	s.events.mu.Unlock()
	return ch, func() {
		s.events.mu.Lock()
		delete(s.events.subs, ch)
		s.events.mu.Unlock()
	}
}

func (s *Service) publish(t EventType, id, sandboxID string) {
	s.events.publish(Event{Type: t, ContainerID: id, SandboxID: sandboxID, At: time.Now().UTC()})
}
