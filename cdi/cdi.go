// Package cdi applies Container Device Interface devices
// (tags.cncf.io/container-device-interface) to a container's OCI spec
// before it is written: device nodes, mounts, environment and hooks that
// a vendor's spec file (/etc/cdi, /var/run/cdi) gives a device such as
// "nvidia.com/gpu=0". The CRI (CDIDevices and cdi.k8s.io/ annotations) and
// the Docker API (--device vendor.com/class=name, --gpus) both come here
// through the containers service, so neither front knows of CDI.
package cdi

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	cdilib "tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// DefaultSpecDirs are where vendors put their spec files, in rising
// priority (a device named in both is the later one's).
var DefaultSpecDirs = []string{"/etc/cdi", "/var/run/cdi"}

// Registry is the devices the spec files in its directories name, read
// again when a file there changes.
type Registry struct {
	cache *cdilib.Cache
	dirs  []string
}

// New watches dirs for spec files. A missing directory is no error (it
// may be made later); a broken file is reported by the inject that needs it.
func New(dirs []string, log *slog.Logger) (*Registry, error) {
	c, err := cdilib.NewCache(cdilib.WithSpecDirs(dirs...), cdilib.WithAutoRefresh(true))
	if err != nil {
		return nil, fmt.Errorf("CDI spec dirs %v: %w", dirs, err)
	}
	if n := len(c.ListDevices()); n > 0 {
		log.Info("CDI devices", "devices", n, "dirs", dirs)
	}
	return &Registry{cache: c, dirs: dirs}, nil
}

// Devices lists the qualified names of the devices the registry knows.
func (r *Registry) Devices() []string { return r.cache.ListDevices() }

// Inject applies devices ("vendor.com/class=name") to spec. A name that is
// not qualified, or that no spec file names, is an invalid argument naming
// it, with the spec files that could not be read and why.
func (r *Registry) Inject(spec *specs.Spec, devices []string) error {
	if len(devices) == 0 {
		return nil
	}
	for _, d := range devices {
		if !parser.IsQualifiedName(d) {
			return fmt.Errorf("CDI device %q: not a qualified name (vendor.com/class=name): %w", d, errdefs.ErrInvalidArgument)
		}
	}
	unresolved, err := r.cache.InjectDevices(spec, slices.Compact(slices.Sorted(slices.Values(devices)))...)
	if len(unresolved) > 0 {
		return fmt.Errorf("CDI device %s: no spec file in %s names it%s: %w", strings.Join(unresolved, ", "),
			strings.Join(r.dirs, ", "), r.specErrors(), errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return fmt.Errorf("CDI devices %s: %v%s: %w", strings.Join(devices, ", "), err, r.specErrors(), errdefs.ErrInvalidArgument)
	}
	return nil
}

// specErrors says which spec files are broken, and how.
func (r *Registry) specErrors() string {
	var out []string
	for file, errs := range r.cache.GetErrors() {
		for _, e := range errs {
			out = append(out, file+": "+e.Error())
		}
	}
	if len(out) == 0 {
		return ""
	}
	slices.Sort(out)
	return " (spec files that could not be read: " + strings.Join(out, "; ") + ")"
}

// FromAnnotations are the devices CRI annotations name (cdi.k8s.io/...,
// as device plugins set them).
func FromAnnotations(annotations map[string]string) ([]string, error) {
	_, devices, err := cdilib.ParseAnnotations(annotations)
	if err != nil {
		return nil, fmt.Errorf("annotation %s...: %v: %w", cdilib.AnnotationPrefix, err, errdefs.ErrInvalidArgument)
	}
	return devices, nil
}

// IsDevice says whether name is a qualified CDI device name.
func IsDevice(name string) bool { return parser.IsQualifiedName(name) }
