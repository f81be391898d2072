package lazy

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"syscall"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// The layer's tree is read-only and never changes: the kernel may keep
// names and attributes as long as it likes.
const cacheFor = 24 * 3600 // seconds

// Whiteouts as the layer's tar has them, and as overlayfs wants them in a
// lower directory (images/unpack makes the same on disk).
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
)

// node is one file of the layer: a TOC entry (nil for a whiteout) and the
// attributes the kernel is told.
type node struct {
	fs.Inode
	l      *layer
	e      *estargz.TOCEntry
	attr   fuse.Attr
	xattrs map[string][]byte
	log    *slog.Logger
}

var (
	_ fs.NodeGetattrer   = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeReader      = (*node)(nil)
	_ fs.NodeReadlinker  = (*node)(nil)
	_ fs.NodeGetxattrer  = (*node)(nil)
	_ fs.NodeListxattrer = (*node)(nil)
	_ fs.NodeStatfser    = (*node)(nil)
)

func (n *node) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr = n.attr
	out.SetTimeout(cacheFor)
	return 0
}

func (n *node) Open(_ context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	// The bytes never change: the page cache may keep them across opens.
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Read(ctx context.Context, _ fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if n.e == nil || n.e.Type != "reg" {
		return nil, syscall.EINVAL
	}
	got, err := n.l.readFile(ctx, n.e, dest, off)
	if err != nil {
		n.log.Error("read failed", slog.String("file", n.e.Name), slog.Int64("offset", off), slog.Any("err", err))
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:got]), 0
}

func (n *node) Readlink(context.Context) ([]byte, syscall.Errno) {
	if n.e == nil || n.e.Type != "symlink" {
		return nil, syscall.EINVAL
	}
	return []byte(n.e.LinkName), 0
}

func (n *node) Getxattr(_ context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	v, ok := n.xattrs[attr]
	if !ok {
		return 0, syscall.ENODATA
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *node) Listxattr(_ context.Context, dest []byte) (uint32, syscall.Errno) {
	var names []byte
	for k := range n.xattrs {
		names = append(names, k...)
		names = append(names, 0)
	}
	if len(dest) < len(names) {
		return uint32(len(names)), syscall.ERANGE
	}
	return uint32(copy(dest, names)), 0
}

func (n *node) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = 4096
	out.NameLen = 255
	return 0
}

// tree builds the nodes under root from the table of contents, the
// whiteouts turned into what overlayfs reads as whiteouts (a 0/0 character
// device; the opaque xattr on the directory), and returns the regular files
// in the blob's order (for prefetch).
type tree struct {
	l     *layer
	log   *slog.Logger
	ino   uint64
	nodes map[*estargz.TOCEntry]*fs.Inode
	files []*estargz.TOCEntry
}

func (t *tree) newNode(e *estargz.TOCEntry) *node {
	n := &node{}
	t.fill(n, e)
	return n
}

func (t *tree) fill(n *node, e *estargz.TOCEntry) {
	t.ino++
	n.l, n.e, n.log = t.l, e, t.log
	a := &n.attr
	a.Ino = t.ino
	a.Size = uint64(e.Size)
	a.Blocks = (a.Size + 511) / 512
	a.Blksize = 4096
	a.Nlink = uint32(max(e.NumLink, 1))
	a.Owner = fuse.Owner{Uid: uint32(e.UID), Gid: uint32(e.GID)}
	mt := e.ModTime()
	a.SetTimes(&mt, &mt, &mt)
	a.Mode = uint32(e.Mode) & 0o7777
	switch e.Type {
	case "dir":
		a.Mode |= syscall.S_IFDIR
		a.Size = 4096
	case "reg":
		a.Mode |= syscall.S_IFREG
	case "symlink":
		a.Mode |= syscall.S_IFLNK
		a.Size = uint64(len(e.LinkName))
	case "char":
		a.Mode |= syscall.S_IFCHR
		a.Rdev = uint32(unix.Mkdev(uint32(e.DevMajor), uint32(e.DevMinor)))
	case "block":
		a.Mode |= syscall.S_IFBLK
		a.Rdev = uint32(unix.Mkdev(uint32(e.DevMajor), uint32(e.DevMinor)))
	case "fifo":
		a.Mode |= syscall.S_IFIFO
	}
	if len(e.Xattrs) > 0 {
		n.xattrs = make(map[string][]byte, len(e.Xattrs))
		for k, v := range e.Xattrs {
			n.xattrs[k] = v
		}
	}
}

// add puts dir's children under parent, depth first.
func (t *tree) add(ctx context.Context, parent *fs.Inode, pn *node, dir *estargz.TOCEntry) {
	dir.ForeachChild(func(name string, e *estargz.TOCEntry) bool {
		switch {
		case name == opaqueMarker:
			if pn.xattrs == nil {
				pn.xattrs = map[string][]byte{}
			}
			pn.xattrs[opaqueXattr] = []byte("y")
			return true
		case strings.HasPrefix(name, whiteoutPrefix):
			t.ino++
			wh := &node{l: t.l, log: t.log}
			wh.attr = fuse.Attr{Ino: t.ino, Mode: syscall.S_IFCHR, Nlink: 1}
			parent.AddChild(strings.TrimPrefix(name, whiteoutPrefix),
				parent.NewPersistentInode(ctx, wh, fs.StableAttr{Mode: syscall.S_IFCHR, Ino: t.ino}), true)
			return true
		case dir.Name == "" && (name == estargz.PrefetchLandmark || name == estargz.NoPrefetchLandmark):
			return true // the builder's markers, not the image's files
		}
		if in, ok := t.nodes[e]; ok { // a hard link to a file already added
			parent.AddChild(name, in, true)
			return true
		}
		n := t.newNode(e)
		in := parent.NewPersistentInode(ctx, n, fs.StableAttr{Mode: n.attr.Mode & syscall.S_IFMT, Ino: n.attr.Ino})
		t.nodes[e] = in
		parent.AddChild(name, in, true)
		switch e.Type {
		case "dir":
			t.add(ctx, in, n, e)
		case "reg":
			t.files = append(t.files, e)
		}
		return true
	})
}

// root is the layer's top directory; it builds the tree when mounted.
type root struct {
	node
	t *tree
}

var _ fs.NodeOnAdder = (*root)(nil)

func (r *root) OnAdd(ctx context.Context) {
	r.t.add(ctx, &r.Inode, &r.node, r.e)
	sort.Slice(r.t.files, func(i, j int) bool { return r.t.files[i].Offset < r.t.files[j].Offset })
}

func newRoot(l *layer, log *slog.Logger) (*root, error) {
	top, ok := l.r.Lookup("")
	if !ok || top.Type != "dir" {
		return nil, errors.New("the table of contents has no root directory")
	}
	t := &tree{l: l, log: log, nodes: map[*estargz.TOCEntry]*fs.Inode{}}
	r := &root{t: t}
	t.fill(&r.node, top)
	return r, nil
}
