package imagebuilder

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/internal/termsafe"
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
		problem := notExecutable(t, p)
		if problem == "" {
			return p, nil
		}
		why = append(why, p+": "+problem)
	}
	// Each path once, with what stands there (it was listed twice).
	return "", fmt.Errorf("%w: NetBSD starts the first of these that is an executable file, and this tree has none: %s; its sets must provide one (the rescue set and base do)",
		ErrNoInit, strings.Join(why, "; "))
}

// notExecutable says what stands at the absolute path p of t instead of
// an executable regular file (following symlinks inside the tree, as
// resolve does): resolve's error, "a directory", "not executable (mode
// 0644)"; "" when the file is there. resolve names paths of the image,
// which a set's link can fill with control characters: they are made
// printable.
func notExecutable(t *fstree.Tree, p string) string {
	n, err := resolve(t, p)
	switch {
	case err != nil:
		return termsafe.Line(err.Error())
	case n.Type != fstree.Regular:
		return "a " + n.Type.String()
	case n.Perm&0o111 == 0:
		return fmt.Sprintf("not executable (mode %04o)", n.Perm)
	}
	return ""
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

// The shells NetBSD's init runs /etc/rc with (and a single-user shell):
// INIT_BSHELL of sbin/init/init.c, _PATH_BSHELL, or for the rescue set's
// init, built with RESCUEDIR, RESCUEDIR "/sh".
const (
	initShell       = "/bin/sh"
	rescueInitShell = "/rescue/sh"
)

// initRunCom is the script NetBSD's init runs, _PATH_RUNCOM: its program
// holds it as a C string, which tells it from an init of the user's own.
const initRunCom = "/etc/rc"

// fileContains reports whether the content of regular file n holds
// needle, holes read as zeros, without assembling a sparse file whole.
func fileContains(n *fstree.Node, needle []byte) bool {
	k := len(needle) - 1
	var tail []byte // the last k bytes before the current extent
	end := int64(0)
	zeros := func(gap int64) []byte { return make([]byte, min(gap, int64(k))) }
	for _, e := range n.Extents {
		if e.Off >= n.Size {
			break
		}
		data := e.Data
		if e.Off+int64(len(data)) > n.Size {
			data = data[:n.Size-e.Off]
		}
		if e.Off > end {
			tail = append(tail, zeros(e.Off-end)...)
		}
		join := append(append([]byte(nil), tail...), data[:min(len(data), k)]...)
		if bytes.Contains(join, needle) || bytes.Contains(data, needle) {
			return true
		}
		tail = append(tail, data[max(0, len(data)-k):]...)
		tail = tail[max(0, len(tail)-k):]
		end = e.Off + int64(len(data))
	}
	if n.Size > end {
		return bytes.Contains(append(tail, zeros(n.Size-end)...), needle)
	}
	return false
}

// ErrNoShell is matched (errors.Is) by a *ShellError: the tree's init,
// NetBSD's, has no shell to run /etc/rc with.
var ErrNoShell = errors.New("no shell for init")

// ShellError is BuildTree's error, and Build's, for a tree whose init,
// NetBSD's, has no shell to run /etc/rc with: init execs it for /etc/rc
// and, when that fails, for a single-user shell, so the image would never
// get past init.
type ShellError struct {
	Init    string // the init FindInit chose, e.g. /sbin/init
	Shell   string // the shell that init runs: /bin/sh, or /rescue/sh for the rescue set's init
	Problem string // what stands at Shell instead: "not found", "a directory"...
}

// Error names the init, its shell and what stands there.
func (e *ShellError) Error() string {
	who := "init " + e.Init
	if e.Shell == rescueInitShell {
		who = "init " + e.Init + ", the rescue set's,"
	}
	return fmt.Sprintf("%s runs /etc/rc with %s, and the image has no such program (%s: %s): without it init starts neither /etc/rc nor a single-user shell; its sets must provide it (the rescue set has /rescue/sh, base /bin/sh)",
		who, e.Shell, e.Shell, e.Problem)
}

// Is makes errors.Is(err, ErrNoShell) true.
func (e *ShellError) Is(target error) bool { return target == ErrNoShell }

// checkShell checks that t holds, as an executable file, the shell the
// init at initPath (FindInit's) runs /etc/rc with, following symlinks
// inside the tree. Only NetBSD's init is checked: an ELF program holding
// the C string "/etc/rc" (its _PATH_RUNCOM, sbin/init/pathnames.h). Any
// other init, a program of the user's own that needs no shell or a "#!"
// script the kernel runs through its interpreter, is left alone, as
// before the check. NetBSD's init is the rescue set's when it is the very
// file at /rescue/init (that path, a symlink to it or a hard link, as
// AddRescueLinks makes /sbin/init): its program is built with RESCUEDIR.
func checkShell(t *fstree.Tree, initPath string) error {
	shell := initShell
	n, err := resolve(t, initPath)
	if err != nil {
		return err
	}
	if _, ok := elfMachine(n); !ok || !fileContains(n, []byte(initRunCom+"\x00")) {
		return nil
	}
	if r, err := resolve(t, "/rescue/init"); err == nil && r == n {
		shell = rescueInitShell
	}
	if problem := notExecutable(t, shell); problem != "" {
		return &ShellError{Init: initPath, Shell: shell, Problem: problem}
	}
	return nil
}
