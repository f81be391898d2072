package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Owner marks the pods of RUN steps: no front end lists them.
const Owner = "build"

// Builder builds images with the containers and images services.
type Builder struct {
	containers *containers.Service
	images     *images.Service
	cacheDir   string
	log        *slog.Logger
}

// New returns a builder keeping its step cache under dir.
func New(c *containers.Service, img *images.Service, dir string, log *slog.Logger) *Builder {
	return &Builder{containers: c, images: img, cacheDir: filepath.Join(dir, "cache"), log: log}
}

// Options are one build's.
type Options struct {
	// ContextDir is the build context, unpacked; Dockerfile its path in it.
	ContextDir, Dockerfile string
	Tags                   []string
	BuildArgs              map[string]*string
	Target                 string
	NoCache                bool
	// Out receives the build's progress, a line at a time, as docker prints it.
	Out io.Writer
}

// stage is what a build knows of the stage it is in.
type stage struct {
	name    string
	imageID string
	config  v1.Config
	shell   []string
	args    map[string]string
}

// Build runs the Dockerfile and returns the ID of the image it made.
func (b *Builder) Build(ctx context.Context, o Options) (string, error) {
	if o.Dockerfile == "" {
		o.Dockerfile = "Dockerfile"
	}
	f, err := os.Open(filepath.Join(o.ContextDir, filepath.Clean("/"+o.Dockerfile)))
	if err != nil {
		return "", fmt.Errorf("Cannot locate specified Dockerfile: %s: %w", o.Dockerfile, errdefs.ErrInvalidArgument)
	}
	defer f.Close()
	ast, err := parser.Parse(f)
	if err != nil {
		return "", fmt.Errorf("dockerfile parse error: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	stages, metaArgs, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		return "", fmt.Errorf("dockerfile parse error: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(stages) == 0 {
		return "", fmt.Errorf("the Dockerfile has no FROM: %w", errdefs.ErrInvalidArgument)
	}
	last := len(stages) - 1
	if o.Target != "" {
		last = slices.IndexFunc(stages, func(s instructions.Stage) bool { return strings.EqualFold(s.Name, o.Target) })
		if last < 0 {
			return "", fmt.Errorf("failed to reach build target %s in Dockerfile: %w", o.Target, errdefs.ErrInvalidArgument)
		}
	}
	steps := 0
	for _, s := range stages[:last+1] {
		steps += 1 + len(s.Commands)
	}
	globalArgs := map[string]string{}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			globalArgs[kv.Key] = kv.ValueString()
			if v, ok := o.BuildArgs[kv.Key]; ok && v != nil {
				globalArgs[kv.Key] = *v
			}
		}
	}
	lex := shell.NewLex(ast.EscapeToken)
	done := map[string]*stage{}
	step := 0
	var cur *stage
	for i, st := range stages[:last+1] {
		step++
		base, err := lex.ProcessWordWithMatches(st.BaseName, shell.EnvsFromSlice(kvs(globalArgs)))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(o.Out, "Step %d/%d : %s\n", step, steps, st.SourceCode)
		if cur, err = b.from(ctx, base.Result, done, o.Out); err != nil {
			return "", err
		}
		cur.name = st.Name
		for k, v := range globalArgs {
			cur.args[k] = v
		}
		for _, cmd := range st.Commands {
			step++
			fmt.Fprintf(o.Out, "Step %d/%d : %s\n", step, steps, sourceOf(cmd))
			if err := b.step(ctx, cur, cmd, lex, o, done); err != nil {
				return "", err
			}
			fmt.Fprintf(o.Out, " ---> %s\n", short(cur.imageID))
		}
		done[strings.ToLower(st.Name)] = cur
		done[fmt.Sprint(i)] = cur
	}
	// The config the last steps changed becomes the image's.
	id, _, err := b.commit(ctx, cur, "", nil, o.NoCache, "")
	if err != nil {
		return "", err
	}
	cur.imageID = id
	fmt.Fprintf(o.Out, "Successfully built %s\n", short(id))
	for _, t := range o.Tags {
		if _, err := b.images.Tag(id, t); err != nil {
			return "", err
		}
		named, _ := images.Normalize(t)
		fmt.Fprintf(o.Out, "Successfully tagged %s\n", familiar(named.String()))
	}
	return id, nil
}

// from begins a stage: an earlier stage, or an image (pulled if missing).
func (b *Builder) from(ctx context.Context, base string, done map[string]*stage, out io.Writer) (*stage, error) {
	if prev, ok := done[strings.ToLower(base)]; ok {
		return &stage{imageID: prev.imageID, config: prev.config, shell: prev.shell, args: map[string]string{}}, nil
	}
	if base == "scratch" {
		return nil, fmt.Errorf("FROM scratch is not supported yet: %w", errdefs.ErrUnimplemented)
	}
	img, err := b.images.Resolve(base)
	if errdefs.IsNotFound(err) {
		fmt.Fprintf(out, "Pulling %s\n", base)
		img, err = b.images.Pull(ctx, base, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("FROM %s: %w", base, err)
	}
	cfg, err := images.Config(img)
	if err != nil {
		return nil, err
	}
	var c v1.Config
	raw, _ := json.Marshal(cfg.Config)
	_ = json.Unmarshal(raw, &c)
	fmt.Fprintf(out, " ---> %s\n", short(img.ID))
	return &stage{imageID: img.ID, config: c, shell: []string{"/bin/sh", "-c"}, args: map[string]string{}}, nil
}

// expander substitutes the stage's build args and environment in a word.
func (s *stage) expander(lex *shell.Lex) instructions.SingleWordExpander {
	return func(word string) (string, error) {
		env := kvs(s.args)
		env = append(env, s.config.Env...)
		r, err := lex.ProcessWordWithMatches(word, shell.EnvsFromSlice(env))
		return r.Result, err
	}
}

// step runs one instruction of the stage.
func (b *Builder) step(ctx context.Context, s *stage, cmd instructions.Command, lex *shell.Lex, o Options, done map[string]*stage) error {
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := ex.Expand(s.expander(lex)); err != nil {
			return fmt.Errorf("%s: %w", sourceOf(cmd), err)
		}
	}
	c := &s.config
	switch cmd := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range cmd.Env {
			c.Env = setEnv(c.Env, kv.Key, kv.Value)
		}
	case *instructions.ArgCommand:
		for _, kv := range cmd.Args {
			v := kv.ValueString()
			if bv, ok := o.BuildArgs[kv.Key]; ok && bv != nil {
				v = *bv
			} else if kv.Value == nil {
				if g, ok := s.args[kv.Key]; ok {
					v = g
				}
			}
			s.args[kv.Key] = v
		}
	case *instructions.LabelCommand:
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range cmd.Labels {
			c.Labels[kv.Key] = kv.Value
		}
	case *instructions.WorkdirCommand:
		p := cmd.Path
		if !filepath.IsAbs(p) {
			p = filepath.Join("/", c.WorkingDir, p)
		}
		c.WorkingDir = p
	case *instructions.UserCommand:
		c.User = cmd.User
	case *instructions.ExposeCommand:
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range cmd.Ports {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			c.ExposedPorts[p] = struct{}{}
		}
	case *instructions.VolumeCommand:
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range cmd.Volumes {
			c.Volumes[v] = struct{}{}
		}
	case *instructions.StopSignalCommand:
		c.StopSignal = cmd.Signal
	case *instructions.ShellCommand:
		s.shell = cmd.Shell
	case *instructions.CmdCommand:
		c.Cmd = s.withShell(cmd.ShellDependantCmdLine)
	case *instructions.EntrypointCommand:
		c.Entrypoint = s.withShell(cmd.ShellDependantCmdLine)
	case *instructions.HealthCheckCommand:
		h := cmd.Health
		c.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
	case *instructions.MaintainerCommand:
	case *instructions.RunCommand:
		return b.run(ctx, s, cmd, o)
	case *instructions.CopyCommand:
		return b.copy(ctx, s, cmd.SourcesAndDest, cmd.From, cmd.Chown, cmd.Chmod, sourceOf(cmd), o, done)
	case *instructions.AddCommand:
		return b.copy(ctx, s, cmd.SourcesAndDest, "", cmd.Chown, cmd.Chmod, sourceOf(cmd), o, done)
	default:
		return fmt.Errorf("%s: this instruction is not supported by Berth's builder: %w", sourceOf(cmd), errdefs.ErrUnimplemented)
	}
	return nil
}

// withShell is a CMD, ENTRYPOINT or RUN line as the process's arguments.
func (s *stage) withShell(cl instructions.ShellDependantCmdLine) []string {
	if cl.PrependShell {
		return append(slices.Clone(s.shell), strings.Join(cl.CmdLine, " "))
	}
	return slices.Clone(cl.CmdLine)
}

// commit makes the stage's next image: its config as it stands, over a new
// layer when layer is set. A step seen before (same parent, instruction,
// inputs and config) comes from the cache.
func (b *Builder) commit(ctx context.Context, s *stage, createdBy string, layer func() (io.ReadCloser, error), noCache bool, inputs string) (id string, cached bool, err error) {
	key := cacheKey(s, createdBy, inputs)
	if !noCache {
		if id, ok := b.cached(key); ok {
			return id, true, nil
		}
	}
	cfg := s.config
	img, err := b.images.Commit(ctx, s.imageID, images.CommitOptions{Layer: layer, CreatedBy: createdBy,
		Config: func(c *v1.Config) error { *c = cfg; return nil }})
	if err != nil {
		return "", false, err
	}
	b.remember(key, img.ID)
	return img.ID, false, nil
}

func cacheKey(s *stage, createdBy, inputs string) string {
	cfg, _ := json.Marshal(s.config)
	sum := sha256.Sum256([]byte(s.imageID + "\x00" + createdBy + "\x00" + inputs + "\x00" + string(cfg)))
	return hex.EncodeToString(sum[:])
}

// cached is the image a step made before, if it is still there.
func (b *Builder) cached(key string) (string, bool) {
	raw, err := os.ReadFile(filepath.Join(b.cacheDir, key))
	if err != nil {
		return "", false
	}
	id := strings.TrimSpace(string(raw))
	if _, err := b.images.Resolve(id); err != nil {
		return "", false
	}
	return id, true
}

func (b *Builder) remember(key, id string) {
	if err := os.MkdirAll(b.cacheDir, 0o700); err == nil {
		_ = os.WriteFile(filepath.Join(b.cacheDir, key), []byte(id), 0o600)
	}
}

func setEnv(env []string, k, v string) []string {
	env = slices.DeleteFunc(slices.Clone(env), func(e string) bool { return strings.HasPrefix(e, k+"=") })
	return append(env, k+"="+v)
}

func kvs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func sourceOf(cmd instructions.Command) string {
	if s, ok := cmd.(interface{ String() string }); ok {
		return s.String()
	}
	return cmd.Name()
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(12, len(id))]
}

func familiar(full string) string {
	return strings.TrimPrefix(strings.TrimPrefix(full, "docker.io/"), "library/")
}
