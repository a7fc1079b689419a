package main

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// vmCommands are the commands that run a VM in this process (boot is the
// bench's child), whose inherited descriptors closeInherited closes.
var vmCommands = map[string]bool{"run": true, "demo": true, "up": true, "bench": true, "boot": true}

// passedFDFlags are the flags that name a descriptor handed to the VMM on
// purpose (bench's ready and settled reports).
var passedFDFlags = map[string]bool{"ready-fd": true, "settled-fd": true}

// closeInherited closes, for a command that runs a VM, every descriptor
// above 2 that the process inherited from its parent, but for those its
// arguments (--ready-fd, --settled-fd) or jailEnv (the tap of a jailed
// VMM) pass on purpose: whatever else the caller left open (a terminal,
// a pipe, a file of its own) would otherwise stay open in the VMM into its
// jail and under its filter, for a guest that took the VMM over. It runs
// first in main, before anything of the VMM's is opened. An inherited
// descriptor is one without FD_CLOEXEC (execve closed those that had it);
// every descriptor Go opens has it, such as the cgroup files the runtime
// opened before main and keeps reading, which stay.
func closeInherited(args []string) {
	if len(args) < 2 || !vmCommands[args[1]] {
		return
	}
	keep := passedFDs(args)
	for _, fd := range openFDs() {
		if fd <= 2 || keep[fd] {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
}

// passedFDs are the descriptors args and jailEnv pass on purpose.
func passedFDs(args []string) map[int]bool {
	keep := map[int]bool{}
	if fd, err := strconv.Atoi(os.Getenv(jailEnv)); err == nil {
		keep[fd] = true
	}
	for i := 2; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !passedFDFlags[name] {
			continue
		}
		if !hasVal && i+1 < len(args) {
			i++
			val = args[i]
		}
		if fd, err := strconv.Atoi(val); err == nil {
			keep[fd] = true
		}
	}
	return keep
}

// openFDs lists the process's descriptors from /proc/self/fd, or, where
// /proc is not mounted, tries each below the descriptor limit (at most
// 65536 of them).
func openFDs() []int {
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		var lim unix.Rlimit
		n := uint64(1024)
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
			n = min(lim.Cur, 1<<16)
		}
		var fds []int
		for fd := 3; fd < int(n); fd++ {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
				fds = append(fds, fd)
			}
		}
		return fds
	}
	defer unix.Close(dir)
	var fds []int
	buf := make([]byte, 4096)
	for {
		n, err := unix.ReadDirent(dir, buf)
		if err != nil || n <= 0 {
			return fds
		}
		var names []string
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
		for _, name := range names {
			if fd, err := strconv.Atoi(name); err == nil && fd != dir {
				fds = append(fds, fd)
			}
		}
	}
}
