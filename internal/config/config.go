// Package config is berthd's configuration: embedded defaults, overridden by
// a TOML file (missing default file = defaults), overridden by flags.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where berthd looks for its config file.
const DefaultPath = "/etc/berth/config.toml"

// Config is berthd's configuration.
type Config struct {
	// CRISocket is the unix socket of the CRI gRPC server.
	CRISocket string `toml:"cri_socket"`
	// DockerSocket is the unix socket of the Docker Engine API ("" for
	// none): 0660, the docker group's when there is one.
	DockerSocket string `toml:"docker_socket"`
	// Root holds persistent state: meta.db, content/, snapshots/.
	Root string `toml:"root"`
	// State holds runtime state: shim sockets, pinned namespaces, bundles.
	State string `toml:"state"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	// LogFormat is text (logfmt) or json.
	LogFormat string `toml:"log_format"`
	// MetricsAddress serves Prometheus metrics at /metrics (host:port); "" turns them off.
	MetricsAddress string `toml:"metrics_address"`
	// StreamingAddress is where the CRI streaming server (exec, attach,
	// port-forward) listens; port 0 picks a free one.
	StreamingAddress string `toml:"streaming_address"`
	// RegistryConfigDir holds <registry>/hosts.toml and <registry>/*.crt:
	// mirrors, CAs and TLS settings per registry, as containerd reads them.
	RegistryConfigDir string `toml:"registry_config_dir"`
	// RegistryAuths are credentials per registry host (host[:port]), for
	// pulls that bring none (kubelet sends the pod's image pull secrets).
	RegistryAuths map[string]RegistryAuth `toml:"registry_auths"`
	// PinnedImages are never removed by the kubelet's image garbage collection.
	PinnedImages []string `toml:"pinned_images"`
	// ShimPath is the berth-shim binary; "" finds it beside berthd, then on PATH.
	ShimPath string `toml:"shim_path"`
	// LazyPulls mounts the eStargz layers of an image (the format BuildKit,
	// nerdctl and containerd's stargz snapshotter write) over FUSE instead
	// of unpacking them: its containers start before the layers are
	// fetched. Other layers are pulled whole either way.
	LazyPulls bool `toml:"lazy_pulls"`
	// LazyFSPath is the berth-lazyfs binary that serves those layers; ""
	// finds it beside berthd, then on PATH.
	LazyFSPath string `toml:"lazyfs_path"`
	// DefaultRuntime is the handler used when a pod names none.
	DefaultRuntime string `toml:"default_runtime"`
	// Runtimes maps CRI runtime handlers to OCI runtime binaries.
	Runtimes map[string]Runtime `toml:"runtimes"`
	// CNIConfDir holds the pod network's config: the first .conflist, .conf
	// or .json by name. None there: berthd's default bridge network.
	CNIConfDir string `toml:"cni_conf_dir"`
	// CNIBinDirs are searched in order for CNI plugin binaries.
	CNIBinDirs []string `toml:"cni_bin_dirs"`
	// CNIDefaultSubnet is the default network's IPv4 range, until kubelet
	// sends a pod CIDR.
	CNIDefaultSubnet string `toml:"cni_default_subnet"`
	// CDISpecDirs hold the Container Device Interface spec files that name
	// devices (CRI CDIDevices, docker --device vendor.com/class=name), in
	// rising priority; empty turns CDI off.
	CDISpecDirs []string `toml:"cdi_spec_dirs"`
	// ShimTimeout bounds each call to a shim that brings no deadline of its
	// own (a CRI request's, ExecSync's timeout); a shim that misses it is
	// reported, and stop and remove go on without it.
	ShimTimeout Duration `toml:"shim_timeout"`
	// MaxLayerDiskFraction bounds what one image layer may unpack to: that
	// fraction of the space free on the root's filesystem when its unpack
	// starts (0 turns the bound off). A registry then cannot fill the disk.
	MaxLayerDiskFraction float64 `toml:"max_layer_disk_fraction"`
	// DebugAddress serves Go's pprof (/debug/pprof/) when set: host:port,
	// loopback only, or a unix socket path. Off by default.
	DebugAddress string `toml:"debug_address"`
	// NRI configures Node Resource Interface plugins, as containerd does.
	NRI NRI `toml:"nri"`
	// BuildKit serves BuildKit on the Docker socket (/grpc, /session):
	// docker buildx's docker driver, the docker CLI's default build, compose
	// build. Its cache lives under Root/buildkit; it starts on the first build.
	BuildKit bool `toml:"buildkit"`
	// BuildKitRuntime is the runtime handler BuildKit's RUN steps run
	// under ("" for the default handler).
	BuildKitRuntime string `toml:"buildkit_runtime"`
	// BuildKitIdleStop stops BuildKit once nothing used it for this long
	// (its memory given back; the next build starts it again); 0 never.
	BuildKitIdleStop Duration `toml:"buildkit_idle_stop"`
}

// NRI is the [nri] table: where NRI plugins connect or are found, and
// how long each may take.
type NRI struct {
	// Enable turns NRI on (the default, as in containerd 2).
	Enable bool `toml:"enable"`
	// SocketPath is where external plugins connect; "" accepts none.
	SocketPath string `toml:"socket_path"`
	// PluginPath holds pre-registered plugins berthd starts (NN-name
	// executables); PluginConfigPath their configuration (NN-name.conf).
	PluginPath       string `toml:"plugin_path"`
	PluginConfigPath string `toml:"plugin_config_path"`
	// PluginRegistrationTimeout bounds a plugin's registration;
	// PluginRequestTimeout each event it is sent and its synchronization
	// with every pod and container (the NRI library uses one bound for
	// both: 5 s where containerd's 2 s drops a plugin that takes 2 s to
	// take in a full node). A plugin that misses one is disconnected, so a
	// hung plugin costs one request that long, once.
	PluginRegistrationTimeout Duration `toml:"plugin_registration_timeout"`
	PluginRequestTimeout      Duration `toml:"plugin_request_timeout"`
}

// Duration is a time.Duration written as "10s" in the file.
type Duration time.Duration

// UnmarshalText reads "10s", "1m30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as Go prints it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// RegistryAuth is one registry host's credentials: username and password,
// auth (base64 of user:password, as in Docker's config.json), or tokens.
type RegistryAuth struct {
	Username      string `toml:"username,omitempty"`
	Password      string `toml:"password,omitempty"`
	Auth          string `toml:"auth,omitempty"`
	IdentityToken string `toml:"identity_token,omitempty"`
	RegistryToken string `toml:"registry_token,omitempty"`
}

// Runtime is one runtime handler.
type Runtime struct {
	// Path is the binary; "" finds berth-runtime beside berthd, others on PATH by handler name.
	Path string `toml:"path"`
}

// Default returns the embedded defaults.
func Default() Config {
	return Config{
		CRISocket:         "/run/berth/berth.sock",
		DockerSocket:      "/run/berth/docker.sock",
		Root:              "/var/lib/berth",
		State:             "/run/berth",
		LogLevel:          "info",
		LogFormat:         "text",
		MetricsAddress:    "127.0.0.1:9324",
		StreamingAddress:  "127.0.0.1:0",
		RegistryConfigDir: "/etc/berth/certs.d",
		DefaultRuntime:    "berth",
		Runtimes: map[string]Runtime{
			"berth": {}, "runc": {}, "crun": {},
		},
		CNIConfDir:           "/etc/cni/net.d",
		CNIBinDirs:           []string{"/opt/cni/bin", "/usr/lib/cni"},
		CNIDefaultSubnet:     "10.88.0.0/16",
		CDISpecDirs:          []string{"/etc/cdi", "/var/run/cdi"},
		ShimTimeout:          Duration(10 * time.Second),
		MaxLayerDiskFraction: 0.9,
		LazyPulls:            true,
		BuildKit:             true,
		BuildKitIdleStop:     Duration(5 * time.Minute),
		NRI: NRI{
			Enable: true, SocketPath: "/var/run/nri/nri.sock",
			PluginPath: "/opt/nri/plugins", PluginConfigPath: "/etc/nri/conf.d",
			PluginRegistrationTimeout: Duration(5 * time.Second), PluginRequestTimeout: Duration(5 * time.Second),
		},
	}
}

// Load reads path over the defaults. A missing file is an error only when
// the user named it; unknown keys and bad values are always errors, naming
// the key and its line.
func Load(path string, named bool) (Config, error) {
	c := Default()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !named {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return c, fmt.Errorf("config %s:%d: %s", path, perr.Position.Line, perr.Message)
		}
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var msgs []string
		for _, k := range und {
			msgs = append(msgs, fmt.Sprintf("config %s:%d: unknown key %s", path, lineOf(string(b), k), k.String()))
		}
		sort.Strings(msgs)
		return c, errors.New(strings.Join(msgs, "\n"))
	}
	if err := c.Validate(); err != nil {
		var ke keyError
		if errors.As(err, &ke) {
			if n := lineOf(string(b), toml.Key{ke.key}); n > 0 {
				return c, fmt.Errorf("config %s:%d: %w", path, n, err)
			}
		}
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// keyError is a bad value, by key.
type keyError struct {
	key string
	err error
}

func (e keyError) Error() string { return e.err.Error() }
func (e keyError) Unwrap() error { return e.err }

func bad(key, format string, args ...any) error {
	return keyError{key: key, err: fmt.Errorf(format, args...)}
}

// lineOf finds the line where key (its last part, under its table) is set;
// 0 when it cannot tell.
func lineOf(text string, key toml.Key) int {
	if len(key) == 0 {
		return 0
	}
	last := key[len(key)-1]
	for i, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		name, _, found := strings.Cut(l, "=")
		if found && strings.Trim(strings.TrimSpace(name), `"`) == last {
			return i + 1
		}
		if strings.HasPrefix(l, "[") && strings.Contains(l, last) && len(key) == 1 {
			return i + 1
		}
	}
	return 0
}

// Validate checks the values.
func (c Config) Validate() error {
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log_level", "log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return bad("log_format", "log_format %q: want text or json", c.LogFormat)
	}
	if c.MetricsAddress != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddress); err != nil {
			return bad("metrics_address", "metrics_address %q: want host:port, or \"\" for none: %w", c.MetricsAddress, err)
		}
	}
	if c.CRISocket == "" || c.Root == "" || c.State == "" {
		return errors.New("cri_socket, root and state must not be empty")
	}
	if c.ShimTimeout <= 0 {
		return bad("shim_timeout", "shim_timeout %v: want a positive duration such as \"10s\"", time.Duration(c.ShimTimeout))
	}
	if c.BuildKitIdleStop < 0 {
		return bad("buildkit_idle_stop", "buildkit_idle_stop %v: want a duration such as \"5m\", or 0 to keep BuildKit running", time.Duration(c.BuildKitIdleStop))
	}
	if c.MaxLayerDiskFraction < 0 || c.MaxLayerDiskFraction > 1 {
		return bad("max_layer_disk_fraction", "max_layer_disk_fraction %v: want a fraction from 0 (no bound) to 1", c.MaxLayerDiskFraction)
	}
	if c.DebugAddress != "" && !strings.HasPrefix(c.DebugAddress, "/") {
		host, _, err := net.SplitHostPort(c.DebugAddress)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return bad("debug_address", "debug_address %q: want a loopback host:port or a unix socket path", c.DebugAddress)
		}
	}
	if c.CNIConfDir == "" || len(c.CNIBinDirs) == 0 {
		return errors.New("cni_conf_dir and cni_bin_dirs must not be empty")
	}
	if _, _, err := net.ParseCIDR(c.CNIDefaultSubnet); err != nil {
		return bad("cni_default_subnet", "cni_default_subnet %q: %w", c.CNIDefaultSubnet, err)
	}
	if c.NRI.PluginRegistrationTimeout <= 0 || c.NRI.PluginRequestTimeout <= 0 {
		return bad("plugin_request_timeout", "[nri] plugin_registration_timeout %v and plugin_request_timeout %v: want positive durations such as \"2s\"",
			time.Duration(c.NRI.PluginRegistrationTimeout), time.Duration(c.NRI.PluginRequestTimeout))
	}
	if _, ok := c.Runtimes[c.DefaultRuntime]; !ok {
		return bad("default_runtime", "default_runtime %q is not in [runtimes]", c.DefaultRuntime)
	}
	return nil
}

// TOML renders c as a config file.
func (c Config) TOML() string {
	var b bytes.Buffer
	b.WriteString("# berthd configuration. Every key is optional; these are the defaults.\n")
	_ = toml.NewEncoder(&b).Encode(c)
	return b.String()
}
