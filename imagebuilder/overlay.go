package imagebuilder

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/internal/filekind"
	"github.com/smolvmm/smolvmm/service"
)

// Fstab is the /etc/fstab every image gets unless its service brings one:
// the root is the first virtio disk, an ext2 file system. FstabPtyfs
// follows it when the sets can mount ptyfs.
const Fstab = "/dev/ld0a / ext2fs rw 1 1\n"

// FstabPtyfs is the fstab line, NetBSD's installer's own, that mounts
// ptyfs on /dev/pts, added to Fstab for sets that have mount_ptyfs (base;
// the rescue set has none, and basicrc's mounting of every fstab line
// would fail on it at each boot). NetBSD 9 hands out ptys through
// /dev/ptm and /dev/ptmx only while ptyfs is mounted
// (sys/fs/ptyfs/ptyfs_vfsops.c:339); without it, ptm looks for /dev/ptyXX
// nodes (sys/kern/tty_bsdpty.c:118-143), so sshd logins, script and tmux
// find no pty.
const FstabPtyfs = "ptyfs /dev/pts ptyfs rw 0 0\n"

// mountPtyfs are where mount(8) finds mount_ptyfs: base's, and a rescue
// set's, which a rescue mount looks in first.
var mountPtyfs = []string{"/sbin/mount_ptyfs", "/rescue/mount_ptyfs"}

// imageFstab is the default /etc/fstab for tree t: Fstab, with FstabPtyfs
// when t has an executable mount_ptyfs.
func imageFstab(t *fstree.Tree) string {
	for _, p := range mountPtyfs {
		if n, err := resolve(t, p); err == nil && n.Type == fstree.Regular && n.Perm&0o111 != 0 {
			return Fstab + FstabPtyfs
		}
	}
	return Fstab
}

// Ttys is the /etc/ttys written when neither the sets nor the service
// provide one. NetBSD's init starts the gettys of the lines that are "on"
// only once /etc/rc has exited, never beside it. The console line is
// "off": the service's /etc/rc keeps the console (its shell there) and
// ends the VM when done (the built-in ones power off), and the rescue set
// has no getty, which init would keep failing to start. With no line on
// and /etc/rc gone, init has no child to wait for and spins, so a
// service's /etc/rc should power the VM off when done. "secure" still
// lets root log in when a service's ttys switches the console on (base
// has getty).
const Ttys = "console\t\"/usr/libexec/getty std.9600\"\tvt100\toff\tsecure\n"

// Group IDs NetBSD gives device nodes.
const (
	gidKmem     = 2
	gidOperator = 5
)

// Ports an image can be built for: the /dev nodes differ between them.
const (
	ArchI386  = "i386"
	ArchAMD64 = "amd64"
)

// DefaultArch is the port of an image whose Config.Arch is empty: i386,
// the port smolvmm fetch downloads by default.
const DefaultArch = ArchI386

// Device is one /dev node.
type Device struct {
	Name         string      // its name under /dev
	Type         fstree.Type // fstree.CharDev or fstree.BlockDev
	Major, Minor uint32      // its device numbers
	Perm         uint16      // its permission bits
	GID          uint32      // its group
}

// portDevs is what differs between the ports' /dev nodes.
type portDevs struct {
	ksyms     uint32                         // char major of ksyms
	diskMinor func(unit, part uint32) uint32 // DISKMINOR of <machine/disklabel.h>
}

// ports holds the numbers of NetBSD 9.1's sys/arch/i386/conf/majors.i386
// and sys/arch/amd64/conf/majors.amd64. Every other node of Devices has
// the same number on both: cons 0, ctty 1, mem 2, swap 4, log 7, com 8,
// filedesc 22, rnd 46, ld char 69 / block 19 (majors.i386:6-70,
// majors.amd64:6-66), ptm 165 (/dev/ptmx and /dev/ptm) and drvctl 167
// (sys/conf/majors:17,19); the mem minors are sys/sys/conf.h:234-241's, rnd's sys/sys/rnd.h:42-43.
var ports = map[string]portDevs{
	// majors.i386:102. i386 keeps the pre-1.6 8-partition minors for
	// partitions a-h (sys/arch/i386/include/disklabel.h:48-54), so ld1a
	// is 19,8.
	ArchI386: {ksyms: 101, diskMinor: func(unit, part uint32) uint32 {
		const old, maxDisks = 8, (1 << 20) / 16
		return unit*old + part%old + part/old*(maxDisks*old)
	}},
	// majors.amd64:82. amd64 uses the plain encoding unit*MAXPARTITIONS
	// + part with MAXPARTITIONS 16 (sys/arch/amd64/include/disklabel.h:41,
	// sys/sys/disklabel.h:89-92), so ld1a is 19,16.
	ArchAMD64: {ksyms: 85, diskMinor: func(unit, part uint32) uint32 { return unit*16 + part }},
}

// DiskUnits is how many virtio disks (ld0, ld1...) get /dev nodes: the
// image and up to three more.
const DiskUnits = 4

// CheckArch reports an error unless images can be built for arch ("" is
// DefaultArch).
func CheckArch(arch string) error {
	if arch == "" {
		return nil
	}
	if _, ok := ports[arch]; !ok {
		return fmt.Errorf("arch %q: images can be built for %s and %s only (their /dev numbers differ)", arch, ArchI386, ArchAMD64)
	}
	return nil
}

// Devices returns the /dev nodes every image for NetBSD port arch gets
// ("" is DefaultArch): what init, the shells, dhcpcd and the ld disks need
// (partitions a and d of ld0 to ld3, block and raw).
func Devices(arch string) ([]Device, error) {
	if err := CheckArch(arch); err != nil {
		return nil, err
	}
	if arch == "" {
		arch = DefaultArch
	}
	p := ports[arch]
	disk := func(name string, t fstree.Type, unit, part uint32) Device {
		major := uint32(19)
		if t == fstree.CharDev {
			major = 69
		}
		return Device{name, t, major, p.diskMinor(unit, part), 0640, gidOperator}
	}
	devs := []Device{
		{"console", fstree.CharDev, 0, 0, 0600, 0},
		{"constty", fstree.CharDev, 0, 1, 0600, 0},
		{"tty", fstree.CharDev, 1, 0, 0666, 0},
		{"mem", fstree.CharDev, 2, 0, 0640, gidKmem},
		{"kmem", fstree.CharDev, 2, 1, 0640, gidKmem},
		{"null", fstree.CharDev, 2, 2, 0666, 0},
		{"full", fstree.CharDev, 2, 11, 0666, 0},
		{"zero", fstree.CharDev, 2, 12, 0666, 0},
		{"drum", fstree.CharDev, 4, 0, 0640, gidKmem},
		{"klog", fstree.CharDev, 7, 0, 0600, 0},
		{"tty00", fstree.CharDev, 8, 0, 0600, 0},
		{"stdin", fstree.CharDev, 22, 0, 0666, 0},
		{"stdout", fstree.CharDev, 22, 1, 0666, 0},
		{"stderr", fstree.CharDev, 22, 2, 0666, 0},
		{"random", fstree.CharDev, 46, 0, 0444, 0},
		{"urandom", fstree.CharDev, 46, 1, 0644, 0},
		{"ksyms", fstree.CharDev, p.ksyms, 0, 0440, gidKmem},
		// ptm's minor picks the interface (sys/kern/tty_ptm.c:338-364):
		// 0 opens a new master (posix_openpt's /dev/ptmx), 1 answers
		// TIOCPTMGET (openpty's /dev/ptm), as MAKEDEV numbers them.
		{"ptmx", fstree.CharDev, 165, 0, 0666, 0},
		{"ptm", fstree.CharDev, 165, 1, 0666, 0},
		{"drvctl", fstree.CharDev, 167, 0, 0644, 0},
		// dhcpcd opens /dev/bpf for its DHCP packets and without it
		// gives up IPv4 (dhcp.c dhcp_openbpf on ENOENT). bpfilter is
		// char 23 on both ports; the node clones (bpf.c bpfopen:
		// fd_clone), so one is enough.
		{"bpf", fstree.CharDev, 23, 0, 0600, 0},
	}
	// Partition a (what a label-less image is seen as, the root) and d,
	// RAW_PART on both ports (the whole disk: i386 and amd64
	// disklabel.h:41 and :42), block and raw.
	for unit := uint32(0); unit < DiskUnits; unit++ {
		for _, part := range []uint32{0, 3} {
			name := fmt.Sprintf("ld%d%c", unit, 'a'+part)
			devs = append(devs, disk(name, fstree.BlockDev, unit, part), disk("r"+name, fstree.CharDev, unit, part))
		}
	}
	return devs, nil
}

// RescueLinks are the paths the kernel and rc need that a rescue-only image
// lacks, each a hard link to the crunched binary in /rescue.
var RescueLinks = [][2]string{
	{"sbin/init", "rescue/init"},
	{"sbin/mount_ext2fs", "rescue/mount_ext2fs"},
	{"bin/sh", "rescue/sh"},
}

// AddDevices puts the Devices of port arch in /dev, replacing any the
// sets carried.
func AddDevices(t *fstree.Tree, arch string) error {
	devs, err := Devices(arch)
	if err != nil {
		return err
	}
	for _, d := range devs {
		n := fstree.NewDevice(d.Type, d.Perm, d.Major, d.Minor)
		n.GID = d.GID
		if err := t.Put("dev/"+d.Name, n); err != nil {
			return fmt.Errorf("/dev/%s: %w", d.Name, err)
		}
	}
	return nil
}

// AddRescueLinks links /sbin/init, /sbin/mount_ext2fs and /bin/sh to
// /rescue when they are absent and /rescue has the program. A set whose
// /bin or /sbin is not a directory (a symlink to /rescue, say) already
// provides the path its own way, and is left as it is.
func AddRescueLinks(t *fstree.Tree) error {
	for _, l := range RescueLinks {
		if _, err := t.Get(l[0]); err == nil {
			continue
		}
		if d, err := t.Get(path.Dir(l[0])); err == nil && d.Type != fstree.Dir {
			continue
		}
		if _, err := t.Get(l[1]); err != nil {
			continue
		}
		if err := t.Link(l[0], l[1]); err != nil {
			return err
		}
	}
	return nil
}

// Overlay installs the service into t: /etc/fstab (Fstab, and FstabPtyfs
// for sets with mount_ptyfs), the service's etc/ over
// /etc (etc/rc always as an executable file: a symlinked etc/rc is
// followed on the host, only within the service's own directory, and its
// content copied; other symlinks stay symlinks, read in the guest), common/
// as /etc/include (both read through s.FS and s.Common, which Load gives
// a host service as os.Root file systems: no read leaves its directory),
// /etc/ttys if still missing, /tmp, /root and /dev/pts if missing, the /dev nodes of port arch ("" is DefaultArch) and
// the rescue links. New nodes belong to root:wheel and carry no mtime (the
// image timestamp applies).
func Overlay(t *fstree.Tree, s *service.Service, arch string) error {
	if err := CheckArch(arch); err != nil {
		return err
	}
	if err := t.Put("etc/fstab", fstree.NewFile(0644, []byte(imageFstab(t)))); err != nil {
		return fmt.Errorf("/etc/fstab: %w", err)
	}
	if err := copyFS(t, s.FS, "etc", "etc", func() (*fstree.Node, error) { return linkedRc(s) }); err != nil {
		return fmt.Errorf("service %s: %w", s.Name, err)
	}
	if err := copyFS(t, s.Common, ".", "etc/include", nil); err != nil {
		return fmt.Errorf("common files: %w", err)
	}
	if rc, err := t.Get("etc/rc"); err == nil && rc.Type == fstree.Regular {
		rc.Perm |= 0555
	}
	defaults := []struct {
		p string
		n *fstree.Node
	}{
		{"etc/ttys", fstree.NewFile(0644, []byte(Ttys))},
		{"tmp", fstree.NewDir(01777)},
		{"root", fstree.NewDir(0755)},
		{"dev/pts", fstree.NewDir(0755)}, // where FstabPtyfs mounts ptyfs
	}
	for _, d := range defaults {
		if _, err := t.Get(d.p); err != nil {
			if err := t.Put(d.p, d.n); err != nil {
				return fmt.Errorf("/%s: %w", d.p, err)
			}
		}
	}
	if err := AddDevices(t, arch); err != nil {
		return err
	}
	return AddRescueLinks(t)
}

// fileMode is the image mode of service file info. A file of the binary
// (go:embed gives every one mode 0444) becomes 0644; a host file, whose
// info carries the host's stat, keeps its mode, 0444 included. A common
// directory may hold both: a user's common/ lies over the built-in one.
func fileMode(info fs.FileInfo) uint16 {
	m := info.Mode()
	perm := uint16(m.Perm())
	if m&fs.ModeSetuid != 0 {
		perm |= 04000
	}
	if m&fs.ModeSetgid != 0 {
		perm |= 02000
	}
	if _, host := info.Sys().(*syscall.Stat_t); !host && perm&0200 == 0 && perm&0444 == 0444 && perm&0111 == 0 {
		perm = 0644 // go:embed files are read-only 0444
	}
	return perm
}

// copyFS copies the tree under from in fsys to the tree path to. Files of
// the binary (mode 0444) become 0644; a host file keeps its mode.
// A directory already in t keeps its attributes; a new one takes the
// host's mode (plus owner rwx). Symlinks are copied as symlinks (their
// targets are read as guest paths), except etc/rc, which rc reads as the
// file it points to.
func copyFS(t *fstree.Tree, fsys fs.FS, from, to string, rc func() (*fstree.Node, error)) error {
	if _, err := fs.Stat(fsys, from); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fs.WalkDir(fsys, from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := relPath(from, p)
		dst := path.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		perm := fileMode(info)
		switch {
		case d.IsDir():
			if rel == "" && to != "etc/include" {
				return nil // /etc itself keeps the set's attributes
			}
			// A directory the sets already have keeps their mode and
			// owner (Put would take the host's: a service's etc/ssh 0700
			// made the set's /etc/ssh 0700); a new one takes the service's.
			if n, err := t.Get(dst); err == nil && n.Type == fstree.Dir {
				return nil
			}
			return t.Put(dst, fstree.NewDir(perm|0700))
		case d.Type()&fs.ModeSymlink != 0 && dst == "etc/rc" && rc != nil:
			// The kernel's init runs /etc/rc: it must be a file in the
			// image, so a symlinked rc is followed here, on the host.
			n, err := rc()
			if err != nil {
				return err
			}
			return t.Put(dst, n)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := fs.ReadLink(fsys, p)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if err := fstree.CheckSymlink(dst, target); err != nil {
				return err
			}
			return t.Put(dst, fstree.NewSymlink(target))
		case d.Type().IsRegular():
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			return t.Put(dst, fstree.NewFile(perm, b))
		}
		return fmt.Errorf("%s is %s: only files, directories and symlinks may be in a service", p, filekind.Of(info.Mode()))
	})
}

// relPath is walked path p relative to from, the root of the walk ("" for
// from itself). Cutting the text from as a prefix would cut the leading
// dot of every name when from is "." (.kshrc became kshrc).
func relPath(from, p string) string {
	switch {
	case p == from:
		return ""
	case from == ".":
		return p
	}
	return strings.TrimPrefix(p, from+"/")
}

// linkedRc reads the file the service's symlinked etc/rc points to. The
// link is followed only within the service's directory (os.Root): a
// service directory a less privileged user can write, built by root, must
// not be able to put a host file such as /etc/shadow into the image, so a
// link that leaves it, into the service directory's common/ too, is
// refused. The file is opened once, without blocking (a FIFO swapped in
// after Validate), and what is read is what fstat on that descriptor saw.
func linkedRc(s *service.Service) (*fstree.Node, error) {
	if s.Dir == "" {
		return nil, errors.New("etc/rc is a symlink, which an embedded service cannot follow")
	}
	svcDir := filepath.Join(s.Dir, s.Name)
	link := filepath.Join(svcDir, "etc", "rc")
	root, err := s.OpenRoot()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	target, err := root.Readlink("etc/rc")
	if err != nil {
		return nil, err
	}
	f, err := root.OpenFile("etc/rc", os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if errors.Is(err, fs.ErrPermission) {
		// The user's permissions refused it, not the link's way: os.Root
		// refuses a link that leads out otherwise.
		return nil, &service.UnreadableError{Path: link, Err: err}
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s links to %s: a symlinked etc/rc is followed only to a file inside the service directory %s, not outside the service directory (%w); copy the file in", link, target, svcDir, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s links to %s, which is %s, not a file", link, target, filekind.Of(st.Mode()))
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s (linked from %s): %w", f.Name(), link, err)
	}
	return fstree.NewFile(fileMode(st), b), nil
}
