// Package builder builds images from Dockerfiles, as Docker's classic
// builder does (POST /build with DOCKER_BUILDKIT=0, and the Python SDK):
// BuildKit's own Dockerfile parser reads the file; RUN steps are containers
// of the containers service whose changes are committed as layers; COPY and
// ADD write layers straight from the build context; every other instruction
// changes the image's config. A step whose parent, instruction and inputs
// were seen before is taken from the cache.
//
// It sits above containers and images and below the front ends; it knows
// nothing of HTTP.
package builder
