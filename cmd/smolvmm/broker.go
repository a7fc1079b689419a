package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/sandbox"
	"github.com/smolvmm/smolvmm/snapshot"
)

// The broker does, for a contained VMM, the few operations that name
// files: a VMM a guest took over would otherwise reach any name its
// seccomp filter lets the calls take (the filter sees descriptors and
// flags, never paths), since renameat and unlinkat accept an absolute
// name or ".." whatever directory descriptor they are given, and
// connect any socket path. The broker is this program again, started
// before the VMM's containment and never chrooted, holding the snapshot's
// directory and the hub's socket path; the VMM asks it over a socketpair
// to do one of a fixed set of operations, whose names the broker alone
// knows:
//
//	'c' commit:  rename the snapshot's temporary over its file (the
//	             first time), or exchange the spare with it, and sync
//	             the directory (snapshot.DirRenamer.Commit)
//	'd' discard: remove the temporaries that are not the file
//	'h' hub:     connect to the shared network's socket and pass the
//	             connection back (SCM_RIGHTS)
//
// A request is its one byte; an answer is an errno (4 bytes, little
// endian; 0 for success) and a message, with the connected descriptor
// for 'h' when it succeeded. The broker runs as the user the VMM drops
// to (the temporaries are that user's and their directory writable by
// it, snapshot.Target.AllowUser checks; the hub lets that user rejoin),
// under a filter of its own (brokerFilter), and ends when the VMM ends
// (the socket's end), discarding the temporaries left.

// brokerEnv marks the broker's process; the arguments say what it holds.
const brokerEnv = "SMOLVMM_BROKER"

// The broker's descriptors: the socket to the VMM, then the snapshot's
// directory when there is one.
const (
	brokerSockFD = 3
	brokerDirFD  = 4
)

const (
	opCommit  = 'c'
	opDiscard = 'd'
	opHub     = 'h'
)

// brokerArgs are the broker's command line after its name: the
// snapshot's file name in its directory and its two temporaries' ("" ""
// "" without a snapshot), and the hub's socket path ("" without one).
type brokerArgs struct {
	file  string
	temps [2]string
	hub   string
}

func (a brokerArgs) list() []string {
	return []string{"smolvmm-broker", a.file, a.temps[0], a.temps[1], a.hub}
}

// brokerHubTimeout bounds the broker's connect to the hub.
const brokerHubTimeout = 5 * time.Second

// maybeBrokerMain runs the broker and exits when this process is one.
func maybeBrokerMain() {
	if os.Getenv(brokerEnv) == "" {
		return
	}
	os.Exit(brokerMain(os.Args))
}

// brokerMain serves the VMM's requests until the socket ends.
func brokerMain(args []string) int {
	if len(args) != 5 {
		fmt.Fprintf(os.Stderr, "smolvmm broker: %d arguments; want 4 (%s is set by smolvmm for its broker; unset it)\n", len(args)-1, brokerEnv)
		return 2
	}
	a := brokerArgs{file: args[1], temps: [2]string{args[2], args[3]}, hub: args[4]}
	for _, name := range []string{a.file, a.temps[0], a.temps[1]} {
		// Names in the directory, never a path out of it.
		if strings.ContainsRune(name, '/') || name == "." || name == ".." || (name == "") != (a.file == "") {
			fmt.Fprintf(os.Stderr, "smolvmm broker: %q is not a file's name in the snapshot's directory\n", name)
			return 2
		}
	}
	var ren *snapshot.DirRenamer
	if a.file != "" {
		ren = snapshot.NewDirRenamer(os.NewFile(brokerDirFD, "snapshot directory"), a.file, a.temps)
	}
	if os.Getenv(brokerEnv) != "no-seccomp" {
		if _, err := sandbox.Install(brokerFilter(ren != nil, a.hub != "")); err != nil {
			fmt.Fprintf(os.Stderr, "smolvmm broker: %v\n", err)
			return 1
		}
	}
	// Whatever ends the loop, the temporaries are not left behind: the
	// VMM may have been killed before its own discard.
	end := func() int {
		if ren != nil {
			_ = ren.Discard()
		}
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
		var rerr error
		var conn *net.UnixConn
		switch {
		case n != 1:
			rerr = fmt.Errorf("broker: request of %d bytes: %w", n, unix.EINVAL)
		case buf[0] == opCommit && ren != nil:
			rerr = ren.Commit()
		case buf[0] == opDiscard && ren != nil:
			rerr = ren.Discard()
		case buf[0] == opHub && a.hub != "":
			var c net.Conn
			if c, rerr = net.DialTimeout("unix", a.hub, brokerHubTimeout); rerr == nil {
				conn = c.(*net.UnixConn)
			}
		default:
			rerr = fmt.Errorf("broker: request %q: %w", buf[0], unix.EINVAL)
		}
		if err := brokerAnswer(rerr, conn); err != nil {
			return end()
		}
	}
}

// brokerAnswer sends the answer to a request: err's errno and text, and
// conn's descriptor, which it then closes.
func brokerAnswer(err error, conn *net.UnixConn) error {
	msg := make([]byte, 4, 256)
	if err != nil {
		var errno syscall.Errno
		if !errors.As(err, &errno) || errno == 0 {
			errno = unix.EIO
		}
		binary.LittleEndian.PutUint32(msg, uint32(errno))
		msg = append(msg, err.Error()...)
	}
	if conn == nil {
		_, err := unix.Write(brokerSockFD, msg)
		return err
	}
	defer conn.Close()
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.Sendmsg(brokerSockFD, msg, unix.UnixRights(int(fd)), nil, 0)
	}); err != nil {
		return err
	}
	return serr
}

// brokerFilter is the broker's seccomp filter: the runtime's calls and
// I/O on what it holds, the renames and removals in the snapshot's
// directory with snap, and Unix sockets with hub (to dial the hub and
// pass the connection).
func brokerFilter(snap, hub bool) sandbox.Filter {
	f := sandbox.Filter{
		UnixSockets: hub,
		Process:     "the VMM's broker",
		Prefix:      "smolvmm: ",
		Advice:      " (smolvmm --no-seccomp turns the filter off; please report the call)",
	}
	if snap {
		f.RenameDir = brokerDirFD
	}
	return f
}

// broker is the VMM's end of its broker.
type broker struct {
	mu   sync.Mutex // one request at a time
	sock *os.File
}

// brokerStart starts the broker: a copy of this program running as creds
// (nil: as this process) that holds dir (the snapshot's directory; nil
// without one) with a, and ends when this process does. It does not wait for
// the broker to be ready: a request waits instead. seccomp false runs it
// without its filter (--no-seccomp).
func brokerStart(a brokerArgs, dir *os.File, creds *sandbox.Credentials, seccomp bool) (*broker, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("broker: socketpair: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "broker"), os.NewFile(uintptr(fds[1]), "broker's end")
	defer theirs.Close()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = a.list()
	mode := "1"
	if !seccomp {
		mode = "no-seccomp"
	}
	cmd.Env = []string{brokerEnv + "=" + mode}
	cmd.Stderr = os.Stderr // a refused call's report
	cmd.ExtraFiles = []*os.File{theirs}
	if dir != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, dir)
	}
	// No parent-death signal: the socket's end tells the broker, even
	// of a VMM killed by SIGKILL (its descriptors close). A signal
	// would come while a VMM that ends within a millisecond of its
	// start (a guest that exits at once, a forbidden call) still waits
	// for the broker's runtime to start, and kill it before it removes
	// the temporaries; and Linux sends it when the thread that started
	// the broker ends, which the Go runtime does to a thread a locked
	// goroutine (a vCPU's) exits on.
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if creds != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(creds.UID), Gid: uint32(creds.GID), Groups: []uint32{}}
	}
	if err := cmd.Start(); err != nil {
		mine.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	// Never waited for: wait4 is not among the VMM's calls once
	// contained. It ends with this process.
	_ = cmd.Process.Release()
	return &broker{sock: mine}, nil
}

// request sends op and reads the answer; fd is the descriptor that came
// with it (-1: none). Only read, write and, for a descriptor, recvmsg.
func (b *broker) request(op byte) (fd int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sock := int(b.sock.Fd())
	for {
		_, err = unix.Write(sock, []byte{op})
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return -1, fmt.Errorf("broker: %w", err)
	}
	buf := make([]byte, 4096)
	var n int
	fd = -1
	for {
		if op == opHub {
			oob := make([]byte, unix.CmsgSpace(4))
			var oobn int
			n, oobn, _, _, err = unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
			if err == nil && oobn > 0 {
				if cms, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil && len(cms) == 1 {
					if fds, perr := unix.ParseUnixRights(&cms[0]); perr == nil && len(fds) == 1 {
						fd = fds[0]
					}
				}
			}
		} else {
			n, err = unix.Read(sock, buf)
		}
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case err != nil:
		return -1, fmt.Errorf("broker: %w", err)
	case n < 4:
		return -1, fmt.Errorf("broker: ended (%w)", unix.EPIPE)
	}
	if errno := syscall.Errno(binary.LittleEndian.Uint32(buf)); errno != 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, &brokerError{msg: string(buf[4:n]), errno: errno}
	}
	return fd, nil
}

// brokerError is an operation the broker failed: its message, and its
// errno for errors.Is.
type brokerError struct {
	msg   string
	errno syscall.Errno
}

func (e *brokerError) Error() string { return e.msg }
func (e *brokerError) Unwrap() error { return e.errno }

// Close ends the broker (it discards what is left).
func (b *broker) Close() error { return b.sock.Close() }

// brokerRenamer is a snapshot Target's Renamer through the broker.
type brokerRenamer struct{ b *broker }

func (r brokerRenamer) Commit() error {
	_, err := r.b.request(opCommit)
	return err
}

func (r brokerRenamer) Discard() error {
	_, err := r.b.request(opDiscard)
	return err
}

// dialHub returns a connection to the hub the broker dialled; socket is
// the path it dials, for messages.
func (b *broker) dialHub(socket string) (net.Conn, error) {
	fd, err := b.request(opHub)
	if err != nil {
		return nil, err
	}
	if fd < 0 {
		return nil, fmt.Errorf("broker: no connection came with its answer (%w)", unix.EPROTO)
	}
	// An *os.File, not net.FileConn, which would dup the descriptor
	// (fcntl F_DUPFD, not among the VMM's calls): non-blocking, it has
	// the runtime's poller and deadlines.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("broker: %w", err)
	}
	return &fileConn{File: os.NewFile(uintptr(fd), socket), addr: &net.UnixAddr{Name: socket, Net: "unix"}}, nil
}

// fileConn is a connected socket the broker passed, as a net.Conn.
type fileConn struct {
	*os.File
	addr net.Addr
}

func (c *fileConn) LocalAddr() net.Addr  { return &net.UnixAddr{Net: "unix"} }
func (c *fileConn) RemoteAddr() net.Addr { return c.addr }

// hubDial dials the shared network's hub for the VM of this process:
// itself while the VMM sets up (the first join), through the broker once
// the VMM is contained, whose filter allows no new socket.
var hubDial hubDialer

// hubDialer is hubDial's type.
type hubDialer struct {
	mu     sync.Mutex
	socket string // the path dialled, which the broker is given
	b      *broker
}

// dial connects to socket.
func (h *hubDialer) dial(socket string) (net.Conn, error) {
	h.mu.Lock()
	b := h.b
	if h.socket == "" {
		h.socket = socket
	}
	h.mu.Unlock()
	if b != nil {
		return b.dialHub(socket)
	}
	return net.DialTimeout("unix", socket, brokerHubTimeout)
}

// path returns the socket dialled so far ("": none).
func (h *hubDialer) path() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.socket
}

// use makes b dial from now on.
func (h *hubDialer) use(b *broker) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.b = b
}
