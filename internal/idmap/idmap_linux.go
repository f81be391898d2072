// Package idmap makes idmapped mounts (Linux 5.12): a view of a directory
// in which the IDs on disk appear shifted through a user namespace's
// mappings, so that the namespace's root owns what the host's root owns,
// and what it writes lands on disk as the host's root's. Nothing is
// chowned.
package idmap

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Bind attaches at dst an idmapped bind of src (not of its submounts),
// mapped through the user namespace at usernsPath. dst must exist.
//
// Overlayfs itself cannot be idmapped, but its layers can (5.19), which is
// how a pod with its own user namespace gets a root filesystem it owns.
func Bind(src, dst, usernsPath string) error {
	ns, err := os.Open(usernsPath)
	if err != nil {
		return fmt.Errorf("idmap %s: %w", src, err)
	}
	defer ns.Close()
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("idmap %s: clone the mount: %w", src, err)
	}
	defer unix.Close(tree)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return fmt.Errorf("idmap %s through %s: %w", src, usernsPath, err)
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("idmap %s: attach at %s: %w", src, dst, err)
	}
	return nil
}
