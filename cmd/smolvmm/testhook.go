//go:build smolvmm_testhook

package main

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/vmm"
)

// installTestHook arms testHookEnv's hook when the environment asks.
func installTestHook(cfg *vmm.Config) {
	hook := os.Getenv(testHookEnv)
	if hook == "" {
		return
	}
	if hook == "snapshot-full" {
		// The snapshot at ready meets a full file system; a Ctrl-A s
		// writes to the target as ever.
		if cfg.SnapshotOnReady != nil {
			cfg.SnapshotOnReady = fullFS{}
		}
		return
	}
	onEvent := cfg.OnEvent
	cfg.OnEvent = func(e vmm.Event) {
		if e.Phase == vmm.PhaseFirstOutput {
			runTestHook(hook)
		}
		if onEvent != nil {
			onEvent(e)
		}
	}
}

// fullFS is a writer on a full file system.
type fullFS struct{}

func (fullFS) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: "snapshot", Err: unix.ENOSPC}
}

// runTestHook does what testHookEnv asks.
func runTestHook(hook string) {
	switch {
	case len(hook) > 5 && hook[:5] == "open:":
		f, err := os.Open(hook[5:])
		if err == nil {
			f.Close()
			fmt.Fprintf(os.Stderr, "smolvmm-test: opened %s\n", hook[5:])
			return
		}
		fmt.Fprintf(os.Stderr, "smolvmm-test: %v\n", err)
	case len(hook) > 5 && hook[:5] == "exec:":
		err := unix.Exec(hook[5:], []string{hook[5:]}, nil)
		fmt.Fprintf(os.Stderr, "smolvmm-test: exec %s: %v\n", hook[5:], err)
	case hook == "raw-socket":
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err == nil {
			unix.Close(fd)
		}
		fmt.Fprintf(os.Stderr, "smolvmm-test: raw socket: %v\n", err)
	case hook == "iptables":
		// IPT_SO_GET_INFO, read as IPT_SO_SET_REPLACE is written.
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			fmt.Fprintf(os.Stderr, "smolvmm-test: socket: %v\n", err)
			return
		}
		defer unix.Close(fd)
		_, err = unix.GetsockoptString(fd, unix.IPPROTO_IP, 64)
		fmt.Fprintf(os.Stderr, "smolvmm-test: getsockopt IPT_SO_GET_INFO: %v\n", err)
	case strings.HasPrefix(hook, "unlinkat:"):
		err := unix.Unlinkat(snapDirFD, hook[9:], 0)
		fmt.Fprintf(os.Stderr, "smolvmm-test: unlinkat %d %s: %v\n", snapDirFD, hook[9:], err)
	case strings.HasPrefix(hook, "renameat:"):
		from, to, _ := strings.Cut(hook[9:], ":")
		err := unix.Renameat(snapDirFD, from, snapDirFD, to)
		fmt.Fprintf(os.Stderr, "smolvmm-test: renameat %d %s %s: %v\n", snapDirFD, from, to, err)
	case strings.HasPrefix(hook, "connect:"):
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err == nil {
			err = unix.Connect(fd, &unix.SockaddrUnix{Name: hook[8:]})
			unix.Close(fd)
		}
		fmt.Fprintf(os.Stderr, "smolvmm-test: connect %s: %v\n", hook[8:], err)
	case strings.HasPrefix(hook, "listen:"):
		// A port of the VMM's own on the host (no forward's): bind,
		// then listen.
		ap, err := netip.ParseAddrPort(hook[7:])
		if err != nil {
			fmt.Fprintf(os.Stderr, "smolvmm-test: %v\n", err)
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())})
		}
		if err == nil {
			err = unix.Listen(fd, 1)
		}
		fmt.Fprintf(os.Stderr, "smolvmm-test: listen %s: %v\n", ap, err)
	case strings.HasPrefix(hook, "read:"):
		b, err := os.ReadFile(hook[5:])
		fmt.Fprintf(os.Stderr, "smolvmm-test: read %s: %q %v\n", hook[5:], b, err)
	case hook == "sigsys-blocked":
		// A forbidden call while SIGSYS is blocked (as inside the Go
		// runtime's thread creation): the kernel kills the process.
		var set unix.Sigset_t // its words are 32 bits wide on 386
		set.Val[0] = 1 << (unix.SIGSYS - 1)
		err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil)
		if err == nil {
			_, err = os.Open("/etc/passwd")
		}
		fmt.Fprintf(os.Stderr, "smolvmm-test: open with SIGSYS blocked: %v\n", err)
	case hook == "unappend":
		// Standard error opened to append (2>>log): clear O_APPEND,
		// then write over the file's first bytes.
		fl, err := unix.FcntlInt(2, unix.F_GETFL, 0)
		if err == nil {
			_, err = unix.FcntlInt(2, unix.F_SETFL, fl&^unix.O_APPEND)
		}
		if err == nil {
			_, err = unix.Pwrite(2, []byte("OVERWRITTEN"), 0)
		}
		fmt.Fprintf(os.Stderr, "smolvmm-test: unappend: %v\n", err)
	case hook == "int80":
		fmt.Fprintf(os.Stderr, "smolvmm-test: int $0x80 getpid: %d\n", int80Getpid())
	case hook == "x32":
		_, _, errno := unix.Syscall(unix.SYS_GETPID|0x40000000, 0, 0, 0)
		fmt.Fprintf(os.Stderr, "smolvmm-test: x32 getpid: %v\n", errno)
	default:
		fmt.Fprintf(os.Stderr, "smolvmm-test: unknown hook %q\n", hook)
	}
}
