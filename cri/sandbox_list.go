package cri

import (
	"context"
	"fmt"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// ListPodSandbox lists sandboxes, filtered by ID (or its prefix), state and labels.
func (s *Server) ListPodSandbox(ctx context.Context, r *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	all, err := s.sandboxes.ListOwned("")
	if err != nil {
		return nil, toStatus(err)
	}
	out := []*runtimeapi.PodSandbox{}
	for _, rec := range all {
		if sandboxMatches(rec, r.GetFilter()) {
			out = append(out, criSandbox(rec))
		}
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

// sandboxMatches is ListPodSandbox's filter.
func sandboxMatches(rec store.Sandbox, f *runtimeapi.PodSandboxFilter) bool {
	if f == nil {
		return true
	}
	return (f.Id == "" || strings.HasPrefix(rec.ID, f.Id)) &&
		(f.State == nil || f.State.State == sandboxState(rec)) &&
		labelsMatch(rec.Labels, f.LabelSelector)
}

// criSandbox is a pod as the CRI lists it.
func criSandbox(rec store.Sandbox) *runtimeapi.PodSandbox {
	return &runtimeapi.PodSandbox{
		Id: rec.ID, Metadata: sandboxMetadata(rec), State: sandboxState(rec), CreatedAt: rec.CreatedAt.UnixNano(),
		Labels: rec.Labels, Annotations: rec.Annotations, RuntimeHandler: rec.RuntimeHandler,
	}
}

func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// sandboxID resolves a full ID or a unique prefix, as crictl users type them.
func (s *Server) sandboxID(idOrPrefix string) (string, error) {
	if rec, err := s.sandboxes.Get(idOrPrefix); err == nil && rec.Owner == "" {
		return rec.ID, nil
	}
	all, err := s.sandboxes.ListOwned("")
	if err != nil {
		return "", err
	}
	ids := make([]string, len(all))
	for i, rec := range all {
		ids[i] = rec.ID
	}
	return matchID("sandbox", idOrPrefix, ids)
}

func matchID(kind, idOrPrefix string, ids []string) (string, error) {
	var found []string
	for _, id := range ids {
		if id == idOrPrefix {
			return id, nil
		}
		if strings.HasPrefix(id, idOrPrefix) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%s %q: %w", kind, idOrPrefix, errdefs.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s ID prefix %q matches %d %ss: %w", kind, idOrPrefix, len(found), kind, errdefs.ErrInvalidArgument)
}
