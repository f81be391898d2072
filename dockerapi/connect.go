package dockerapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// netAttachment is a user network a container was connected to after it
// was made: its interface, its address there, its aliases.
type netAttachment struct {
	Network string   `json:"network"`
	IfName  string   `json:"ifName"`
	IP      string   `json:"ip"`
	Aliases []string `json:"aliases,omitempty"`
}

func (s *Server) attachmentsFile(id string) string {
	return filepath.Join(s.dir, "attachments", id+".json")
}

// attachmentsOf maps network IDs to container id's attachments.
func (s *Server) attachmentsOf(id string) map[string]netAttachment {
	m := map[string]netAttachment{}
	if b, err := os.ReadFile(s.attachmentsFile(id)); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

func (s *Server) saveAttachments(id string, m map[string]netAttachment) error {
	if len(m) == 0 {
		if err := os.Remove(s.attachmentsFile(id)); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.attachmentsFile(id)), 0o700); err != nil {
		return err
	}
	tmp := s.attachmentsFile(id) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.attachmentsFile(id))
}

// networkAndContainer finds the request's network (by the path) and the
// container its body names. Call with netMu held.
func (s *Server) networkAndContainer(r *http.Request, container string) (dockerNetwork, store.Container, error) {
	n, err := s.findNetwork(r.PathValue("id"))
	if err != nil {
		return n, store.Container{}, err
	}
	c, err := s.lookup(container)
	return n, c, err
}

// connectNetwork is `docker network connect NET CONTAINER`: the running
// or created container gets one more interface (eth1, ...) on the user
// network, without a default route (that stays on its first network),
// and its peers there learn its names.
func (s *Server) connectNetwork(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Container      string
		EndpointConfig *struct{ Aliases []string }
	}
	if err := decodeBody(r, &b); err != nil {
		writeError(w, err)
		return
	}
	s.netMu.Lock()
	defer s.netMu.Unlock()
	n, c, err := s.networkAndContainer(r, b.Container)
	if err != nil {
		writeError(w, err)
		return
	}
	var cb createBody
	_ = json.Unmarshal(c.Config, &cb)
	primary, _ := s.findNetwork(networkOf(cb))
	switch {
	case n.builtin():
		writeError(w, fmt.Errorf("connecting to the built-in network %s is not supported: connect to a user network: %w", n.Name, errdefs.ErrUnimplemented))
		return
	case primary.Name == "host" || primary.Name == "none":
		writeError(w, fmt.Errorf("container %s is on network %s: it cannot be connected to another: %w", c.Name, primary.Name, errdefs.ErrInvalidArgument))
		return
	case primary.ID == n.ID:
		writeError(w, fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.Name, n.Name, errdefs.ErrAlreadyExists))
		return
	}
	atts := s.attachmentsOf(c.ID)
	if _, ok := atts[n.ID]; ok {
		writeError(w, fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.Name, n.Name, errdefs.ErrAlreadyExists))
		return
	}
	ifname := ""
	for i := 1; ifname == ""; i++ {
		candidate := fmt.Sprintf("eth%d", i)
		taken := false
		for _, a := range atts {
			taken = taken || a.IfName == candidate
		}
		if !taken {
			ifname = candidate
		}
	}
	conflist, err := cni.WithoutDefaultRoute(n.Conflist)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx := context.WithoutCancel(r.Context())
	ips, err := s.sandboxes.Connect(ctx, c.SandboxID, conflist, ifname)
	if err != nil {
		writeError(w, err)
		return
	}
	a := netAttachment{Network: n.Name, IfName: ifname}
	if len(ips) > 0 {
		a.IP = ips[0]
	}
	if b.EndpointConfig != nil {
		a.Aliases = b.EndpointConfig.Aliases
	}
	atts[n.ID] = a
	if err := s.saveAttachments(c.ID, atts); err != nil {
		_ = s.sandboxes.Disconnect(ctx, c.SandboxID, ifname)
		writeError(w, err)
		return
	}
	s.syncHosts(n)
	s.events.publish("network", "connect", n.ID, map[string]string{"name": n.Name, "container": c.ID, "type": "bridge"})
	w.WriteHeader(http.StatusOK)
}

// disconnectNetwork is `docker network disconnect NET CONTAINER`, for a
// network the container was connected to (its first one stays).
func (s *Server) disconnectNetwork(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Container string
		Force     bool
	}
	if err := decodeBody(r, &b); err != nil {
		writeError(w, err)
		return
	}
	s.netMu.Lock()
	defer s.netMu.Unlock()
	n, c, err := s.networkAndContainer(r, b.Container)
	if err != nil {
		writeError(w, err)
		return
	}
	atts := s.attachmentsOf(c.ID)
	a, ok := atts[n.ID]
	if !ok {
		var cb createBody
		_ = json.Unmarshal(c.Config, &cb)
		if p, err := s.findNetwork(networkOf(cb)); err == nil && p.ID == n.ID {
			writeError(w, fmt.Errorf("disconnecting %s from %s, the network it was created on, is not supported: %w", c.Name, n.Name, errdefs.ErrUnimplemented))
			return
		}
		writeError(w, fmt.Errorf("container %s is not connected to network %s: %w", c.Name, n.Name, errdefs.ErrNotFound))
		return
	}
	if err := s.sandboxes.Disconnect(context.WithoutCancel(r.Context()), c.SandboxID, a.IfName); err != nil {
		writeError(w, err)
		return
	}
	delete(atts, n.ID)
	if err := s.saveAttachments(c.ID, atts); err != nil {
		writeError(w, err)
		return
	}
	s.syncHosts(n)
	s.events.publish("network", "disconnect", n.ID, map[string]string{"name": n.Name, "container": c.ID, "type": "bridge"})
	w.WriteHeader(http.StatusOK)
}
