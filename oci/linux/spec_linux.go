package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/oci/specjson"
)

// LoadSpec reads and checks bundle/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read bundle config: %w", err)
	}
	var s specs.Spec
	if err := (*specjson.Spec)(&s).UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(bundle, "config.json"), err)
	}
	if err := validateSpec(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(bundle, "config.json"), err)
	}
	return &s, nil
}

// validateSpec refuses what this runtime cannot honour yet, naming the field:
// a container that silently runs without its seccomp filter is worse than one that fails.
func validateSpec(s *specs.Spec) error {
	switch {
	case s.Root == nil || s.Root.Path == "":
		return errors.New("root.path is required")
	case s.Process == nil:
		return errors.New("process is required (create runs the container's process)")
	case len(s.Process.Args) == 0:
		return errors.New("process.args must not be empty")
	case s.Linux == nil:
		return errors.New("linux is required")
	}
	newUserNS := false
	for _, n := range s.Linux.Namespaces {
		newUserNS = newUserNS || (n.Type == specs.UserNamespace && n.Path == "")
	}
	hasMaps := len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0
	switch {
	case hasMaps && !newUserNS && !joinsUserNS(s):
		return errors.New("linux.uidMappings: mappings need a user namespace in linux.namespaces")
	case newUserNS && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0):
		return errors.New("linux.namespaces: a new user namespace needs linux.uidMappings and linux.gidMappings")
	}
	if err := unsupportedProcess("process", s.Process); err != nil {
		return err
	}
	l := s.Linux
	switch {
	case l.MountLabel != "":
		return errors.New("linux.mountLabel: SELinux is not supported")
	case l.IntelRdt != nil:
		return errors.New("linux.intelRdt: Intel RDT is not supported")
	case len(l.NetDevices) > 0:
		return errors.New("linux.netDevices: moving host network devices into the container is not supported")
	case l.MemoryPolicy != nil:
		return errors.New("linux.memoryPolicy: NUMA memory policies are not supported")
	}
	if _, err := personality(l.Personality); err != nil {
		return err
	}
	if err := unsupportedResources(l.Resources); err != nil {
		return err
	}
	return checkTimeOffsets(s)
}

// unsupportedProcess refuses what a process asks that this runtime does
// not do; field names the spec's path to it (process, or exec's).
func unsupportedProcess(field string, p *specs.Process) error {
	switch {
	case p.ApparmorProfile != "":
		return fmt.Errorf("%s.apparmorProfile: AppArmor is not supported", field)
	case p.SelinuxLabel != "":
		return fmt.Errorf("%s.selinuxLabel: SELinux is not supported", field)
	case p.Scheduler != nil:
		return fmt.Errorf("%s.scheduler: not supported", field)
	case p.ExecCPUAffinity != nil:
		return fmt.Errorf("%s.execCPUAffinity: not supported", field)
	}
	if _, err := ioPriority(p.IOPriority); err != nil {
		return fmt.Errorf("%s.%w", field, err)
	}
	return nil
}
