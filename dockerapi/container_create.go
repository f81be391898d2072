package dockerapi

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/berth-runtime/berth/engine"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// maxCreateBody bounds a create request (dockerd reads any size; a few
// megabytes hold any real one, seccomp profiles included).
const maxCreateBody = 8 << 20

// createContainer is `docker create` (and the first half of `docker run`).
func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxCreateBody+1))
	if err != nil || len(raw) > maxCreateBody {
		writeError(w, fmt.Errorf("the create request is unreadable or over %d bytes: %w", maxCreateBody, errdefs.ErrInvalidArgument))
		return
	}
	var b engine.Config
	if err := json.Unmarshal(raw, &b); err != nil {
		writeError(w, fmt.Errorf("malformed JSON in the request body: %v: %w", err, errdefs.ErrInvalidArgument))
		return
	}
	if eps := b.NetworkingConfig.EndpointsConfig; len(eps) > 1 && apiBefore(r, 1, 44) {
		// Before 1.44 a container is made on one network, connected to others after.
		writeError(w, fmt.Errorf("Container cannot be connected to network endpoints: %s: %w",
			strings.Join(slices.Sorted(maps.Keys(eps)), ", "), errdefs.ErrInvalidArgument))
		return
	}
	rec, err := s.engine.Create(r.Context(), engine.CreateRequest{Name: r.URL.Query().Get("name"), Config: b, Raw: raw})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"Id": rec.ID, "Warnings": []string{}})
}
