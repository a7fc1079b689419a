// Package lockholder names the processes that hold flock(2) locks on a
// file, from Linux's /proc/locks, and those that hold OFD byte-range
// locks on it (QEMU's on its images), from /proc/PID/fdinfo, so that "in
// use" errors can say by whom. It is best effort: elsewhere, or when /proc
// is not mounted, it finds no one and callers say what they knew before.
package lockholder

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// locksFile is read by PIDs; tests point it at a fixture.
var locksFile = "/proc/locks"

// procDir is where OFDPIDs finds processes' fdinfo; tests point it at a
// fixture.
var procDir = "/proc"

// PIDs returns the processes that hold an flock lock on the file f is open
// on (the process that took each lock; a lock inherited across fork is
// listed under the process that took it), in /proc/locks' order, without
// repeats. Waiters are not holders and are left out.
func PIDs(f *os.File) []int {
	dev, ino, ok := fileID(f)
	if !ok {
		return nil
	}
	data, err := os.ReadFile(locksFile)
	if err != nil {
		return nil
	}
	return parse(data, dev, ino)
}

// fileID is the device and inode of the file f is open on.
func fileID(f *os.File) (dev, ino uint64, ok bool) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(sys.Dev), sys.Ino, true
}

// fileKey is how /proc/locks and fdinfo name the file dev/ino.
func fileKey(dev, ino uint64) string {
	return fmt.Sprintf("%02x:%02x:%d", major(dev), minor(dev), ino)
}

// OFDPIDs returns the processes that hold, through an open file
// description other than f's, an OFD byte-range lock (fcntl F_OFD_SETLK,
// as QEMU locks its images) on any of the bytes start to end (inclusive)
// of the file f is open on, in the order /proc lists them, without
// repeats. /proc/locks lists such locks under pid -1, so the holders are
// found in /proc/PID/fdinfo, which shows each lock of the description an
// fd refers to: only processes whose fdinfo this user may read (its own,
// or all for root) can be found.
func OFDPIDs(f *os.File, start, end int64) []int {
	dev, ino, ok := fileID(f)
	if !ok {
		return nil
	}
	want := fileKey(dev, ino)
	procs, err := os.ReadDir(procDir)
	if err != nil {
		return nil
	}
	self, selfFD := os.Getpid(), strconv.Itoa(int(f.Fd()))
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid <= 0 {
			continue
		}
		dir := procDir + "/" + p.Name() + "/fdinfo"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // another user's, or gone
		}
		for _, fd := range fds {
			if pid == self && fd.Name() == selfFD {
				continue // f's own description
			}
			data, err := os.ReadFile(dir + "/" + fd.Name())
			if err == nil && holdsOFD(data, want, start, end) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// holdsOFD reports whether an fdinfo lists an OFD lock on the file want
// (as fileKey names it) over any of the bytes start to end, in lines such
// as
//
//	lock:	1: OFDLCK ADVISORY  READ -1 fe:00:9978298 100 101
//
// (the lock's first and last byte, or EOF for a lock to the end).
func holdsOFD(data []byte, want string, start, end int64) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 || f[0] != "lock:" || f[2] != "OFDLCK" || f[6] != want {
			continue
		}
		first, err := strconv.ParseInt(f[7], 10, 64)
		if err != nil {
			continue
		}
		last := int64(math.MaxInt64)
		if f[8] != "EOF" {
			if last, err = strconv.ParseInt(f[8], 10, 64); err != nil {
				continue
			}
		}
		if first <= end && start <= last {
			return true
		}
	}
	return false
}

// parse reads /proc/locks lines such as
//
//	1: FLOCK  ADVISORY  WRITE 19409 fe:00:9987687 0 EOF
//
// (the device as hexadecimal major:minor, the inode in decimal) and keeps
// the FLOCK holders of the file dev/ino.
func parse(data []byte, dev, ino uint64) []int {
	want := fileKey(dev, ino)
	var pids []int
	seen := map[int]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != want {
			continue // a waiter ("->"), a POSIX lock or another file
		}
		pid, err := strconv.Atoi(f[4])
		if err != nil || pid <= 0 || seen[pid] {
			continue
		}
		seen[pid] = true
		pids = append(pids, pid)
	}
	return pids
}

// major and minor split a Linux dev_t as the kernel's new_encode_dev does.
func major(dev uint64) uint64 { return (dev>>8)&0xfff | (dev>>32)&^0xfff }
func minor(dev uint64) uint64 { return dev&0xff | (dev>>12)&^0xff }

// Describe names the holders of f's lock for a message: "process 1234
// (smolvmm run -k netbsd -d root.img)", several joined by ", ", or "" when
// none can be found.
func Describe(f *os.File) string {
	return describePIDs(PIDs(f))
}

// DescribeRange names for a message the holders of a byte-range lock on
// bytes start to end of f's file: the process pid when it is known (a
// POSIX lock's, which F_GETLK reports), else the processes OFDPIDs finds
// (F_OFD_GETLK reports an OFD lock's pid as -1), as Describe does, or ""
// when none can be found.
func DescribeRange(f *os.File, pid int, start, end int64) string {
	if pid > 0 {
		return describePID(pid)
	}
	return describePIDs(OFDPIDs(f, start, end))
}

// describePIDs is describePID of each of pids, joined by ", ".
func describePIDs(pids []int) string {
	parts := make([]string, len(pids))
	for i, pid := range pids {
		parts[i] = describePID(pid)
	}
	return strings.Join(parts, ", ")
}

// describePID is "process N" and, when readable, its command line
// (commandLine).
func describePID(pid int) string {
	s := "process " + strconv.Itoa(pid)
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(raw) == 0 {
		return s
	}
	cmd := commandLine(raw)
	if cmd == "" {
		return s
	}
	return s + " (" + cmd + ")"
}

// commandLine is a /proc/PID/cmdline as words, with the user part of any
// scheme://user[:password]@host in it replaced by "xxxxx" (the messages
// holding it are shared, and a mirror's URL may carry a token), shortened
// to 60 bytes.
func commandLine(raw []byte) string {
	cmd := strings.TrimSpace(strings.ReplaceAll(string(bytes.TrimRight(raw, "\x00")), "\x00", " "))
	cmd = maskUserinfo(cmd)
	if len(cmd) > 60 {
		cmd = cmd[:57] + "..."
	}
	return cmd
}

// maskUserinfo replaces the user part of each "scheme://user@host" in s:
// what lies between "://" and the last "@" before the authority ends (at
// "/", "?", "#" or a space).
func maskUserinfo(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := strings.IndexAny(s, "/?# ")
		if end < 0 {
			end = len(s)
		}
		if at := strings.LastIndexByte(s[:end], '@'); at >= 0 {
			b.WriteString("xxxxx")
			s = s[at:]
		}
	}
}
