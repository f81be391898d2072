package engine

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-runtime/berth/internal/store"
)

// Filters are the filters of Docker's list calls: key → values. Every key
// must match, any of a key's values may (labels excepted: every one must).
type Filters map[string][]string

// List is `docker ps`: running containers (all: every one, as a status
// filter also asks), filtered by name, id, status, ancestor, label,
// network and health.
func (e *Engine) List(all bool, f Filters) ([]store.Container, error) {
	recs, err := e.Containers()
	if err != nil {
		return nil, err
	}
	rest := Filters{}
	for k, v := range f {
		if k != "network" && k != "health" {
			rest[k] = v
		}
	}
	out := []store.Container{}
	for _, c := range recs {
		if c.State != store.ContainerRunning && !all && len(f["status"]) == 0 {
			continue
		}
		if !Matches(c, rest) || len(f["network"]) > 0 && !slices.Contains(f["network"], ConfigOf(c).NetworkName()) ||
			len(f["health"]) > 0 && !slices.Contains(f["health"], e.HealthStatus(c.ID)) {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// Matches is `docker ps --filter` over a record: every key must match,
// any of a key's values may — but every label given must (dockerd's rule,
// which compose relies on to tell its services apart). Unknown keys match
// nothing, as dockerd refuses them.
func Matches(c store.Container, filters Filters) bool {
	for key, values := range filters {
		if key == "label" {
			if !labelsMatch(c.Labels, values) {
				return false
			}
			continue
		}
		ok := false
		for _, v := range values {
			switch key {
			case "name":
				ok = ok || strings.Contains(c.Name, strings.TrimPrefix(v, "/"))
			case "id":
				ok = ok || strings.HasPrefix(c.ID, v)
			case "status":
				ok = ok || State(c) == v
			case "ancestor":
				ok = ok || c.ImageRef == v || FamiliarName(c.ImageRef) == v || strings.HasPrefix(c.ImageID, v) ||
					strings.HasPrefix(c.ImageID, "sha256:"+v)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// labelsMatch: each of want ("k" or "k=v") is among labels.
func labelsMatch(labels map[string]string, want []string) bool {
	for _, v := range want {
		k, val, hasVal := strings.Cut(v, "=")
		if got, has := labels[k]; !has || hasVal && got != val {
			return false
		}
	}
	return true
}

// State is Docker's State of c: created, running, paused or exited.
func State(c store.Container) string {
	switch {
	case c.State == store.ContainerRunning && c.Paused:
		return "paused"
	case c.State == store.ContainerRunning:
		return "running"
	case c.State == store.ContainerCreated:
		return "created"
	default:
		return "exited"
	}
}

// Status is `docker ps`'s STATUS column, without health.
func Status(c store.Container) string {
	switch c.State {
	case store.ContainerRunning:
		if c.Paused {
			return "Up " + humanDuration(time.Since(c.StartedAt)) + " (Paused)"
		}
		return "Up " + humanDuration(time.Since(c.StartedAt))
	case store.ContainerCreated:
		return "Created"
	default:
		return fmt.Sprintf("Exited (%d) %s ago", c.ExitCode, humanDuration(time.Since(c.FinishedAt)))
	}
}

func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	case s < 3600:
		if m := s / 60; m > 1 {
			return fmt.Sprintf("%d minutes", m)
		}
		return "About a minute"
	default:
		if h := s / 3600; h > 1 {
			return fmt.Sprintf("%d hours", h)
		}
		return "About an hour"
	}
}
