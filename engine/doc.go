// Package engine is Docker's object model on Berth's services, as moby's
// daemon/ is under its HTTP router: containers as one-container pods with
// names, networks and their hosts files, volumes, published ports, health
// checks, restart policies, exec instances, events and the images' Docker
// verbs, as plain Go calls on typed values.
//
// Where to find a rule: create.go (what a create request becomes),
// translate.go (Docker's options as an OCI container config), ports.go (the
// port bindings), lifecycle.go (start, stop, kill, remove, --rm),
// restart.go (restart policies and their backoff), health.go (HEALTHCHECK),
// networks.go, endpoints.go and connect.go (user networks, /etc/hosts of
// their members), volumes.go, events.go, exec.go, logs.go, files.go (cp,
// export, diff), commit.go (--change), images.go, system.go.
//
// It knows nothing of HTTP: dockerapi/ decodes requests into its types and
// encodes what it returns. It must not import dockerapi/, cri/ or daemon/.
package engine
