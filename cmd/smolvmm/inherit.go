package main

import (
	"flag"
	"io"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// vmCommands are the commands that run a VM in this process (bench's
// child is "bench boot"), whose inherited descriptors closeInherited
// closes.
var vmCommands = map[string]bool{"run": true, "demo": true, "up": true, "bench": true}

// passedFDFlags are the flags that name a descriptor handed to the VMM on
// purpose (bench's ready and settled reports): bench boot's alone.
var passedFDFlags = []string{"ready-fd", "settled-fd"}

// closeInherited closes, for a command that runs a VM, every descriptor
// above 2 that the process inherited from its parent, but for those
// passed on purpose (passedFDs): whatever else the caller left open (a
// terminal, a pipe, a file of its own) would otherwise stay open in the
// VMM into its jail and under its filter, for a guest that took the VMM
// over. It runs first in main, before anything of the VMM's is opened. An
// inherited descriptor is one without FD_CLOEXEC (execve closed those
// that had it); every descriptor Go opens has it, such as the cgroup
// files the runtime opened before main and keeps reading, which stay.
func closeInherited(args []string) {
	if len(args) < 2 || !vmCommands[args[1]] {
		return
	}
	keep := passedFDs(args, os.Getpid() == 1)
	for _, fd := range openFDs() {
		if fd <= 2 || keep[fd] {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
}

// passedFDs are the descriptors handed down on purpose to the VM command
// of args: the ones bench boot's --ready-fd and --settled-fd name, and
// in the jailed VMM, the tap jailEnv names. The arguments are parsed with
// the command's own flags, as the command will parse them: a word that
// is another flag's value (-a --ready-fd=5, a guest's command line) names
// nothing, and arguments the command will refuse keep nothing. The
// jailed VMM is the first process (pid1) of its PID namespace, started
// with --jail: elsewhere jailEnv is the caller's, and passes nothing.
func passedFDs(args []string, pid1 bool) map[int]bool {
	keep := map[int]bool{}
	set := commandFlagSet(args)
	if set == nil {
		return keep
	}
	for _, name := range passedFDFlags {
		if f := set.Lookup(name); f != nil {
			if fd, err := strconv.Atoi(f.Value.String()); err == nil && fd > 2 {
				keep[fd] = true
			}
		}
	}
	if jail := set.Lookup("jail"); pid1 && jail != nil && jail.Value.String() == "true" {
		if fd, err := strconv.Atoi(os.Getenv(jailEnv)); err == nil && fd > 2 {
			keep[fd] = true
		}
	}
	return keep
}

// commandFlagSet is args parsed with the flags of the VM command they
// give (bench boot in the bench's child), or nil when they give none or
// the command will refuse them.
func commandFlagSet(args []string) *flag.FlagSet {
	if len(args) < 2 {
		return nil
	}
	var cmd *cli.Command
	rest := args[2:]
	switch {
	case args[1] == "bench" && len(args) > 2 && args[2] == "boot" && os.Getenv(benchChildEnv) == "1":
		cmd, rest = benchBootCommand(), args[3:]
	case vmCommands[args[1]] && args[1] != "bench":
		for _, c := range commands() {
			if c.Name == args[1] {
				cmd = c
			}
		}
	}
	if cmd == nil {
		return nil
	}
	set := flag.NewFlagSet(cmd.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range cmd.Flags {
		if err := f.Apply(set); err != nil {
			return nil
		}
	}
	if err := set.Parse(rest); err != nil {
		return nil
	}
	return set
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
