// Package lazy serves an eStargz image layer over FUSE before it has been
// fetched: berthd mounts the layer where an unpacked one would be
// (images/snapshot's layer directory), so overlayfs stacks it the same way,
// and a container of a large image starts while the layer's bytes arrive.
//
// Each layer is served by a process of its own (berth-lazyfs, which calls
// Serve), started by berthd and outliving it as the shims do, so that a
// berthd restart leaves containers on lazy layers running. The server
// fetches what is read by ranges from the registry, verifies every chunk
// against the table of contents (whose digest the image's manifest names),
// keeps what it decompressed under its directory, and streams the whole blob
// in the background — the files before the prefetch landmark first, as
// they come first in the blob — into the content store, so that once it is
// whole the layer needs the registry no more.
//
// lazy must not import the image service's callers; berthd does not link
// it (its FUSE code runs only in berth-lazyfs).
package lazy
