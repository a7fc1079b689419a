package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/internal/bootargs"
	"github.com/smolvmm/smolvmm/internal/kernelimage"
	"github.com/smolvmm/smolvmm/internal/regfile"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netbsdboot"
	"github.com/smolvmm/smolvmm/pci"
	"github.com/smolvmm/smolvmm/rebuild"
	"github.com/smolvmm/smolvmm/sandbox"
	"github.com/smolvmm/smolvmm/service"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// Checks of the command line that need more than one flag's value, run
// before any work (a download, a strip, a build, a VM): every refusal
// here is a command-line mistake, exit status 2.

// cmdlineMax is the longest command line NetBSD copies whole (255 bytes
// with the NUL): the kernel's name, a space and -a (multiboot's limit;
// NetBSD's native handoff passes no command line).
const cmdlineMax = 254

// appendKernelName is the name the kernel will have on the guest's
// command line, as vmm gives it (the file's base name), and its length:
// the built-in guest's, up's stripped kernel's (whose digest is not known
// yet: every one is as long), or -k's; "" when unknown (--restore).
func appendKernelName(c *cli.Context) (string, int) {
	var name string
	switch cmd := c.Command.Name; {
	case cmd == "demo":
		name = "demo"
	case cmd == "up":
		full := rebuild.StrippedName("", nil)
		return full[:strings.LastIndexByte(full, '-')+1] + "DIGEST", len(full)
	case c.String("kernel") != "":
		if name = filepath.Base(c.String("kernel")); name == "." || name == "/" {
			name = "kernel"
		}
	case cmd == "bench":
		name = "demo"
	}
	return name, len(name)
}

// checkAppend refuses an -a the kernel could not receive whole: the
// kernel's name, a space and -a (with NetBSD's boot words as the loader
// arranges them, which is never longer) must fit in cmdlineMax bytes.
// With the kernel unknown, it is checked against a one-character name.
// When -k's file name leaves too little room, the name is what is
// refused: -a may be the default, and the room left none at all. Under
// --boot netbsd nothing is refused (see nativeBoot), nor under --boot
// auto for a -k kernel it boots natively (autoBootsNatively).
func checkAppend(c *cli.Context) error {
	a := c.String("append")
	if a == "" {
		return nil
	}
	k := ""
	if hasFlag(c, "kernel") {
		k = c.String("kernel")
	}
	line := a
	if l, err := bootargs.Parse(a); err == nil {
		line = l.Multiboot()
	}
	name, n := appendKernelName(c)
	if name == "" {
		name, n = "k", 1
	}
	room := cmdlineMax - n - 1
	if len(line) <= room || nativeBoot(c) || autoBootsNatively(c, k) {
		return nil
	}
	// Only the name's refusal waits on the file: a missing one is said to
	// be (status 1) before its name is blamed, but before no other
	// mistake on the command line, which stays status 2.
	if k != "" && (room <= 0 || !c.IsSet("append")) {
		if err := checkKernelFile(k); err != nil {
			return err
		}
	}
	switch {
	case k != "" && room <= 0:
		return usageErrorf("-k %s: the kernel's file name is %d bytes, and the guest's command line (the kernel's name, a space and -a) holds %d bytes: the name leaves no room for -a (NetBSD copies 255 bytes with the NUL); give the kernel a shorter file name, or a symlink with one%s", k, n, cmdlineMax, nativeAdvice(c, k))
	case k != "" && !c.IsSet("append"):
		return usageErrorf("-k %s: the kernel's file name is %d bytes, which leaves %d of the guest's command line for -a, and the default -a %q is %d (NetBSD copies 255 bytes with the NUL); give the kernel a shorter file name, or a symlink with one (or a shorter -a)%s", k, n, room, a, len(line), nativeAdvice(c, k))
	}
	return usageErrorf("-a: %d bytes, but after the kernel's name %q and a space the command line holds at most %d (NetBSD copies 255 bytes with the NUL)%s", len(line), name, room, nativeAdvice(c, k))
}

// nativeBoot reports --boot netbsd. NetBSD's native handoff gives the
// kernel no command line: its name goes into BTINFO_BOOTPATH (cut to 79
// bytes, with a warning) and -a's words into boot flags and bootinfo
// records, none bounded by the line's length (root=, whose field is, is
// checked with -a's words when the kernel loads). With --boot auto the
// protocol is the kernel file's: autoBootsNatively reads it.
func nativeBoot(c *cli.Context) bool {
	if !hasFlag(c, "boot") {
		return false
	}
	p, err := bootplan.ParseProtocol(c.String("boot"))
	return err == nil && p == bootplan.NetBSD // a bad value is refused later
}

// autoBootsNatively reports that -k's kernel k, under --boot auto, boots
// by NetBSD's native handoff, which has no command line (see nativeBoot):
// a kernel without a multiboot header (amd64, i386 built without options
// MULTIBOOT), or one given modules. That is the file's to say, with the
// number of modules given: only the kernel's headers are read
// (vmm.KernelProtocol), no module nor guest memory, so that a refusal
// costs no more than under --boot multiboot. Only a refusal asks: the
// command line's limit is checked before the kernel is read. A file that
// is not a kernel is not taken for one: the limit stands, and the load
// says what is wrong with it once -a fits; a native kernel that does
// not load says so when run loads it.
func autoBootsNatively(c *cli.Context, k string) bool {
	if k == "" || !hasFlag(c, "boot") {
		return false
	}
	if p, err := bootplan.ParseProtocol(c.String("boot")); err != nil || p != bootplan.Auto {
		return false
	}
	modules := 0
	if hasFlag(c, "module") {
		modules = len(c.StringSlice("module"))
	}
	p, err := vmm.KernelProtocol(k, modules)
	return err == nil && p == bootplan.NetBSD
}

// nativeAdvice is the way out of the command line's limit for a -k
// kernel k under --boot auto: booted natively, a NetBSD kernel has none.
func nativeAdvice(c *cli.Context, k string) string {
	if k == "" || !hasFlag(c, "boot") {
		return ""
	}
	if p, err := bootplan.ParseProtocol(c.String("boot")); err != nil || p != bootplan.Auto {
		return ""
	}
	return "; for a NetBSD kernel, --boot netbsd has no command line to fill (its native handoff takes the boot flags, console= and root= from -a)"
}

// checkDisks refuses more disks than the machine has PCI slots for, and
// an image given twice as -d, also through a symlink or a hard link: the
// second would find the first one's lock and blame "another VM".
func checkDisks(c *cli.Context) error {
	if err := checkDiskCount(c); err != nil {
		return err
	}
	type seen struct {
		flag string
		info fs.FileInfo
	}
	var disks []seen
	byPath := map[string]string{}
	for _, spec := range c.StringSlice("disk") {
		d, err := blk.ParseDiskSpec(spec)
		if err != nil {
			return diskSpecError(err)
		}
		if abs, err := filepath.Abs(d.Path); err == nil {
			if first, ok := byPath[abs]; ok {
				return usageErrorf("-d %s: this image is already a disk of this VM (-d %s); give each image once (use a copy for a second disk)", d.Path, first)
			}
			byPath[abs] = d.Path
		}
		st, err := os.Stat(d.Path)
		if err != nil {
			continue // opening it says what is wrong
		}
		for _, s := range disks {
			if os.SameFile(s.info, st) {
				return usageErrorf("-d %s: this image is already a disk of this VM: it is the same file as -d %s (a symlink or hard link to it); give each image once (use a copy for a second disk)", d.Path, s.flag)
			}
		}
		disks = append(disks, seen{d.Path, st})
	}
	return nil
}

// checkDiskCount refuses more disks than the machine's PCI bus has
// slots for, before any image is opened: every disk takes a slot, as do
// the host bridge and the network card (none with --net none). The VM
// refused the disk past the last slot once all before it were open,
// blaming that one image.
func checkDiskCount(c *cli.Context) error {
	disks := len(c.StringSlice("disk"))
	shares := 0
	if hasFlag(c, "share") {
		shares = len(c.StringSlice("share"))
	}
	room := vmm.MaxVirtioDevices // the slots but the host bridge's
	slots := []string{"one for the host bridge"}
	if c.Command.Name == "up" {
		room--
		slots = append(slots, "one for the image up boots as ld0")
	}
	if hasFlag(c, "net") {
		if nc, err := parseNetFlags(c, ""); err == nil && nc.Spec != "none" { // its error is said by checkRunFlags
			room--
			slots = append(slots, "one for the network card (--net none has none)")
		}
	}
	if disks+shares <= room {
		return nil
	}
	given, fewer := fmt.Sprintf("%d -d", disks), "-d"
	if shares > 0 {
		given, fewer = fmt.Sprintf("%d -d and %d --share", disks, shares), "-d or --share"
	}
	return usageErrorf("too many disks: %s, and at most %d fit: the machine's PCI bus has %d slots, %s, and one for each disk; give fewer %s",
		given, room, pci.Slots, strings.Join(slots, ", "), fewer)
}

// checkReadyPort refuses a --ready-port nothing in the guest can answer:
// without a network card, or on the user network without a -p forwarding
// that TCP port of 127.0.0.1 (where the probe connects) to the guest. On a
// tap the guest is reached by routes smolvmm does not know: allowed.
func checkReadyPort(c *cli.Context) error {
	p := c.Int("ready-port")
	if p == 0 || !hasFlag(c, "net") {
		return nil
	}
	nc, err := parseNetFlags(c, "")
	if err != nil {
		return err
	}
	switch {
	case nc.Spec == "none":
		// restoreNet gives a restore without --net the snapshot's none:
		// said of the snapshot, not of a --net none never given.
		if restoring(c) {
			if has, _, err := snapshotNIC(c.String("restore")); err == nil && !has { // snapshot.go
				return usageErrorf("--ready-port %d: the VM of --restore %s had no network card, so nothing can answer there; use --ready REGEXP on a console line instead", p, c.String("restore"))
			}
		}
		return usageErrorf("--ready-port %d: with --net none the guest has no network card, so nothing can answer there; use --ready REGEXP on a console line instead", p)
	case !isUserNet(nc.Spec):
		return nil
	}
	for _, f := range nc.Forwards {
		if f.Proto == "tcp" && int(f.HostPort) == p && (f.HostAddr.IsLoopback() || f.HostAddr.IsUnspecified()) {
			return nil
		}
	}
	return usageErrorf("--ready-port %d: no -p forwards TCP port %d of 127.0.0.1 to the guest, so nothing the guest runs can answer there; add -p %d:GUESTPORT", p, p, p)
}

// checkTapName refuses a tap name the kernel cannot take, by netback's
// rules: a character or a . or .. that only the tap's opening refused
// was status 1, without --net.
func checkTapName(name string) error {
	if err := netback.CheckTapName(name); err != nil {
		return fmt.Errorf("--net tap:%s: %w", name, err)
	}
	return nil
}

// checkImageOutput is what mkimg and up check of the image they will
// write, before reading a set: it must be a regular file or not exist yet
// (a symlink counts as the file it names), its directory must exist, and
// it is not "-" (checkNotStdout). It returns the file that will be
// written.
func checkImageOutput(out string) (string, error) {
	if err := checkNotStdout("-i", out); err != nil { // filemsgs.go
		return "", err
	}
	if err := checkNameLength("image", out); err != nil {
		return "", err
	}
	target, err := atomicfile.Target(out)
	if e, ok := outputTargetError("image", out, err); ok { // filemsgs.go
		return "", e
	}
	if err != nil {
		return "", fmt.Errorf("image %w", err)
	}
	if dir := filepath.Dir(target); !isDir(dir) {
		return "", outputDirError("-i", out, dir, "write it")
	}
	return target, nil
}

// checkWriteProtected refuses to replace target, the file the output
// what and path ("-o", "out.k") names, when it exists and has no write
// permission bit at all (chmod a-w): its owner marked it not to be
// changed. The atomic writer needs only its directory writable, and root
// passes any access check, so it would be replaced; rm and sed -i ask
// before removing or replacing such a file, smolvmm refuses. who is the
// command, advice the other way out ("give -o another file"), the only
// one given when this user could not make the file writable and replace
// it (chmodAdvised).
func checkWriteProtected(what, path, target, who, advice string) error {
	st, err := os.Stat(target)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o222 != 0 {
		return nil
	}
	if chmodAdvised(st, os.Geteuid(), dirWritable(filepath.Dir(target))) {
		advice += ", or make it writable first (chmod u+w " + path + ")"
	}
	return fmt.Errorf("%s %s is write-protected (mode %#o): %s does not replace it; %s", what, path, st.Mode().Perm(), who, advice)
}

// chmodAdvised reports whether chmod u+w is advice the user euid can
// follow for a write-protected file st in a directory it may or may not
// write (dirOK): only the file's owner, or root, may change its mode, and
// the replacement is a rename in that directory. Advising it to anyone
// else (root's kernel in a root-owned directory, to an ordinary user)
// named a step that fails.
func chmodAdvised(st os.FileInfo, euid int, dirOK bool) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || !dirOK {
		return false
	}
	return euid == 0 || int64(sys.Uid) == int64(euid)
}

// dirWritable reports whether this process, by its effective ids, may
// create and remove entries in dir (a read-only file system refuses too).
func dirWritable(dir string) bool {
	return unix.Faccessat(unix.AT_FDCWD, dir, unix.W_OK|unix.X_OK, unix.AT_EACCESS) == nil
}

// checkWritable proves, before any work, that the output what (a flag and
// its value, "-o k.gz", or "image root.img") can be written as it will
// be: by the atomic writer, whose temporary file in the output's
// directory it creates and removes. A missing, read-only or full
// directory, or one that takes no files (/proc/sys), fails here, with
// status 1; a missing one is said as for every output (outputDirError),
// with the flag to change when what begins with one.
func checkWritable(what string, path string) error {
	err := atomicfile.Check(path)
	if err == nil {
		return nil
	}
	var de *atomicfile.DirError
	// Whether the directory is missing is asked of the directory: /proc/sys
	// refuses a new file with ENOENT too.
	if errors.As(err, &de) && !isDir(de.Dir) {
		if flag, _, _ := strings.Cut(what, " "); strings.HasPrefix(flag, "-") {
			return outputDirError(flag, path, de.Dir, "write it")
		}
		return fmt.Errorf("%s: no directory %s to write it in (create it first)", what, de.Dir)
	}
	if errors.As(err, &de) {
		return &fileError{fmt.Sprintf("%s: cannot be written: %v (%s)", what, err, writableAdvice(what, de.Dir, err)), err}
	}
	return fmt.Errorf("%s: cannot be written: %w", what, err)
}

// writableAdvice is what to do about the output what (checkWritable's: a
// flag and its value, "image X", "kernel X (replaced in place)") whose
// directory dir takes no new file (err): give another path, by the flag
// that names it; for a directory the command picked, the current one, cd
// to another. A limit of the process or the system that was met
// (limitAdvice: open files, a file's size) is no fault of the directory.
func writableAdvice(what, dir string, err error) string {
	if a := limitAdvice(err); a != "" { // advice.go
		return a
	}
	flag, _, _ := strings.Cut(what, " ")
	switch flag {
	case "image":
		flag = "-i" // mkimg's and up's
	case "kernel":
		flag = "-o" // kstrip's, writing in place without it
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return "free some space there, or give " + flag + " a path on another file system"
	}
	a := "give " + flag + " a path in a directory you can write"
	if dir == "." && flag == "-i" {
		a += ", or cd to one"
	}
	return a
}

// Linux's limits on a path: NAME_MAX for each name in it, PATH_MAX for
// the whole with its NUL.
const (
	nameMax = 255
	pathMax = 4096
)

// checkNameLength refuses, as a command-line mistake, a path no file can
// have (what names it: "image", "-o"), which the system would refuse with
// "file name too long" after other work; a long name is shown cut.
func checkNameLength(what, path string) error {
	if len(path) >= pathMax {
		return usageErrorf("%s %s: the path is %d bytes; Linux takes at most %d", what, shortName(path), len(path), pathMax-1)
	}
	for _, name := range strings.Split(path, "/") {
		if len(name) > nameMax {
			return usageErrorf("%s %s: the name %s is %d bytes; a file name has at most %d", what, shortName(path), shortName(name), len(name), nameMax)
		}
	}
	return nil
}

// shortName is s, or its start and end around "..." when it is too long
// to be read in a message.
func shortName(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:40] + "..." + s[len(s)-16:]
}

// isDir reports whether path is a directory (after symlinks).
func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// upPreflight checks what up needs besides the flags' values before it
// downloads, strips and builds, as run would find it when it starts the
// VM: the extra -d images open as run opens them, the --snapshot file and
// the image can be written, the network opens (probeNet), and the release
// flags are ones fetch takes.
func upPreflight(c *cli.Context, image string) error {
	if err := newFetcher(c, nil).Check(c.String("version"), c.String("arch")); err != nil {
		return usageErrorf("%v", err)
	}
	if err := checkCacheDir(c); err != nil { // filemsgs.go
		return err
	}
	imgAbs, _ := filepath.Abs(image)
	imgSt, imgErr := os.Stat(image)
	for i, spec := range c.StringSlice("disk") {
		d, _ := blk.ParseDiskSpec(spec) // checked by checkRunFlags
		if abs, _ := filepath.Abs(d.Path); abs == imgAbs {
			return usageErrorf("-d %s: this is the image up builds and boots as ld0; give each image once (use a copy for a second disk)", d.Path)
		}
		if st, err := os.Stat(d.Path); err == nil && imgErr == nil && os.SameFile(st, imgSt) {
			return usageErrorf("-d %s: this is the image up builds and boots as ld0 (%s, through a link); give each image once (use a copy for a second disk)", d.Path, image)
		}
		if err := checkDiskFile(d, i+1, false); err != nil { // ld0 is the image
			return err
		}
	}
	if err := checkNetBSDBootArgs(c); err != nil {
		return err
	}
	if err := checkRunInputs(c); err != nil {
		return err
	}
	if snap := c.String("snapshot"); snap != "" {
		if err := checkOutputFiles([]namedFile{{"--snapshot", snap}}, nil); err != nil {
			return err
		}
		if err := checkWritable("--snapshot "+snap, snap); err != nil {
			return err
		}
		if err := checkSnapshotUser(c, snap); err != nil { // snapshot.go
			return err
		}
	}
	if nc, err := parseNetFlags(c, ""); err == nil { // checked by checkRunFlags
		if err := probeNet(nc); err != nil {
			return err
		}
	}
	target, err := checkImageOutput(image)
	if err != nil {
		return err
	}
	// An image that exists may be fresh and only booted; the mkimg step
	// checks it again when it has to be rebuilt (before the build).
	if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
		return checkWritable("image "+image, image)
	}
	// A file that is no ext2 image and that up did not build is refused
	// now, as the mkimg step would refuse it, not after the download and
	// the strip. Its stamp is beside the release in the cache, whose
	// place is known before the release is fetched; with none (no home
	// directory), the fetch says why.
	if dir, err := newFetcher(c, nil).ReleaseDir(c.String("version"), c.String("arch")); err == nil {
		im := rebuild.Image{Path: image, Stamp: rebuild.DirStamp(dir, image)}
		if v, err := im.Check(); err == nil && v == rebuild.NotImage && !im.Stamp.Describes(image) {
			return notUpImageError(image) // up.go
		}
	}
	return nil
}

// probeNet checks, before up's download, that the run will open the
// network nc as the VMM will: a shared network is running, the user
// network's -p host ports can be bound, a tap can be attached to (and is
// no other interface, nor another VM's). What it opens it closes, and a
// tap it brought up it brings down again.
func probeNet(nc netConfig) error {
	kind, name, _ := strings.Cut(nc.Spec, ":")
	switch {
	case isSharedNet(nc.Spec):
		_, _, err := probeSharedNet(nc.Spec) // netflags.go
		return err
	case nc.Spec == "user":
		return netback.CheckForwardPorts(nc.Forwards)
	case kind == "tap":
		// Left as it was: up, failing later, leaves no down tap up.
		if err := netback.CheckTap(name); err != nil {
			return backendError(nc.Spec, err)
		}
	}
	return nil
}

// checkDiskFile refuses the -d image d, ld n of the VM, as the VM would
// when it opens it, and in its words: missing, or one blk.Open refuses (a
// FIFO, a directory, a file it may not write, one another VM holds). A
// restore's disk (restore) is opened as the restore opens it, with
// blk.OpenRecorded: its guest may have written a compressed stream's
// signature on it, and the restore decides by the snapshot's record. The
// lock goes with the close.
func checkDiskFile(d blk.Spec, n int, restore bool) error {
	if _, err := os.Stat(d.Path); err != nil {
		return inputFileError("-d", d.Path, d.Path, err)
	}
	open := blk.Open
	if restore {
		open = blk.OpenRecorded
	}
	disk, err := open(d.Path, d.Options)
	if err != nil {
		return fmt.Errorf("ld%d: %w", n, notRawAdvice(err, d.Options)) // as run names it; disktail.go
	}
	return disk.Close()
}

// checkKernelFile refuses a -k file the VM would not read, as vmm.New
// refuses it and in its words (advise adds "check the path given with
// -k"), without reading it: missing, not a regular file, larger than any
// kernel image, or empty.
func checkKernelFile(path string) error {
	f, size, err := regfile.Open(path)
	hint := "check the path"
	switch {
	case errors.Is(err, regfile.ErrNotRegular):
		hint = "give a kernel in a regular file (gzipped or not)"
	case err != nil:
	case size > kernelimage.MaxSize:
		err, hint = &regfile.TooLargeError{Path: path, Size: size, Limit: kernelimage.MaxSize}, "this is not a kernel image"
	case size == 0:
		err = fmt.Errorf("%s: the file is empty", path)
	}
	if f != nil {
		f.Close()
	}
	if err != nil {
		return &vmm.Error{Op: "read kernel", Err: err, Hint: hint, Field: "Kernel"}
	}
	return nil
}

// namedFile is a file given on the command line, with the flag that
// named it ("--json", "-k").
type namedFile struct{ flag, path string }

// checkOutputFiles refuses, before any work, outputs that cannot be
// written by replacement (a directory, device, FIFO or socket, also
// through a symlink: status 1, as kstrip's and mkimg's), and, as
// command-line mistakes (status 2), an output given twice or that is one
// of the inputs: compared as files (device and inode, so also through a
// symlink or a hard link) when they exist, as cleaned absolute paths
// otherwise.
func checkOutputFiles(outputs, inputs []namedFile) error {
	type resolved struct {
		namedFile
		target string // the file a replacement writes: symlinks followed
		info   fs.FileInfo
	}
	resolve := func(f namedFile) resolved {
		r := resolved{namedFile: f, target: f.path}
		if t, err := atomicfile.Target(f.path); err == nil {
			r.target = t
		}
		if abs, err := filepath.Abs(r.target); err == nil {
			r.target = abs
		}
		r.info, _ = os.Stat(f.path)
		return r
	}
	same := func(a, b resolved) bool {
		if a.info != nil && b.info != nil {
			return os.SameFile(a.info, b.info)
		}
		return a.target == b.target
	}
	var ins, outs []resolved
	for _, in := range inputs {
		if in.path != "" {
			ins = append(ins, resolve(in))
		}
	}
	for _, o := range outputs {
		if o.path == "" {
			continue
		}
		if err := checkNameLength(o.flag, o.path); err != nil {
			return err
		}
		if _, err := atomicfile.Target(o.path); err != nil {
			if e, ok := outputTargetError(o.flag, o.path, err); ok { // filemsgs.go
				return e
			}
			return fmt.Errorf("%s %w", o.flag, err)
		}
		r := resolve(o)
		for _, prev := range outs {
			if same(r, prev) {
				return usageErrorf("%s %s: %s already writes this file (%s): give each output its own file", o.flag, o.path, prev.flag, prev.path)
			}
		}
		for _, in := range ins {
			if same(r, in) {
				return usageErrorf("%s %s: this is the %s file %s, which it would overwrite: give another file", o.flag, o.path, in.flag, in.path)
			}
		}
		outs = append(outs, r)
	}
	return nil
}

// checkRunInputs checks the inputs run's flags name, without reading
// them: the --share directories and --module files exist (a module is a
// regular file the guest's RAM, -m, can hold) and --chroot's directory is
// empty. up calls it before it downloads; run finds the same faults when
// it opens them.
func checkRunInputs(c *cli.Context) error {
	// The values' mistakes were refused by checkRunFlags.
	for _, spec := range c.StringSlice("share") {
		dir, _, _ := parseShareSpec(spec)
		if err := checkInputDir("--share", spec, dir, shareDirWant); err != nil { // filemsgs.go
			return err
		}
	}
	if err := checkModulesFit(c.StringSlice("module"), int64(c.Int("memory"))<<20); err != nil {
		return err
	}
	if dir := c.String("chroot"); hasFlag(c, "chroot") && dir != "" {
		if err := sandbox.CheckChrootDir(dir); err != nil {
			return fmt.Errorf("--chroot: %w", err)
		}
	}
	return nil
}

// checkModulesFit refuses --module files (specs) that guest RAM, limit
// bytes, cannot hold, from their sizes (fstat) and first two bytes, before
// any is read or mapped: one alone, or all together placed as every
// loader places them, each at a page boundary above the first MiB (low
// memory, below every kernel) and with the 1 MiB the machine keeps free
// above the last (vmm's kernel headroom). That is less than any loader
// needs (the kernel itself is not counted: its file size says nothing of
// what it loads), so no layout a loader takes is refused. A gzipped module
// counts for nothing: NetBSD's native handoff decompresses it, to what
// size its data alone says, and the loader checks that.
func checkModulesFit(specs []string, limit int64) error {
	const page, mib = 4096, 1 << 20
	need := int64(2 * mib)
	for _, spec := range specs {
		path, _, _ := parseModuleSpec(spec) // checked by checkRunFlags
		f, size, err := regfile.Open(path)
		if err == nil && size > limit {
			err = &regfile.TooLargeError{Path: path, Size: size, Limit: limit}
		}
		var magic [2]byte
		if err == nil && size >= 2 {
			_, err = f.ReadAt(magic[:], 0)
		}
		if f != nil {
			f.Close()
		}
		if err != nil {
			return moduleFileError(spec, path, err) // run.go
		}
		if !kernelimage.IsGzip(magic[:]) {
			need += (size + page - 1) &^ (page - 1)
		}
	}
	if need > limit {
		what := fmt.Sprintf("the %d modules need", len(specs))
		if len(specs) == 1 {
			what = specs[0] + " needs"
		}
		return &fileError{fmt.Sprintf("--module: %s %s of guest RAM at least (each at a page above the first MiB, and 1 MiB free above them), more than the %s given (raise -m)",
			what, regfile.Size(need), regfile.Size(limit)), regfile.ErrTooLarge}
	}
	return nil
}

// checkNetBSDBootArgs refuses, before up fetches its kernel, what the
// loader of that kernel, a NetBSD one, would refuse: -a's boot flags and
// console=, root= words, which its multiboot entry and NetBSD's native
// handoff read by the same rules (netbsdboot.ParseAppend), and a
// --module's type, which the native handoff reads (it is the one auto and
// --boot netbsd choose for a NetBSD kernel given modules; --boot
// multiboot refuses the modules, whatever their type, when the kernel
// loads). The errors are run's: the library's words, advise's advice,
// status 2.
func checkNetBSDBootArgs(c *cli.Context) error {
	if a := c.String("append"); a != "" {
		if _, err := netbsdboot.ParseAppend(a); err != nil {
			return usageStatus{&vmm.Error{Op: "-a", Err: err, Field: "Append"}}
		}
	}
	if hasFlag(c, "boot") {
		if p, _ := bootplan.ParseProtocol(c.String("boot")); p == bootplan.Multiboot { // checked by checkRunFlags
			return nil
		}
	}
	for _, spec := range c.StringSlice("module") {
		_, args, _ := parseModuleSpec(spec) // checked by checkRunFlags
		if _, err := netbsdboot.ParseModuleType(args); err != nil {
			return usageStatus{&vmm.Error{Op: "--module " + spec, Err: err, Field: "Modules"}}
		}
	}
	return nil
}

// filesArgs are the commands whose arguments are files, one of which may
// be named like a flag: it is given as ./NAME, since checkArgs refuses
// an argument that starts with '-' even after a --. Other commands take
// no argument or names (fetch's sets, up's SERVICE, which has no '/' and
// so cannot be given so).
var filesArgs = map[string]bool{"kstrip": true}

// checkArgs refuses, in one wording for every command, the arguments a
// command does not take: beyond the first max (max < 0: no limit), and
// any that looks like a flag. urfave/cli stops reading flags at the first
// argument, so `fetch rescue --mirror URL` passed "--mirror" and the URL
// on as set names. takes says what the command takes ("one KERNEL").
func checkArgs(c *cli.Context, max int, takes string) error {
	name := c.Command.Name
	args := c.Args().Slice()
	for i, a := range args {
		if len(a) > 1 && a[0] == '-' {
			// The flag package reads every flag before the first
			// argument, and consumes a --: a first argument that looks
			// like a flag came after a --, which made it an argument.
			if i == 0 && filesArgs[name] {
				return usageErrorf("after --, %s is an argument, and flags go before the arguments: drop the -- for the flag %s, or write ./%s for a file named %s (see smolvmm %s --help)", a, a, a, a, name)
			}
			if i == 0 {
				return usageErrorf("after --, %s is an argument: drop the -- (see smolvmm %s --help)", a, name)
			}
			return usageErrorf("flag %s after the arguments: flags go before the arguments (see smolvmm %s --help)", a, name)
		}
	}
	if max < 0 || len(args) <= max {
		return nil
	}
	if max == 0 {
		return usageErrorf("unexpected argument %q: smolvmm %s takes only flags (see smolvmm %s --help)", args[0], name, name)
	}
	return usageErrorf("unexpected argument %q: smolvmm %s takes %s, after the flags (see smolvmm %s --help)", args[max], name, takes, name)
}

// fileError is an error about a flag's file, worded to name the path once.
type fileError struct {
	msg string
	err error
}

func (e *fileError) Error() string { return e.msg }
func (e *fileError) Unwrap() error { return e.err }

// flagFileError is err about the file path that flag's value spec names
// (spec is path, or path with ",args" after it). When spec is the path,
// the path is named once: "--module /dev/null is a character device",
// "--module x: no such file or directory"; regfile's and os's errors
// begin with the path, which "--module x: " had named already.
func flagFileError(flag, spec, path string, err error) error {
	if spec == path {
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == path && err.Error() == pe.Error() {
			return &fileError{fmt.Sprintf("%s %s: %v", flag, spec, pe.Err), err}
		}
		if rest, ok := strings.CutPrefix(err.Error(), path+" "); ok {
			return &fileError{fmt.Sprintf("%s %s %s", flag, spec, rest), err}
		}
	}
	return fmt.Errorf("%s %s: %w", flag, spec, err)
}

// checkImageOutsideService refuses an image that a build of service name
// from the services directory dir reads: one in the service's etc/ or
// postinst/, its service.conf, or in dir's common/ (the library's
// CheckOutputNotInService, said as advice before any work).
// The image would be copied into the next image built from the service,
// and the guest's writes to it would change the service's digest, so that
// every up rebuilt it. A service that does not load is left to the
// build, which says why.
func checkImageOutsideService(image, dir, name string) error {
	if dir == "" {
		return nil
	}
	svc, err := service.Load(name, dir)
	if err != nil {
		return nil
	}
	var oe *imagebuilder.OutputIsInputError
	if errors.As(imagebuilder.CheckOutputNotInService(image, svc), &oe) {
		return usageErrorf("image %s is in %s, which the build of service %s reads: the image would be copied into itself (into the next image built), and the guest's writes to it would make every up rebuild the image; give -i a file outside %s's etc/ and postinst/ and outside %s", image, oe.Input, name, filepath.Join(svc.Dir, name), filepath.Join(svc.Dir, service.CommonDir))
	}
	return nil
}

// buildInput is a file or directory a build reads: its path and what it
// is to the build, for messages ("a set given with -x").
type buildInput struct{ path, what string }

// checkImageNotInput refuses, as a command-line mistake, an image that is
// one of the build's inputs (the same file, also through a link), or that
// lies in an input directory: a set file would be overwritten by the
// image made of it, and a directory's image would be read into the next
// image built from it (with -f), or half-written into this one. Links are
// followed on both sides; an input that is not there is left to its own
// checks.
func checkImageNotInput(image string, inputs []buildInput) error {
	paths := make([]string, len(inputs))
	for i, in := range inputs {
		paths[i] = in.path
	}
	var oe *imagebuilder.OutputIsInputError
	if !errors.As(imagebuilder.CheckOutputNotInput(image, paths...), &oe) {
		return nil
	}
	what := ""
	for _, in := range inputs {
		if in.path == oe.Input {
			what = in.what
			break
		}
	}
	if oe.InDir {
		return usageErrorf("image %s is in %s (%s): the image would be read into itself (an old one into the next image built there); give -i a file outside %s", image, oe.Input, what, oe.Input)
	}
	return usageErrorf("image %s is %s (%s): writing the image would overwrite what it is built from; give -i another file", image, oe.Input, what)
}
