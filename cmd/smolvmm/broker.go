package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/sandbox"
	"github.com/smolvmm/smolvmm/snapshot"
)

// The broker renames and removes a --snapshot VMM's snapshots for it: a
// VMM a guest took over would otherwise reach any name its seccomp
// filter lets the calls take (the filter sees descriptors and flags,
// never paths), since renameat and unlinkat accept an absolute name or
// ".." whatever directory descriptor they are given. The broker is this
// program again, started before the VMM's containment and never
// chrooted, holding the snapshot's directory; the VMM asks it over a
// socketpair to do one of a fixed set of operations, whose names the
// broker alone knows:
//
//	'v' check:   see that the names still hold the VMM's files, as the
//	             commits left them (snapshot.DirRenamer.Check)
//	'c' commit:  check, then rename the snapshot's temporary over its
//	             file (the first time), or exchange the spare with it,
//	             and sync the directory (snapshot.DirRenamer.Commit)
//	'd' discard: remove the temporaries that are not the file
//	's' socket:  remove the shared network's socket file, for its
//	             daemon (smolvmm net) alone: the path it was given at
//	             its start, if that is still the socket the daemon
//	             bound (the device and inode given with it)
//	'r' resolver: stat the host's /etc/hosts and /etc/resolv.conf, and
//	             read them when the request's second byte is 1 (0:
//	             their stamps alone), with the interface index of each
//	             zone resolv.conf's nameservers name, for a shared
//	             network's daemon alone (netback.ReadHostFiles: fixed
//	             paths, no name from the daemon, each read to
//	             netback.MaxHostFileSize; the indexes from
//	             /sys/class/net, as the daemon's filter refuses the
//	             netlink socket the net package asks)
//
// A request is its one byte ('r': two); an answer is an errno (4 bytes,
// little endian; 0 for success, answerMoved for snapshot.ErrMoved,
// answerTempMoved for snapshot.ErrTempMoved) and a message; for 'r', a
// success's code is followed by the length of its data (4 bytes) and the
// data, in messages of at most brokerChunk bytes (hostFilesData). The broker runs as the user the
// VMM drops to (the temporaries are that user's and their directory
// writable by it, snapshot.Target.AllowUser checks), under a filter of
// its own (brokerFilter), and ends when the VMM ends (the socket's
// end), discarding the temporaries left: not by SIGINT, SIGTERM, SIGHUP
// or SIGQUIT, which it ignores, a signal to the process group being
// one to the VMM. It is started as the VMM's
// user (root, with --user) and drops to that user itself, as the VMM
// does (sandbox.DropPrivileges): a process given its user at exec stays
// dumpable, with its bounding set whole, and any process of that user
// could then take its descriptors (pidfd_getfd), stderr among them,
// which may be a file only root may write.
//
// A shared network's daemon has a broker too, for its lease file (as a
// snapshot) and its socket file, which its filter keeps it from
// renaming and removing itself, and for the host's resolver files, which
// it may not open (its broker's filter allows opening for reading only).
//
// A shared network's hub is not the broker's to dial: the VMM dials it
// itself (its filter allows Unix sockets then), since a broker for every
// VM on a shared network would cost each more memory than the VM itself.

// brokerEnv marks the broker's process; the arguments say what it holds.
const brokerEnv = "SMOLVMM_BROKER"

// brokerCommandEnv names the command that started a VMM's broker.
const brokerCommandEnv = "SMOLVMM_BROKER_COMMAND"

// brokerNoSeccomp is brokerEnv's value for a broker started without its
// filter (--no-seccomp).
const brokerNoSeccomp = "no-seccomp"

// brokerMode is brokerEnv's value for a broker started with its filter
// (seccomp) or without.
func brokerMode(seccomp bool) string {
	if !seccomp {
		return brokerNoSeccomp
	}
	return "1"
}

// brokerFiltered says whether this broker installs its filter, as
// brokerEnv says.
func brokerFiltered() bool { return os.Getenv(brokerEnv) != brokerNoSeccomp }

// brokerUserEnv is "UID:GID", the user the broker drops to, when it has
// one.
const brokerUserEnv = "SMOLVMM_BROKER_USER"

// The broker's descriptors: the socket to the VMM, then the snapshot's
// directory.
const (
	brokerSockFD = 3
	brokerDirFD  = 4
)

const (
	opCheck        = 'v'
	opCommit       = 'c'
	opDiscard      = 'd'
	opRemoveSocket = 's'
	opHostFiles    = 'r'
)

// brokerChunk is the most bytes of one message of an 'r' answer: far
// below any socket's send buffer, whose size bounds a SOCK_SEQPACKET
// message.
const brokerChunk = 16 << 10

// hostFileHeader is the size of one file's part of an 'r' answer before
// its content: present, cut (1 byte each), inode, size, mtime, ctime (8
// each), the content's length (4).
const hostFileHeader = 2 + 4*8 + 4

// hostZoneSize is the most bytes of one zone of an 'r' answer: its
// name's length (1 byte), its name, its index (4).
const hostZoneSize = 1 + netback.MaxInterfaceName + 4

// maxHostFilesData bounds an 'r' answer's data: two files, the number of
// zones (1 byte) and the zones.
const maxHostFilesData = 2*(hostFileHeader+netback.MaxHostFileSize) + 1 + netback.MaxHostZones*hostZoneSize

// answerMoved is the answer's code for snapshot.ErrMoved, beyond any
// errno; answerTempMoved for snapshot.ErrTempMoved (ErrMoved of a
// temporary's name, for which the advice differs).
const (
	answerMoved     = 1 << 20
	answerTempMoved = answerMoved + 1
)

// brokerArgs are the broker's command line after its name: the
// snapshot's file name in its directory, its two temporaries', then the
// three files' identities ("DEV:INO"; "-" for no file); for a shared
// network's daemon, then its socket's absolute path and identity.
type brokerArgs struct {
	files snapshot.Files
	// socket is the daemon's socket file, socketID the socket it bound
	// there; "" for a VMM's broker.
	socket   string
	socketID snapshot.FileID
	// command is the VMM's command (run, up), which its broker's report
	// of a refused call names with --no-seccomp; passed in
	// brokerCommandEnv, not on the command line.
	command string
}

func (a brokerArgs) list() []string {
	f := a.files
	l := []string{"smolvmm-broker", f.File, f.Temps[0], f.Temps[1],
		formatFileID(f.FileID), formatFileID(f.TempIDs[0]), formatFileID(f.TempIDs[1])}
	if a.socket != "" {
		l = append(l, a.socket, formatFileID(a.socketID))
	}
	return l
}

func formatFileID(id snapshot.FileID) string {
	if id == (snapshot.FileID{}) {
		return "-"
	}
	return fmt.Sprintf("%d:%d", id.Dev, id.Ino)
}

// parseBrokerArgs reads the broker's command line (brokerArgs.list).
func parseBrokerArgs(args []string) (brokerArgs, error) {
	if len(args) != 7 && len(args) != 9 {
		return brokerArgs{}, fmt.Errorf("%d arguments; want 6, or 8 for a shared network's (%s is set by smolvmm for its broker; unset it)", len(args)-1, brokerEnv)
	}
	f := snapshot.Files{File: args[1], Temps: [2]string{args[2], args[3]}}
	for _, name := range []string{f.File, f.Temps[0], f.Temps[1]} {
		// Names in the directory, never a path out of it.
		if strings.ContainsRune(name, '/') || name == "." || name == ".." || name == "" {
			return brokerArgs{}, fmt.Errorf("%q is not a file's name in the snapshot's directory", name)
		}
	}
	for i, p := range []*snapshot.FileID{&f.FileID, &f.TempIDs[0], &f.TempIDs[1]} {
		v := args[4+i]
		if v == "-" && i == 0 {
			continue // no file there at the start
		}
		id, err := parseFileID(v)
		if err != nil {
			return brokerArgs{}, err
		}
		*p = id
	}
	a := brokerArgs{files: f}
	if len(args) == 9 {
		// Absolute: the broker names it through the directory's
		// descriptor (removeSocketFile), the only one its filter lets
		// it name files through.
		if a.socket = args[7]; !filepath.IsAbs(a.socket) || filepath.Clean(a.socket) != a.socket {
			return brokerArgs{}, fmt.Errorf("%q is not a socket's absolute path", a.socket)
		}
		id, err := parseFileID(args[8])
		if err != nil {
			return brokerArgs{}, err
		}
		a.socketID = id
	}
	return a, nil
}

// parseFileID reads a file's identity, "DEV:INO" (formatFileID).
func parseFileID(v string) (snapshot.FileID, error) {
	d, n, ok := strings.Cut(v, ":")
	dev, err1 := strconv.ParseUint(d, 10, 64)
	ino, err2 := strconv.ParseUint(n, 10, 64)
	if !ok || err1 != nil || err2 != nil || ino == 0 {
		return snapshot.FileID{}, fmt.Errorf("%q is not a file's DEV:INO", v)
	}
	return snapshot.FileID{Dev: dev, Ino: ino}, nil
}

// maybeBrokerMain runs the broker and exits when this process is one.
func maybeBrokerMain() {
	if os.Getenv(brokerEnv) == "" {
		return
	}
	// A signal to the process group (Ctrl-C off a terminal, timeout(1),
	// a service manager's stop) reaches the broker too: it outlives the
	// VMM, which ends by it, and removes the temporaries when the VMM's
	// socket ends, as it does whatever ends the VMM.
	signal.Ignore(unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	_ = sandbox.SetName("smolvmm-broker") // started as /proc/self/exe, it was named exe
	// First, while still root's: no process of the user it drops to may
	// attach to it or take its descriptors, at any moment (dropping
	// sets it again, whatever fs.suid_dumpable says).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "smolvmm broker: prctl(PR_SET_DUMPABLE, 0): %v\n", err)
		os.Exit(1)
	}
	os.Exit(brokerMain(os.Args))
}

// brokerMain serves the VMM's requests until the socket ends.
func brokerMain(args []string) int {
	a, err := parseBrokerArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "smolvmm broker: %v\n", err)
		return 2
	}
	if u := os.Getenv(brokerUserEnv); u != "" {
		cr, err := parseBrokerUser(u)
		if err != nil {
			fmt.Fprintf(os.Stderr, "smolvmm broker: %v\n", err)
			return 2
		}
		if err := sandbox.DropPrivileges(cr); err != nil {
			fmt.Fprintf(os.Stderr, "smolvmm broker: %v\n", err)
			return 1
		}
	} else if os.Geteuid() != 0 {
		// Keeping its user, as the VMM does, it drops what capabilities
		// that user was started with, as the VMM does too.
		if _, _, err := sandbox.DropCapabilities(execForbidden(brokerFiltered())); err != nil {
			fmt.Fprintf(os.Stderr, "smolvmm broker: %v\n", err)
			return 1
		}
	}
	ren := snapshot.NewDirRenamer(os.NewFile(brokerDirFD, "snapshot directory"), a.files)
	if brokerFiltered() {
		if _, err := sandbox.Install(brokerFilter(a.socket != "", os.Getenv(brokerCommandEnv))); err != nil {
			fmt.Fprintf(os.Stderr, "smolvmm broker: %v\n", err)
			return 1
		}
	}
	// Whatever ends the loop, the temporaries are not left behind: the
	// VMM may have been killed before its own discard.
	end := func() int {
		_ = ren.Discard()
		return 0
	}
	buf := make([]byte, 16)
	for {
		n, err := unix.Read(brokerSockFD, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			return end() // the VMM is gone
		}
		req := buf[:n]
		if n > 0 && req[0] == opHostFiles {
			data, err := brokerHostFiles(a, req)
			if err == nil {
				err = brokerAnswerData(data)
			} else {
				err = brokerAnswer(err)
			}
			if err != nil {
				return end()
			}
			continue
		}
		if err := brokerAnswer(brokerServe(a, ren, req)); err != nil {
			return end()
		}
	}
}

// brokerServe does request req with a's names and ren: one byte, an
// operation the broker's owner may ask (removing a socket is a
// network's alone).
func brokerServe(a brokerArgs, ren *snapshot.DirRenamer, req []byte) error {
	switch {
	case len(req) != 1:
		return fmt.Errorf("broker: request of %d bytes: %w", len(req), unix.EINVAL)
	case req[0] == opCheck:
		return ren.Check()
	case req[0] == opCommit:
		return ren.Commit()
	case req[0] == opDiscard:
		return ren.Discard()
	case req[0] == opRemoveSocket && a.socket != "":
		return removeSocketFile(brokerDirFD, a.socket, a.socketID)
	}
	return fmt.Errorf("broker: request %q: %w", req[0], unix.EINVAL)
}

// brokerHostFiles does an 'r' request: two bytes, the second 0 (the
// stamps) or 1 (and the content), for a shared network's broker alone.
// The paths are netback's, never the daemon's.
func brokerHostFiles(a brokerArgs, req []byte) ([]byte, error) {
	if a.socket == "" || len(req) != 2 || req[1] > 1 {
		return nil, fmt.Errorf("broker: request %q: %w", req, unix.EINVAL)
	}
	return hostFilesData(netback.ReadHostFiles(req[1] == 1)), nil
}

// hostFilesData lays out files for an 'r' answer: for the hosts file,
// then resolv.conf, hostFileHeader bytes (little endian) and the
// content; then the number of zones (1 byte) and, in the order of their
// names, each name's length (1 byte), the name and its index (4 bytes,
// little endian). Zones beyond netback.MaxHostZones, or named beyond
// netback.MaxInterfaceName, which netback.ReadHostFiles never gives, are
// left out.
func hostFilesData(files netback.HostFiles) []byte {
	var b []byte
	for _, f := range []netback.HostFile{files.Hosts, files.ResolvConf} {
		flag := func(v bool) byte {
			if v {
				return 1
			}
			return 0
		}
		b = append(b, flag(f.Stamp.Present), flag(f.Cut))
		for _, v := range []uint64{f.Stamp.Ino, uint64(f.Stamp.Size), uint64(f.Stamp.Mtime), uint64(f.Stamp.Ctime)} {
			b = binary.LittleEndian.AppendUint64(b, v)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f.Content)))
		b = append(b, f.Content...)
	}
	var names []string
	for name, index := range files.Zones {
		if name != "" && len(name) <= netback.MaxInterfaceName && index > 0 && index <= math.MaxInt32 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	names = names[:min(len(names), netback.MaxHostZones)]
	b = append(b, byte(len(names)))
	for _, name := range names {
		b = append(b, byte(len(name)))
		b = append(b, name...)
		b = binary.LittleEndian.AppendUint32(b, uint32(files.Zones[name]))
	}
	return b
}

// parseHostFiles reads an 'r' answer's data (hostFilesData); content
// says whether the files' content was asked, nil rather than empty
// otherwise.
func parseHostFiles(b []byte, content bool) (netback.HostFiles, error) {
	var files [2]netback.HostFile
	for i := range files {
		if len(b) < hostFileHeader {
			return netback.HostFiles{}, fmt.Errorf("broker: the resolver's files: %d bytes left of the answer for file %d, want %d at least", len(b), i, hostFileHeader)
		}
		f := &files[i]
		f.Stamp.Present, f.Cut = b[0] == 1, b[1] == 1
		f.Stamp.Ino = binary.LittleEndian.Uint64(b[2:])
		f.Stamp.Size = int64(binary.LittleEndian.Uint64(b[10:]))
		f.Stamp.Mtime = int64(binary.LittleEndian.Uint64(b[18:]))
		f.Stamp.Ctime = int64(binary.LittleEndian.Uint64(b[26:]))
		n := uint64(binary.LittleEndian.Uint32(b[34:]))
		b = b[hostFileHeader:]
		if n > netback.MaxHostFileSize || n > uint64(len(b)) || !content && n != 0 {
			return netback.HostFiles{}, fmt.Errorf("broker: the resolver's files: file %d's content of %d bytes (%d left, at most %d)", i, n, len(b), netback.MaxHostFileSize)
		}
		if content {
			f.Content = b[:n:n]
		}
		b = b[n:]
	}
	if len(b) < 1 {
		return netback.HostFiles{}, fmt.Errorf("broker: the resolver's files: the answer ends before its number of zones")
	}
	count := int(b[0])
	b = b[1:]
	if count > netback.MaxHostZones || !content && count != 0 {
		return netback.HostFiles{}, fmt.Errorf("broker: the resolver's files: %d zones (at most %d, none without the content)", count, netback.MaxHostZones)
	}
	var zones map[string]int
	for i := range count {
		if len(b) < 1 || len(b) < 1+int(b[0])+4 {
			return netback.HostFiles{}, fmt.Errorf("broker: the resolver's files: %d bytes left of the answer for zone %d", len(b), i)
		}
		n := int(b[0])
		name := string(b[1 : 1+n])
		index := binary.LittleEndian.Uint32(b[1+n:])
		b = b[1+n+4:]
		if _, dup := zones[name]; n == 0 || n > netback.MaxInterfaceName || index == 0 || index > math.MaxInt32 || dup {
			return netback.HostFiles{}, fmt.Errorf("broker: the resolver's files: zone %d, %q of index %d (a name of 1 to %d bytes, given once, and an index from 1 to %d)", i, name, index, netback.MaxInterfaceName, math.MaxInt32)
		}
		if zones == nil {
			zones = map[string]int{}
		}
		zones[name] = int(index)
	}
	if len(b) != 0 {
		return netback.HostFiles{}, fmt.Errorf("broker: the resolver's files: %d bytes past the answer", len(b))
	}
	return netback.HostFiles{Hosts: files[0], ResolvConf: files[1], Zones: zones}, nil
}

// brokerAnswerData sends a successful answer and its data: the code 0
// and the data's length, then the data, in messages of brokerChunk bytes
// at most.
func brokerAnswerData(data []byte) error {
	msg := make([]byte, 8, brokerChunk)
	binary.LittleEndian.PutUint32(msg[4:], uint32(len(data)))
	n := min(len(data), brokerChunk-len(msg))
	msg, data = append(msg, data[:n]...), data[n:]
	for {
		if _, err := unix.Write(brokerSockFD, msg); err != nil {
			return err
		}
		if len(data) == 0 {
			return nil
		}
		n := min(len(data), brokerChunk)
		msg, data = data[:n], data[n:]
	}
}

// parseBrokerUser reads brokerUserEnv's value, "UID:GID".
func parseBrokerUser(v string) (sandbox.Credentials, error) {
	u, g, ok := strings.Cut(v, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil {
		return sandbox.Credentials{}, fmt.Errorf("%s=%q is not UID:GID (it is set by smolvmm for its broker; unset it)", brokerUserEnv, v)
	}
	return sandbox.Credentials{UID: uid, GID: gid}, nil
}

// brokerAnswer sends the answer to a request: err's errno and text.
func brokerAnswer(err error) error {
	msg := make([]byte, 4, 256)
	if err != nil {
		binary.LittleEndian.PutUint32(msg, answerCode(err))
		msg = append(msg, err.Error()...)
	}
	_, err = unix.Write(brokerSockFD, msg)
	return err
}

// answerCode is the answer's code for a failed request's err, which
// brokerError.Unwrap turns back.
func answerCode(err error) uint32 {
	var errno syscall.Errno
	switch {
	case errors.Is(err, snapshot.ErrTempMoved):
		return answerTempMoved
	case errors.Is(err, snapshot.ErrMoved):
		return answerMoved
	case errors.As(err, &errno) && errno != 0:
		return uint32(errno)
	}
	return uint32(unix.EIO)
}

// brokerFilter is the broker's seccomp filter: the runtime's calls, I/O
// on what it holds, and the renames and removals in the snapshot's
// directory (or, through its descriptor, of the socket's absolute
// path); a network's broker opens files for reading too (the host's
// resolver files, whose paths it alone names). A forbidden call is reported as its owner's: a shared
// network's daemon (network) or a VMM's, started by command (run, up).
func brokerFilter(network bool, command string) sandbox.Filter {
	if network {
		return sandbox.Filter{
			RenameDir: brokerDirFD,
			ReadFiles: true, // the resolver's files (brokerHostFiles)
			Process:   "the network's broker",
			Prefix:    "smolvmm net: ",
			Advice:    noSeccompAdvice("net"),
		}
	}
	return sandbox.Filter{
		RenameDir: brokerDirFD,
		Process:   "the VMM's broker",
		Prefix:    "smolvmm: ",
		Advice:    noSeccompAdvice(command),
	}
}

// removeSocketFile removes the socket file at path, named through the
// directory descriptor dir (the path is absolute: any directory's
// descriptor, or unix.AT_FDCWD), if it is still the socket id: once its
// daemon stopped, another may have made its own there. Gone already is
// no error.
func removeSocketFile(dir int, path string, id snapshot.FileID) error {
	var st unix.Stat_t
	err := unix.Fstatat(dir, path, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK || uint64(st.Dev) != id.Dev || st.Ino != id.Ino {
		return nil // not the socket its daemon bound
	}
	if err := unix.Unlinkat(dir, path, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "unlink", Path: path, Err: err}
	}
	return nil
}

// broker is the VMM's end of its broker.
type broker struct {
	mu   sync.Mutex // one request at a time
	sock *os.File
}

// brokerStart starts the broker: a copy of this program that drops to
// creds (nil: stays this process's user) and holds dir (the snapshot's
// directory) with a, and ends when this process does. It does not wait for
// the broker to be ready: a request waits instead. seccomp false runs it
// without its filter (--no-seccomp).
func brokerStart(a brokerArgs, dir *os.File, creds *sandbox.Credentials, seccomp bool) (*broker, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("broker: socketpair: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "broker"), os.NewFile(uintptr(fds[1]), "broker's end")
	defer theirs.Close()
	// The time package opens the zone file without O_CLOEXEC when it
	// first loads time.Local, which the filter's preparation does on a
	// goroutine of its own: a broker started meanwhile inherited that
	// descriptor. Loaded first (sync.Once: it waits for a load under
	// way), it is closed before the fork.
	time.Now().Zone()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = a.list()
	cmd.Env = []string{brokerEnv + "=" + brokerMode(seccomp)}
	if a.command != "" {
		cmd.Env = append(cmd.Env, brokerCommandEnv+"="+a.command)
	}
	if creds != nil {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d:%d", brokerUserEnv, creds.UID, creds.GID))
	}
	// A refused call's report. The VMM holds the same stderr, and the
	// broker, once dropped, lets no process of its user take it.
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{theirs, dir}
	// No parent-death signal: the socket's end tells the broker, even
	// of a VMM killed by SIGKILL (its descriptors close). A signal
	// would come while a VMM that ends within a millisecond of its
	// start (a guest that exits at once, a forbidden call) still waits
	// for the broker's runtime to start, and kill it before it removes
	// the temporaries; and Linux sends it when the thread that started
	// the broker ends, which the Go runtime does to a thread a locked
	// goroutine (a vCPU's) exits on.
	// Nor credentials: the broker drops to creds itself (brokerMain);
	// given at exec, they left it dumpable with its bounding set whole.
	if err := cmd.Start(); err != nil {
		mine.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	// Never waited for: wait4 is not among the VMM's calls once
	// contained. It ends with this process.
	_ = cmd.Process.Release()
	return &broker{sock: mine}, nil
}

// request sends op and reads the answer: only read and write.
func (b *broker) request(op byte) error {
	_, err := b.exchange([]byte{op}, false)
	return err
}

// exchange sends req and reads the answer, and with data the data that
// follows a success (brokerAnswerData), at most maxHostFilesData bytes.
func (b *broker) exchange(req []byte, data bool) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sock := int(b.sock.Fd())
	var err error
	for {
		_, err = unix.Write(sock, req)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	buf := make([]byte, brokerChunk)
	read := func() (int, error) {
		for {
			n, err := unix.Read(sock, buf)
			if !errors.Is(err, unix.EINTR) {
				return n, err
			}
		}
	}
	n, err := read()
	switch {
	case err != nil:
		return nil, fmt.Errorf("broker: %w", err)
	case n < 4:
		return nil, fmt.Errorf("broker: ended (%w)", unix.EPIPE)
	}
	if code := binary.LittleEndian.Uint32(buf); code != 0 {
		return nil, &brokerError{msg: string(buf[4:n]), code: code}
	}
	if !data {
		return nil, nil
	}
	if n < 8 {
		return nil, fmt.Errorf("broker: an answer of %d bytes, without its data's length (%w)", n, unix.EPROTO)
	}
	size := int(binary.LittleEndian.Uint32(buf[4:]))
	if size > maxHostFilesData {
		return nil, fmt.Errorf("broker: an answer of %d bytes, beyond %d (%w)", size, maxHostFilesData, unix.EPROTO)
	}
	out := make([]byte, 0, size)
	out = append(out, buf[8:n]...)
	for len(out) < size {
		if n, err = read(); err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		if n == 0 {
			return nil, fmt.Errorf("broker: ended (%w)", unix.EPIPE)
		}
		out = append(out, buf[:n]...)
	}
	if len(out) != size {
		return nil, fmt.Errorf("broker: an answer of %d bytes, %d said (%w)", len(out), size, unix.EPROTO)
	}
	return out, nil
}

// brokerError is an operation the broker failed: its message, and its
// errno (or snapshot.ErrMoved, and ErrTempMoved) for errors.Is.
type brokerError struct {
	msg  string
	code uint32 // an errno, answerMoved or answerTempMoved
}

func (e *brokerError) Error() string { return e.msg }
func (e *brokerError) Unwrap() []error {
	switch e.code {
	case answerMoved:
		return []error{snapshot.ErrMoved}
	case answerTempMoved:
		return []error{snapshot.ErrMoved, snapshot.ErrTempMoved}
	}
	return []error{syscall.Errno(e.code)}
}

// Close ends the broker (it discards what is left).
func (b *broker) Close() error { return b.sock.Close() }

// brokerRenamer is a snapshot Target's Renamer through the broker.
type brokerRenamer struct{ b *broker }

func (r brokerRenamer) Check() error { return r.b.request(opCheck) }

func (r brokerRenamer) Commit() error { return r.b.request(opCommit) }

func (r brokerRenamer) Discard() error { return r.b.request(opDiscard) }

// hostFiles asks the broker for the host's resolver files' stamps, and
// with content their content (HubConfig.ReadHostFiles).
func (b *broker) hostFiles(content bool) (netback.HostFiles, error) {
	req := []byte{opHostFiles, 0}
	if content {
		req[1] = 1
	}
	data, err := b.exchange(req, true)
	if err != nil {
		return netback.HostFiles{}, err
	}
	return parseHostFiles(data, content)
}

// removeSocket asks the broker to remove its shared network's socket
// file (removeSocketFile).
func (b *broker) removeSocket() error { return b.request(opRemoveSocket) }
