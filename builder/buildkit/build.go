package buildkit

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/platforms"
	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
	"github.com/moby/buildkit/util/entitlements"
	"github.com/tonistiigi/fsutil"

	"github.com/berth-runtime/berth/builder"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Where a /build?version=2 request's context is (its "remote").
const (
	// RemoteSession: the client's session serves it, as the docker CLI's
	// BuildKit builds send it.
	RemoteSession = "client-session"
	// RemoteUpload: another request's body brings it (Upload), as the
	// docker CLI sends a context read from its stdin.
	RemoteUpload = "upload-request"
)

// uploadWait is how long a build and the upload of its context wait for
// each other: the docker CLI sends both at once.
const uploadWait = 5 * time.Second

// BuildOptions is a build as dockerd's POST /build?version=2 takes it — the
// docker CLI 18.09–22's BuildKit builds, the SDKs' Version "2" — in Docker's
// words; Build turns them into the Dockerfile frontend's.
type BuildOptions struct {
	Dockerfile  string
	Tags        []string
	Target      string
	NoCache     bool
	Pull        bool
	BuildArgs   map[string]*string
	Labels      map[string]string
	CacheFrom   []string
	Platform    string
	NetworkMode string
	ExtraHosts  []string
	ShmSize     int64
	// Outputs are the client's --output; none makes a Berth image.
	Outputs []Output
	// SessionID is the client's session (/session): secrets, SSH, outputs,
	// and the context when Remote is RemoteSession.
	SessionID string
	// Remote is where the context is: RemoteSession, RemoteUpload, a git or
	// HTTP URL, or "" for Context.
	Remote string
	// BuildID names the build for Cancel and pairs it with its upload.
	BuildID string
	// Context is the request's body, a tar, when Remote is "".
	Context io.Reader
	// Trace receives BuildKit's progress, each a StatusResponse in protobuf
	// (what dockerd's "moby.buildkit.trace" messages carry).
	Trace func([]byte) error
}

// Output is one --output: its exporter and the exporter's attributes.
type Output struct {
	Type  string
	Attrs map[string]string
}

// Build runs a Dockerfile build and returns the image's ID ("" when the
// output is not an image).
func (s *Service) Build(ctx context.Context, o BuildOptions) (string, error) {
	req, err := solveRequest(o)
	if err != nil {
		return "", err
	}
	r, release, err := s.use(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.BuildID != "" {
		defer s.builds.add(o.BuildID, cancel)()
	}
	if o.Remote == RemoteUpload || o.Remote == "" {
		// A tar context: the request's body, or another request's.
		body, done := o.Context, func(error) {}
		if o.Remote == RemoteUpload {
			if body, done, err = s.builds.awaitUpload(ctx, o.BuildID); err != nil {
				return "", err
			}
		}
		if body == nil {
			return "", fmt.Errorf("a build without a remote context needs one in its body: %w", errdefs.ErrInvalidArgument)
		}
		err = s.serveContext(ctx, r, req, body)
		done(err)
		if err != nil {
			return "", err
		}
	}

	statusDone := make(chan error, 1)
	go func() {
		statusDone <- r.controller.Status(&controlapi.StatusRequest{Ref: req.Ref}, &statusStream{ctx: context.WithoutCancel(ctx), trace: o.Trace})
	}()
	resp, err := r.controller.Solve(ctx, req)
	// The progress's last lines (the failed step's, "writing image") come
	// after the solve returns; the stream ends with the build's record.
	if serr := <-statusDone; err == nil && serr != nil {
		err = fmt.Errorf("progress: %w", serr)
	}
	if err != nil {
		return "", err
	}
	id := resp.ExporterResponse["containerimage.config.digest"]
	if id == "" {
		id = resp.ExporterResponse["containerimage.digest"]
	}
	return id, nil
}

// Validate says what of o BuildKit cannot build, before the build starts.
func (o BuildOptions) Validate() error {
	_, err := solveRequest(o)
	return err
}

// solveRequest is dockerd's mapping of its build options to BuildKit's.
func solveRequest(o BuildOptions) (*controlapi.SolveRequest, error) {
	if len(o.Outputs) > 1 {
		return nil, fmt.Errorf("%d outputs: a build exports to one: %w", len(o.Outputs), errdefs.ErrInvalidArgument)
	}
	// Without --pull the mode stays unset: localFirst takes Berth's images
	// first, as for buildx's builds.
	attrs := map[string]string{}
	if o.Pull {
		attrs["image-resolve-mode"] = "pull"
	}
	if o.Target != "" {
		attrs["target"] = o.Target
	}
	if o.Dockerfile != "" && o.Dockerfile != "." {
		attrs["filename"] = o.Dockerfile
	}
	switch {
	case o.Remote == RemoteSession && o.SessionID == "":
		return nil, fmt.Errorf("remote=%s needs the client's session: %w", RemoteSession, errdefs.ErrInvalidArgument)
	case o.Remote == "", o.Remote == RemoteSession, o.Remote == RemoteUpload:
	case strings.Contains(o.Remote, "://"), strings.HasPrefix(o.Remote, "git@"):
		attrs["context"] = o.Remote
	default:
		return nil, fmt.Errorf("remote context %q is not a git or HTTP URL: %w", o.Remote, errdefs.ErrInvalidArgument)
	}
	if len(o.CacheFrom) > 0 {
		attrs["cache-from"] = strings.Join(o.CacheFrom, ",")
	}
	for k, v := range o.BuildArgs {
		if v != nil {
			attrs["build-arg:"+k] = *v
		}
	}
	for k, v := range o.Labels {
		attrs["label:"+k] = v
	}
	if o.NoCache {
		attrs["no-cache"] = ""
	}
	if o.Platform != "" {
		if _, err := platforms.Parse(o.Platform); err != nil {
			return nil, fmt.Errorf("platform %q: %v: %w", o.Platform, err, errdefs.ErrInvalidArgument)
		}
		attrs["platform"] = o.Platform
	}
	req := &controlapi.SolveRequest{Ref: identity.NewID(), Frontend: "dockerfile.v0", FrontendAttrs: attrs, Session: o.SessionID, Cache: &controlapi.CacheOptions{}}
	switch o.NetworkMode {
	case "", "default", "bridge":
	case "host":
		attrs["force-network-mode"] = o.NetworkMode
		req.Entitlements = append(req.Entitlements, string(entitlements.EntitlementNetworkHost))
	case "none":
		attrs["force-network-mode"] = o.NetworkMode
	default:
		return nil, fmt.Errorf("network mode %q: BuildKit's steps take default, none or host: %w", o.NetworkMode, errdefs.ErrInvalidArgument)
	}
	var hosts []string
	for _, h := range o.ExtraHosts {
		host, ip, ok := strings.Cut(h, ":")
		if !ok || host == "" || ip == "" {
			return nil, fmt.Errorf("extra host %q is not host:ip: %w", h, errdefs.ErrInvalidArgument)
		}
		hosts = append(hosts, host+"="+ip)
	}
	if len(hosts) > 0 {
		attrs["add-hosts"] = strings.Join(hosts, ",")
	}
	if o.ShmSize > 0 {
		attrs["shm-size"] = strconv.FormatInt(o.ShmSize, 10)
	}
	if v := o.BuildArgs["BUILDKIT_INLINE_CACHE"]; v != nil {
		if on, _ := strconv.ParseBool(*v); on {
			req.Cache.Exports = append(req.Cache.Exports, &controlapi.CacheOptionsEntry{Type: "inline"})
		}
	}
	ex := &controlapi.Exporter{Type: "moby", Attrs: map[string]string{}}
	if len(o.Outputs) == 1 {
		ex = &controlapi.Exporter{Type: o.Outputs[0].Type, Attrs: o.Outputs[0].Attrs}
		if ex.Attrs == nil {
			ex.Attrs = map[string]string{}
		}
	}
	if (ex.Type == "moby" || ex.Type == "image") && len(o.Tags) > 0 {
		ex.Attrs["name"] = strings.Join(o.Tags, ",")
	}
	// "cacheonly" exports nothing: the cache the steps leave is the point.
	if ex.Type != "cacheonly" {
		req.Exporters = []*controlapi.Exporter{ex}
	}
	return req, nil
}

// serveContext unpacks a tar context and serves it to the build from a
// session of berthd's own, as the client's session would serve a directory:
// the Dockerfile frontend reads its "context" and "dockerfile" locals from it
// while secrets and outputs still go through the client's session, if any.
func (s *Service) serveContext(ctx context.Context, r *running, req *controlapi.SolveRequest, tar io.Reader) error {
	dir, remove, err := builder.UnpackContext(tar)
	if err != nil {
		return err
	}
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		remove()
		return fmt.Errorf("build context: %w", err)
	}
	sess, err := session.NewSession(ctx, "")
	if err != nil {
		remove()
		return fmt.Errorf("build context's session: %w", err)
	}
	sess.Allow(filesync.NewFSSyncProvider(filesync.StaticDirSource{"context": fs, "dockerfile": fs}))
	go func() {
		_ = sess.Run(context.WithoutCancel(ctx), func(ctx context.Context, _ string, meta map[string][]string) (net.Conn, error) {
			client, server := net.Pipe()
			go func() { _ = r.sessions.HandleConn(ctx, server, meta) }()
			return client, nil
		})
	}()
	context.AfterFunc(ctx, func() {
		_ = sess.Close()
		remove()
	})
	if req.Session == "" {
		req.Session = sess.ID()
	}
	req.FrontendAttrs["local-sessionid:context"] = sess.ID()
	req.FrontendAttrs["local-sessionid:dockerfile"] = sess.ID()
	return nil
}

// Upload hands a build's context, sent in a request of its own (the docker
// CLI's `docker build -` with buildid "upload-request:<id>"), to the build
// waiting for it, and returns when the build has read it.
func (s *Service) Upload(ctx context.Context, buildID string, body io.Reader) error {
	return s.builds.upload(ctx, buildID, body)
}

// Cancel stops the build named id (POST /build/cancel); an unknown or
// finished build is no error, as with dockerd.
func (s *Service) Cancel(id string) { s.builds.cancel(id) }
