package dockerapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/berth-runtime/berth/engine"
	"github.com/berth-runtime/berth/internal/store"
)

// inspectContainer is `docker inspect CONTAINER`.
func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	b := engine.ConfigOf(c)
	config, hostConfig := s.effectiveConfig(c, b)
	var health any
	if h := s.engine.Health(c.ID); h != nil {
		health = healthJSON(h)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"Id": c.ID, "Name": "/" + c.Name, "Created": timestamp(c.CreatedAt), "Image": c.ImageID, "RestartCount": c.RestartCount,
		"Path": engine.Command(c), "Args": []string{}, "Driver": "overlay2", "LogPath": c.LogPath,
		"State": map[string]any{
			"Status": engine.State(c), "Running": c.State == store.ContainerRunning, "Paused": c.Paused, "Restarting": false,
			"OOMKilled": c.Reason == "OOMKilled", "Dead": false, "Pid": c.Pid, "ExitCode": c.ExitCode, "Error": c.Message,
			"StartedAt": timestamp(c.StartedAt), "FinishedAt": timestamp(c.FinishedAt), "Health": health,
		},
		"Config":          config,
		"HostConfig":      hostConfig,
		"NetworkSettings": networkSettingsJSON(s.engine.NetworkSettings(c, b), s.engine.PortMap(c, b)),
		"Mounts":          mountsJSON(s.engine.Mounts(c, b)),
	})
}

// timestamp is a time as inspect shows it; the zero time as Go's, as dockerd does.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// effectiveConfig is inspect's Config and HostConfig: the request as the
// client sent it (every field, known to Berth or not), the image's config
// under it where the request left a field empty, as dockerd shows them.
func (s *Server) effectiveConfig(c store.Container, b engine.Config) (config, hostConfig map[string]any) {
	config, hostConfig = map[string]any{}, map[string]any{}
	var req map[string]json.RawMessage
	_ = json.Unmarshal(c.Config, &req)
	for k, v := range req {
		switch k {
		case "HostConfig":
			_ = json.Unmarshal(v, &hostConfig)
		case "NetworkingConfig":
		default:
			config[k] = v
		}
	}
	eff := s.engine.Resolve(c, b)
	config["Image"], config["Hostname"], config["Env"], config["Cmd"], config["Entrypoint"] = c.ImageRef, b.Hostname, eff.Env, eff.Cmd, eff.Entrypoint
	config["WorkingDir"], config["User"], config["Labels"] = eff.WorkingDir, eff.User, eff.Labels
	config["StopSignal"], config["Tty"], config["OpenStdin"] = eff.StopSignal, b.Tty, b.OpenStdin
	config["AttachStdin"], config["AttachStdout"], config["AttachStderr"] = false, !b.OpenStdin, !b.OpenStdin
	if b.HostConfig.NetworkMode == "" {
		hostConfig["NetworkMode"] = "bridge"
	} else {
		hostConfig["NetworkMode"] = b.HostConfig.NetworkMode
	}
	hostConfig["Runtime"] = "berth"
	// docker-py's run() reads the log driver to know it may read logs back.
	hostConfig["LogConfig"] = map[string]any{"Type": "json-file", "Config": map[string]string{}}
	hostConfig["RestartPolicy"] = map[string]any{"Name": b.Policy(), "MaximumRetryCount": b.HostConfig.RestartPolicy.MaximumRetryCount}
	return config, hostConfig
}

// mountsJSON is inspect's Mounts.
func mountsJSON(ms []engine.MountPoint) []map[string]any {
	out := []map[string]any{}
	for _, m := range ms {
		j := map[string]any{"Type": m.Type, "Source": m.Source, "Destination": m.Destination, "RW": m.RW, "Mode": "", "Propagation": ""}
		switch m.Type {
		case "volume":
			j["Name"], j["Driver"] = m.Name, "local"
		case "bind":
			j["Propagation"] = "rprivate"
		}
		out = append(out, j)
	}
	return out
}

// networkSettingsJSON is inspect's NetworkSettings: the container's
// networks, its address on bridge at the top as dockerd shows it.
func networkSettingsJSON(eps []engine.EndpointSettings, ports map[string][]engine.PortBinding) map[string]any {
	networks := map[string]any{}
	for _, ep := range eps {
		networks[ep.Network.Name] = map[string]any{"NetworkID": ep.Network.ID, "EndpointID": ep.EndpointID, "IPAddress": ep.IPAddress,
			"Aliases": nonNil(ep.Aliases), "Gateway": ep.Gateway, "IPPrefixLen": ep.IPPrefixLen, "MacAddress": ""}
	}
	settings := map[string]any{"Networks": networks, "Ports": ports}
	if eps[0].Network.Name == "bridge" {
		settings["IPAddress"] = eps[0].IPAddress
	}
	return settings
}

// healthJSON is inspect's State.Health.
func healthJSON(h *engine.Health) map[string]any {
	logs := []map[string]any{}
	for _, r := range h.Log {
		logs = append(logs, map[string]any{"Start": r.Start.Format(time.RFC3339Nano), "End": r.End.Format(time.RFC3339Nano),
			"ExitCode": r.ExitCode, "Output": r.Output})
	}
	return map[string]any{"Status": h.Status, "FailingStreak": h.FailingStreak, "Log": logs}
}
