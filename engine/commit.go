package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// CommitRequest is `docker commit [-c CHANGE] [-m MSG] [-a AUTHOR]
// CONTAINER [REPO[:TAG]]`.
type CommitRequest struct {
	Changes              []string
	Comment, Author, Tag string
}

// Commit makes the container's changes a new image.
func (e *Engine) Commit(ctx context.Context, c store.Container, r CommitRequest) (store.Image, error) {
	changes, err := parseChanges(r.Changes)
	if err != nil {
		return store.Image{}, err
	}
	return e.containers.Commit(context.WithoutCancel(ctx), c.ID, images.CommitOptions{
		CreatedBy: ConfigOf(c).commandLine(), Comment: r.Comment, Author: r.Author, Tag: r.Tag, Config: changes,
	})
}

// parseChanges reads docker commit's --change: the Dockerfile instructions
// that change an image's config (CMD, ENTRYPOINT, ENV, LABEL, EXPOSE,
// VOLUME, WORKDIR, USER, STOPSIGNAL), in JSON or shell form.
func parseChanges(lines []string) (func(*v1.Config) error, error) {
	type change func(*v1.Config)
	var all []change
	for _, line := range lines {
		for _, l := range strings.Split(line, "\n") {
			l = strings.TrimSpace(l)
			if l == "" {
				continue
			}
			kw, rest, _ := strings.Cut(l, " ")
			rest = strings.TrimSpace(rest)
			kw = strings.ToUpper(kw)
			bad := func(why string) error {
				return fmt.Errorf("dockerfile parse error on --change %q: %s: %w", l, why, errdefs.ErrInvalidArgument)
			}
			switch kw {
			case "CMD", "ENTRYPOINT":
				args := commandForm(rest)
				if kw == "CMD" {
					all = append(all, func(c *v1.Config) { c.Cmd = args })
				} else {
					all = append(all, func(c *v1.Config) { c.Entrypoint = args })
				}
			case "ENV", "LABEL":
				kvs, err := keyValues(rest, kw == "ENV")
				if err != nil {
					return nil, bad(err.Error())
				}
				if kw == "ENV" {
					all = append(all, func(c *v1.Config) {
						for _, kv := range kvs {
							k, _, _ := strings.Cut(kv, "=")
							kept := c.Env[:0:0]
							for _, e := range c.Env {
								if !strings.HasPrefix(e, k+"=") {
									kept = append(kept, e)
								}
							}
							c.Env = append(kept, kv)
						}
					})
				} else {
					all = append(all, func(c *v1.Config) {
						if c.Labels == nil {
							c.Labels = map[string]string{}
						}
						for _, kv := range kvs {
							k, v, _ := strings.Cut(kv, "=")
							c.Labels[k] = v
						}
					})
				}
			case "EXPOSE", "VOLUME":
				items := commandForm(rest)
				if len(items) > 2 && items[0] == "/bin/sh" {
					items = strings.Fields(rest)
				}
				all = append(all, func(c *v1.Config) {
					for _, it := range items {
						if kw == "EXPOSE" {
							if !strings.Contains(it, "/") {
								it += "/tcp"
							}
							if c.ExposedPorts == nil {
								c.ExposedPorts = map[string]struct{}{}
							}
							c.ExposedPorts[it] = struct{}{}
						} else {
							if c.Volumes == nil {
								c.Volumes = map[string]struct{}{}
							}
							c.Volumes[it] = struct{}{}
						}
					}
				})
			case "WORKDIR", "USER", "STOPSIGNAL":
				if rest == "" {
					return nil, bad(kw + " requires exactly one argument")
				}
				all = append(all, func(c *v1.Config) {
					switch kw {
					case "WORKDIR":
						c.WorkingDir = rest
					case "USER":
						c.User = rest
					default:
						c.StopSignal = rest
					}
				})
			default:
				return nil, bad(kw + " is not an instruction docker commit can change")
			}
		}
	}
	return func(c *v1.Config) error {
		for _, f := range all {
			f(c)
		}
		return nil
	}, nil
}

// commandForm is an instruction's argument in JSON form (["a","b"]), or
// in shell form run by /bin/sh -c.
func commandForm(rest string) []string {
	var args []string
	if strings.HasPrefix(rest, "[") && json.Unmarshal([]byte(rest), &args) == nil {
		return args
	}
	return []string{"/bin/sh", "-c", rest}
}

// keyValues reads "k=v k2=v2" (quotes allowed around values), or for ENV
// the old form "k v".
func keyValues(rest string, envOldForm bool) ([]string, error) {
	if envOldForm && !strings.Contains(strings.Fields(rest + " x")[0], "=") {
		k, v, _ := strings.Cut(rest, " ")
		return []string{k + "=" + strings.TrimSpace(v)}, nil
	}
	var out []string
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		k, v, ok := strings.Cut(rest, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("want KEY=VALUE, got %q", rest)
		}
		if strings.HasPrefix(v, `"`) {
			end := strings.Index(v[1:], `"`)
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in %q", rest)
			}
			out, rest = append(out, k+"="+v[1:end+1]), v[end+2:]
			continue
		}
		val, more, _ := strings.Cut(v, " ")
		out, rest = append(out, k+"="+val), more
	}
	return out, nil
}
