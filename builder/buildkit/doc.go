// Package buildkit embeds BuildKit (github.com/moby/buildkit) in berthd, as
// dockerd does: its control API and sessions are served on the Docker
// socket (/grpc, /session), so that buildx's docker driver and the docker
// CLI's default build need nothing else.
//
// The worker is BuildKit's own (worker/base) wired to Berth's parts: RUN
// steps run under the node's OCI runtime (berth-runtime by default) in a
// network namespace of a Berth pod — so CNI's default network, or none, or
// the host's; FROM takes images from Berth's image store first, reading
// their blobs where Berth keeps them; an image exported under a name (or
// none) is Berth's at once: its blobs are linked into Berth's content store
// and its layers unpacked there, so docker run, crictl and kubelet see it.
// BuildKit's cache, its snapshots and history live under berthd's root in
// their own directory, pruned by `docker builder prune`.
//
// It sits beside the classic builder: above containers and images, below
// the front ends; it knows nothing of HTTP beyond the two hijacked
// connections it is handed.
package buildkit
