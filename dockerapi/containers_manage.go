package dockerapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci"
)

// renameContainer is `docker rename OLD NEW`.
func (s *Server) renameContainer(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	name := strings.TrimPrefix(r.URL.Query().Get("name"), "/")
	if !validName.MatchString(name) {
		writeError(w, fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument))
		return
	}
	if name == c.Name {
		writeError(w, fmt.Errorf("Renaming a container with the same name as its current name: %w", errdefs.ErrInvalidArgument))
		return
	}
	if err := s.containers.Rename(c.ID, name); err != nil {
		writeError(w, err)
		return
	}
	s.events.publish("container", "rename", c.ID, map[string]string{"name": name, "oldName": "/" + c.Name, "image": c.ImageRef})
	w.WriteHeader(http.StatusNoContent)
}

// updateContainer is `docker update`: the cgroup limits of a running or
// created container, and its restart policy (kept in its record, as the
// create request said it).
func (s *Server) updateContainer(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	var u struct {
		Memory, MemorySwap, NanoCpus, CpuShares, CpuQuota, CpuPeriod int64
		PidsLimit                                                    *int64
		CpusetCpus, CpusetMems                                       string
		RestartPolicy                                                *struct {
			Name              string
			MaximumRetryCount int
		}
	}
	if err := decodeBody(r, &u); err != nil {
		writeError(w, err)
		return
	}
	if p := u.RestartPolicy; p != nil {
		switch p.Name {
		case "", "no", "always", "on-failure", "unless-stopped":
		default:
			writeError(w, fmt.Errorf("invalid restart policy %q: %w", p.Name, errdefs.ErrInvalidArgument))
			return
		}
		if c.Annotations[annotationAutoRemove] == "true" && p.Name != "" && p.Name != "no" {
			writeError(w, fmt.Errorf("Restart policy cannot be updated because AutoRemove is enabled for the container: %w", errdefs.ErrInvalidArgument))
			return
		}
	}
	res := oci.Resources{MemoryLimit: u.Memory, MemorySwapLimit: u.MemorySwap, CPUShares: u.CpuShares,
		CPUQuota: u.CpuQuota, CPUPeriod: u.CpuPeriod, CpusetCpus: u.CpusetCpus, CpusetMems: u.CpusetMems}
	if u.NanoCpus > 0 {
		res.CPUPeriod, res.CPUQuota = 100000, u.NanoCpus*100000/1e9
	}
	if u.PidsLimit != nil {
		res.PidsLimit = *u.PidsLimit
	}
	var warnings []string
	limits := u.Memory != 0 || u.MemorySwap != 0 || u.NanoCpus != 0 || u.CpuShares != 0 || u.CpuQuota != 0 || u.CpuPeriod != 0 ||
		u.PidsLimit != nil || u.CpusetCpus != "" || u.CpusetMems != ""
	if limits {
		if c.State != store.ContainerRunning && c.State != store.ContainerCreated {
			writeError(w, fmt.Errorf("Cannot update container %s: the container is not running: %w", c.ID, errdefs.ErrFailedPrecondition))
			return
		}
		if err := s.containers.Update(context.WithoutCancel(r.Context()), c.ID, res); err != nil {
			writeError(w, err)
			return
		}
	}
	// The record says what inspect shows and what a restart builds from.
	var req map[string]any
	_ = json.Unmarshal(c.Config, &req)
	if req == nil {
		req = map[string]any{}
	}
	hc, _ := req["HostConfig"].(map[string]any)
	if hc == nil {
		hc = map[string]any{}
	}
	set := func(k string, v int64) {
		if v != 0 {
			hc[k] = v
		}
	}
	set("Memory", u.Memory)
	set("MemorySwap", u.MemorySwap)
	set("NanoCpus", u.NanoCpus)
	set("CpuShares", u.CpuShares)
	set("CpuQuota", u.CpuQuota)
	set("CpuPeriod", u.CpuPeriod)
	if u.PidsLimit != nil {
		hc["PidsLimit"] = *u.PidsLimit
	}
	if u.RestartPolicy != nil {
		hc["RestartPolicy"] = u.RestartPolicy
	}
	req["HostConfig"] = hc
	raw, err := json.Marshal(req)
	if err == nil {
		err = s.containers.SetConfig(c.ID, raw)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"Warnings": nonNil(warnings)})
}

// pruneContainers is `docker container prune`: every Docker container that
// is not running (filters: until, label).
func (s *Server) pruneContainers(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	until := unixParam(strings.Join(filters["until"], ""))
	if d, err := time.ParseDuration(strings.Join(filters["until"], "")); err == nil {
		until = time.Now().Add(-d)
	}
	all, err := s.containers.ListOwned(Owner)
	if err != nil {
		writeError(w, err)
		return
	}
	deleted := []string{}
	var reclaimed uint64
	for _, c := range all {
		if c.State == store.ContainerRunning || !until.IsZero() && c.CreatedAt.After(until) ||
			len(filters["label"]) > 0 && !matchFilters(c, map[string][]string{"label": filters["label"]}) {
			continue
		}
		if u, err := s.images.Snapshots().WritableUsage(c.ID); err == nil {
			reclaimed += u.Bytes
		}
		if err := s.remove(context.WithoutCancel(r.Context()), c); err != nil {
			s.log.Warn("container prune", "container", c.ID, "error", err)
			continue
		}
		deleted = append(deleted, c.ID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed})
}
