package snapshot

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Layers unpack under a directory ext4 treats as the top of directory
// hierarchies (chattr +T), so that each new layer lands in a block group of
// its own rather than among the inodes of the image removed just before.
func TestLayersSpreadAcrossBlockGroups(t *testing.T) {
	root := t.TempDir()
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(filepath.Join(root, "tmp"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Skipf("%s keeps no inode flags (%v): nothing to set", root, err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(root, &fs); err == nil && fs.Type != unix.EXT4_SUPER_MAGIC {
		t.Skipf("%s is not ext4 (type %#x): the flag is ext4's", root, fs.Type)
	}
	if flags&fsTopdirFl == 0 {
		t.Fatalf("%s/tmp flags %#x: no FS_TOPDIR_FL", root, flags)
	}
	dir, err := s.NewLayerDir()
	if err != nil || filepath.Dir(dir) != filepath.Join(root, "tmp") {
		t.Fatalf("new layer dir %q %v, want one under %s/tmp", dir, err, root)
	}
}
