package imagebuilder

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// InitPaths are where NetBSD's kernel looks for init, in its order
// (initpaths[] in sys/kern/init_main.c:931, NetBSD 9.1); with none of them
// it panics "no init".
var InitPaths = []string{"/sbin/init", "/sbin/oinit", "/sbin/init.bak", "/rescue/init"}

// ErrNoInit is matched by the error of FindInit, and of BuildTree, for a
// tree the kernel could not start: none of InitPaths is an executable file.
var ErrNoInit = errors.New("no init")

// maxSymlinks bounds the symlinks followed resolving one path, as the
// kernel's MAXSYMLINKS does.
const maxSymlinks = 32

// FindInit returns the first of InitPaths that t holds as an executable
// regular file, following symlinks inside the tree (a /sbin that links to
// /rescue works). The error says, for each path, what stands there.
func FindInit(t *fstree.Tree) (string, error) {
	var why []string
	for _, p := range InitPaths {
		n, err := resolve(t, p)
		switch {
		case err != nil:
			why = append(why, p+": "+err.Error())
		case n.Type != fstree.Regular:
			why = append(why, fmt.Sprintf("%s: a %s", p, n.Type))
		case n.Perm&0o111 == 0:
			why = append(why, fmt.Sprintf("%s: not executable (mode %04o)", p, n.Perm))
		default:
			return p, nil
		}
	}
	// Each path once, with what stands there (it was listed twice).
	return "", fmt.Errorf("%w: NetBSD starts the first of these that is an executable file, and this tree has none: %s; its sets must provide one (the rescue set and base do)",
		ErrNoInit, strings.Join(why, "; "))
}

// resolve returns the node at absolute path p of t, following symlinks in
// every component as the kernel's namei would, relative ones from their
// directory and absolute ones from the tree's root; ".." at the root stays
// at the root (sys/kern/vfs_lookup.c:952-975, NetBSD 9.1), so a link that
// climbs above it still resolves.
func resolve(t *fstree.Tree, p string) (*fstree.Node, error) {
	rest := strings.Split(strings.TrimPrefix(p, "/"), "/")
	var done []string
	n := t.Root
	for hops := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			n = walkTo(t, done)
			continue
		}
		if n.Type != fstree.Dir {
			return nil, fmt.Errorf("/%s is not a directory", path.Join(done...))
		}
		next := n.Child(name)
		switch {
		case next == nil && hops == 0:
			return nil, errors.New("not found")
		case next == nil:
			return nil, fmt.Errorf("/%s not found", path.Join(append(done, name)...))
		}
		if next.Type == fstree.Symlink {
			if hops++; hops > maxSymlinks {
				return nil, errors.New("too many symlinks")
			}
			if strings.HasPrefix(next.Target, "/") {
				done = nil
			}
			rest = append(strings.Split(next.Target, "/"), rest...)
			n = walkTo(t, done)
			continue
		}
		done = append(done, name)
		n = next
	}
	return n, nil
}

// walkTo returns the directory at the already resolved components done.
func walkTo(t *fstree.Tree, done []string) *fstree.Node {
	n := t.Root
	for _, d := range done {
		n = n.Child(d)
	}
	return n
}

// InitArchError is BuildTree's error when the init the kernel would start
// is an ELF program for another port than Config.Arch, or for a machine
// images cannot be built for: the image's /dev numbers would be another
// port's.
type InitArchError struct {
	Init    string      // the init FindInit chose, e.g. /rescue/init
	Machine elf.Machine // its ELF header's e_machine
	Port    string      // ArchI386 or ArchAMD64 for Machine; "" for another machine
	Arch    string      // Config.Arch; "" when none was given
}

// Error names the port of the sets and the one asked for.
func (e *InitArchError) Error() string {
	if e.Port == "" {
		return fmt.Sprintf("the sets are for no port images can be built for (%s or %s): their init %s is an ELF program for machine %v (%d)",
			ArchI386, ArchAMD64, e.Init, e.Machine, uint16(e.Machine))
	}
	return fmt.Sprintf("the sets are for %s, not %s: their init %s is an ELF program for machine %v (%d)", e.Port, e.Arch, e.Init, e.Machine, uint16(e.Machine))
}

// machinePorts are the ports of the ELF machines of their programs.
var machinePorts = map[elf.Machine]string{elf.EM_386: ArchI386, elf.EM_X86_64: ArchAMD64}

// initPort returns the port of the sets' init and an error when that is
// not arch ("" accepts either port). It returns "" when the sets have no
// init yet (BuildTree's FindInit reports that once the service is laid
// over them) or their init is no ELF program: the kernel runs a "#!"
// script as init too (options EXEC_SCRIPT), and an ELF header too broken
// to read is one it refuses to start, as before.
func initPort(t *fstree.Tree, arch string) (string, error) {
	p, err := FindInit(t)
	if err != nil {
		return "", nil
	}
	n, err := resolve(t, p)
	if err != nil {
		return "", nil
	}
	m, ok := elfMachine(n)
	if !ok {
		return "", nil
	}
	port := machinePorts[m]
	if port == "" || (arch != "" && port != arch) {
		return "", &InitArchError{Init: p, Machine: m, Port: port, Arch: arch}
	}
	return port, nil
}

// elfMachine returns the e_machine of the ELF header at the start of
// regular file n; ok is false for a file that starts with none. The field
// is at the same offset in ELF32 and ELF64 headers, in the byte order
// the header declares.
func elfMachine(n *fstree.Node) (m elf.Machine, ok bool) {
	var h [20]byte
	if n.Size < int64(len(h)) {
		return 0, false
	}
	// Only the first bytes, wherever they lie: Content would assemble a
	// large sparse file whole.
	for _, e := range n.Extents {
		if e.Off < int64(len(h)) {
			copy(h[e.Off:], e.Data)
		}
	}
	if string(h[:4]) != elf.ELFMAG {
		return 0, false
	}
	if c := elf.Class(h[elf.EI_CLASS]); c != elf.ELFCLASS32 && c != elf.ELFCLASS64 {
		return 0, false
	}
	switch elf.Data(h[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		return elf.Machine(binary.LittleEndian.Uint16(h[18:])), true
	case elf.ELFDATA2MSB:
		return elf.Machine(binary.BigEndian.Uint16(h[18:])), true
	}
	return 0, false
}
