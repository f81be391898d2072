package containers

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/berth-runtime/berth/oci/linux"
)

// Handler is a runtime handler and what its runtime can do, as the CRI
// Status reports it to kubelet.
type Handler struct {
	Name string
	// RecursiveReadOnly: the runtime implements the "rro" mount option.
	RecursiveReadOnly bool
	// UserNamespaces: pods of this handler may have user namespaces of
	// their own — its runtime joins one by path, and this kernel idmaps
	// overlay mounts (berthd idmaps the rootfs; the runtime need not).
	UserNamespaces bool
}

type handlerCache struct {
	once sync.Once
	list []Handler
}

// Handlers lists the runtime handlers, the default first under the name ""
// (as kubelet looks it up), each with what its runtime's `features` claims.
func (s *Service) Handlers(ctx context.Context) []Handler {
	s.handlers.once.Do(func() {
		names := make([]string, 0, len(s.cfg.Runtimes))
		for n := range s.cfg.Runtimes {
			names = append(names, n)
		}
		slices.Sort(names)
		probe := func(r Runtime) Handler {
			h := Handler{Name: r.Name}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, r.Path, "features").Output()
			var f struct {
				MountOptions []string `json:"mountOptions"`
				Linux        struct {
					Namespaces []string `json:"namespaces"`
				} `json:"linux"`
			}
			if err == nil && json.Unmarshal(out, &f) == nil {
				h.RecursiveReadOnly = slices.Contains(f.MountOptions, "rro")
				h.UserNamespaces = slices.Contains(f.Linux.Namespaces, "user") && linux.IDMappedOverlay()
			}
			return h
		}
		if def, ok := s.cfg.Runtimes[s.cfg.DefaultRuntime]; ok {
			h := probe(def)
			h.Name = ""
			s.handlers.list = append(s.handlers.list, h)
		}
		for _, n := range names {
			h := probe(s.cfg.Runtimes[n])
			h.Name = n
			s.handlers.list = append(s.handlers.list, h)
		}
	})
	return s.handlers.list
}

// SupportsRRO says whether a handler's runtime takes recursive read-only mounts.
func (s *Service) SupportsRRO(ctx context.Context, handler string) bool {
	return s.handler(ctx, handler).RecursiveReadOnly
}

// handler finds a handler by the name a request gives ("" the default).
func (s *Service) handler(ctx context.Context, name string) Handler {
	for _, h := range s.Handlers(ctx) {
		if h.Name == name || name == s.cfg.DefaultRuntime && h.Name == "" {
			return h
		}
	}
	return Handler{Name: name}
}
