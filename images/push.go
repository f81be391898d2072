package images

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// upstream is the registry itself among hostsFor's answers (a push and a
// login go there, never to a mirror).
func (s *Service) upstream(registry string) (registryHost, error) {
	hosts, err := hostsFor(s.hostsDir, registry)
	if err != nil {
		return registryHost{}, fmt.Errorf("registry configuration of %s: %w", registry, err)
	}
	for _, h := range hosts {
		if h.upstream {
			return h, nil
		}
	}
	return hosts[len(hosts)-1], nil
}

func authenticator(a *Auth) authn.Authenticator {
	if a == nil || *a == (Auth{}) {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken})
}

// Push uploads the image ref names to its registry under that name and
// returns the manifest's digest and size; progress, if set, hears the bytes
// sent of the total as they go.
func (s *Service) Push(ctx context.Context, ref string, auth *Auth, progress func(done, total int64)) (digest.Digest, int64, error) {
	rec, err := s.Resolve(ref)
	if err != nil {
		return "", 0, err
	}
	named, err := Normalize(ref)
	if err != nil {
		return "", 0, err
	}
	tagged, ok := named.(reference.Tagged)
	if !ok {
		return "", 0, fmt.Errorf("push %s: a tag is needed: %w", ref, errdefs.ErrInvalidArgument)
	}
	h, err := s.upstream(reference.Domain(named))
	if err != nil {
		return "", 0, err
	}
	var opts []name.Option
	if h.insecure() {
		opts = append(opts, name.Insecure)
	}
	nref, err := name.NewTag(h.host+"/"+reference.Path(named)+":"+tagged.Tag(), opts...)
	if err != nil {
		return "", 0, fmt.Errorf("push %s: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	if err := s.wholeBlobs(ctx, rec); err != nil {
		return "", 0, fmt.Errorf("push %s: %w", ref, err)
	}
	si, _, err := loadStoredImage(s.content, digest.Digest(rec.Manifest))
	if err != nil {
		return "", 0, fmt.Errorf("push %s: %w", ref, err)
	}
	img, err := si.image()
	if err != nil {
		return "", 0, err
	}
	if a := s.authFor(h, auth); a != nil {
		auth = a
	}
	start := time.Now()
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(h.transport()), remote.WithAuth(authenticator(auth)), remote.WithUserAgent("berth")}
	if progress != nil {
		updates := make(chan v1.Update, 16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for u := range updates { // remote.Write closes it
				progress(u.Complete, u.Total)
			}
		}()
		defer func() { <-done }()
		ropts = append(ropts, remote.WithProgress(updates))
	}
	if err := remote.Write(nref, img, ropts...); err != nil {
		return "", 0, fmt.Errorf("push %s: %w", ref, registryError(err))
	}
	s.log.Info("pushed image", slog.String("image", named.String()), slog.String("id", rec.ID), slog.Duration("took", time.Since(start)))
	return digest.Digest(rec.Manifest), int64(len(si.manifest)), nil
}

// Login checks credentials against a registry, as docker login does.
func (s *Service) Login(ctx context.Context, server string, auth *Auth) error {
	if server == "" || server == "https://index.docker.io/v1/" {
		server = "docker.io"
	}
	h, err := s.upstream(server)
	if err != nil {
		return err
	}
	var opts []name.Option
	if h.insecure() {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(h.host, opts...)
	if err != nil {
		return fmt.Errorf("registry %q: %v: %w", server, err, errdefs.ErrInvalidArgument)
	}
	tr, err := transport.NewWithContext(ctx, reg, authenticator(auth), h.transport(), []string{"registry:catalog:*"})
	if err != nil {
		return fmt.Errorf("login to %s: %w", server, registryError(err))
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.scheme+"://"+h.host+"/v2/", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("login to %s: %w", server, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("login to %s: unauthorized: incorrect username or password: %w", server, errdefs.ErrUnauthenticated)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("login to %s: the registry answered %s", server, resp.Status)
	}
	return nil
}

// registryError marks a registry's refusal of credentials as such.
func registryError(err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%v: %w", err, errdefs.ErrUnauthenticated)
	}
	return err
}
