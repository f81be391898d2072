// Package images is Berth's image service: it pulls images from registries,
// keeps their blobs in the content store (images/content), unpacks their
// layers into snapshots that stack as overlayfs lower directories
// (images/unpack, images/snapshot), and records image metadata in the store.
//
// images knows nothing of pods, containers' configs or gRPC.
package images
