package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// Connecting a container to more user networks (`docker network
// connect`): each an interface of its own in its pod (eth1, ...), recorded
// under <dir>/attachments/<id>.json before the next call returns.

// netAttachment is a user network a container was connected to after it
// was made: its interface, its address there, its aliases.
type netAttachment struct {
	Network string   `json:"network"`
	IfName  string   `json:"ifName"`
	IP      string   `json:"ip"`
	Aliases []string `json:"aliases,omitempty"`
}

func (e *Engine) attachmentsFile(id string) string {
	return filepath.Join(e.dir, "attachments", id+".json")
}

// attachmentsOf maps network IDs to container id's attachments.
func (e *Engine) attachmentsOf(id string) map[string]netAttachment {
	m := map[string]netAttachment{}
	if b, err := os.ReadFile(e.attachmentsFile(id)); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

func (e *Engine) saveAttachments(id string, m map[string]netAttachment) error {
	if len(m) == 0 {
		if err := os.Remove(e.attachmentsFile(id)); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(e.attachmentsFile(id)), 0o700); err != nil {
		return err
	}
	tmp := e.attachmentsFile(id) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, e.attachmentsFile(id))
}

// Connect is `docker network connect NET CONTAINER`: the running or
// created container gets one more interface (eth1, ...) on the user
// network, without a default route (that stays on its first network),
// and its peers there learn its names.
func (e *Engine) Connect(ctx context.Context, network, container string, aliases []string) error {
	e.netMu.Lock()
	defer e.netMu.Unlock()
	n, c, err := e.networkAndContainer(network, container)
	if err != nil {
		return err
	}
	primary, _ := e.FindNetwork(ConfigOf(c).NetworkName())
	switch {
	case n.Builtin():
		return fmt.Errorf("connecting to the built-in network %s is not supported: connect to a user network: %w", n.Name, errdefs.ErrUnimplemented)
	case primary.Name == "host" || primary.Name == "none":
		return fmt.Errorf("container %s is on network %s: it cannot be connected to another: %w", c.Name, primary.Name, errdefs.ErrInvalidArgument)
	case primary.ID == n.ID:
		return fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.Name, n.Name, errdefs.ErrAlreadyExists)
	}
	atts := e.attachmentsOf(c.ID)
	if _, ok := atts[n.ID]; ok {
		return fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.Name, n.Name, errdefs.ErrAlreadyExists)
	}
	ifname := freeIfName(atts)
	conflist, err := cni.WithoutDefaultRoute(n.Conflist)
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	ips, err := e.sandboxes.Connect(ctx, c.SandboxID, conflist, ifname)
	if err != nil {
		return err
	}
	a := netAttachment{Network: n.Name, IfName: ifname, Aliases: aliases}
	if len(ips) > 0 {
		a.IP = ips[0]
	}
	atts[n.ID] = a
	if err := e.saveAttachments(c.ID, atts); err != nil {
		_ = e.sandboxes.Disconnect(ctx, c.SandboxID, ifname)
		return err
	}
	e.syncHosts(n)
	e.events.publish("network", "connect", n.ID, map[string]string{"name": n.Name, "container": c.ID, "type": "bridge"})
	return nil
}

// freeIfName is the first ethN (N ≥ 1) none of atts has.
func freeIfName(atts map[string]netAttachment) string {
	for i := 1; ; i++ {
		candidate := fmt.Sprintf("eth%d", i)
		taken := false
		for _, a := range atts {
			taken = taken || a.IfName == candidate
		}
		if !taken {
			return candidate
		}
	}
}

// Disconnect is `docker network disconnect NET CONTAINER`, for a network
// the container was connected to (its first one stays).
func (e *Engine) Disconnect(ctx context.Context, network, container string) error {
	e.netMu.Lock()
	defer e.netMu.Unlock()
	n, c, err := e.networkAndContainer(network, container)
	if err != nil {
		return err
	}
	atts := e.attachmentsOf(c.ID)
	a, ok := atts[n.ID]
	if !ok {
		if p, err := e.FindNetwork(ConfigOf(c).NetworkName()); err == nil && p.ID == n.ID {
			return fmt.Errorf("disconnecting %s from %s, the network it was created on, is not supported: %w", c.Name, n.Name, errdefs.ErrUnimplemented)
		}
		return fmt.Errorf("container %s is not connected to network %s: %w", c.Name, n.Name, errdefs.ErrNotFound)
	}
	if err := e.sandboxes.Disconnect(context.WithoutCancel(ctx), c.SandboxID, a.IfName); err != nil {
		return err
	}
	delete(atts, n.ID)
	if err := e.saveAttachments(c.ID, atts); err != nil {
		return err
	}
	e.syncHosts(n)
	e.events.publish("network", "disconnect", n.ID, map[string]string{"name": n.Name, "container": c.ID, "type": "bridge"})
	return nil
}

// networkAndContainer finds a network and a container. Call with netMu held.
func (e *Engine) networkAndContainer(network, container string) (Network, store.Container, error) {
	n, err := e.FindNetwork(network)
	if err != nil {
		return n, store.Container{}, err
	}
	c, err := e.Lookup(container)
	return n, c, err
}
