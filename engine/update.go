package engine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci"
)

// UpdateConfig is `docker update`'s request.
type UpdateConfig struct {
	Memory, MemorySwap, NanoCpus, CpuShares, CpuQuota, CpuPeriod int64
	PidsLimit                                                    *int64
	CpusetCpus, CpusetMems                                       string
	RestartPolicy                                                *RestartPolicy
}

// limits says whether u changes any cgroup limit.
func (u UpdateConfig) limits() bool {
	return u.Memory != 0 || u.MemorySwap != 0 || u.NanoCpus != 0 || u.CpuShares != 0 || u.CpuQuota != 0 || u.CpuPeriod != 0 ||
		u.PidsLimit != nil || u.CpusetCpus != "" || u.CpusetMems != ""
}

// Update is `docker update`: the cgroup limits of a running or created
// container, and its restart policy, kept in its record as the create
// request says them (what inspect shows and a restart builds from).
func (e *Engine) Update(ctx context.Context, c store.Container, u UpdateConfig) error {
	if p := u.RestartPolicy; p != nil {
		switch p.Name {
		case "", "no", "always", "on-failure", "unless-stopped":
		default:
			return fmt.Errorf("invalid restart policy %q: %w", p.Name, errdefs.ErrInvalidArgument)
		}
		if c.Annotations[annotationAutoRemove] == "true" && p.Name != "" && p.Name != "no" {
			return fmt.Errorf("Restart policy cannot be updated because AutoRemove is enabled for the container: %w", errdefs.ErrInvalidArgument)
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
	if u.limits() {
		if c.State != store.ContainerRunning && c.State != store.ContainerCreated {
			return fmt.Errorf("Cannot update container %s: the container is not running: %w", c.ID, errdefs.ErrFailedPrecondition)
		}
		if err := e.containers.Update(context.WithoutCancel(ctx), c.ID, res); err != nil {
			return err
		}
	}
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
	if err != nil {
		return err
	}
	return e.containers.SetConfig(c.ID, raw)
}
