// Package lockholder names the processes that hold flock(2) locks on a
// file, from Linux's /proc/locks, so that "in use" errors can say by whom.
// It is best effort: elsewhere, or when /proc is not mounted, it finds no
// one and callers say what they knew before.
package lockholder

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// locksFile is read by PIDs; tests point it at a fixture.
var locksFile = "/proc/locks"

// PIDs returns the processes that hold an flock lock on the file f is open
// on (the process that took each lock; a lock inherited across fork is
// listed under the process that took it), in /proc/locks' order, without
// repeats. Waiters are not holders and are left out.
func PIDs(f *os.File) []int {
	st, err := f.Stat()
	if err != nil {
		return nil
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	data, err := os.ReadFile(locksFile)
	if err != nil {
		return nil
	}
	return parse(data, uint64(sys.Dev), sys.Ino)
}

// parse reads /proc/locks lines such as
//
//	1: FLOCK  ADVISORY  WRITE 19409 fe:00:9987687 0 EOF
//
// (the device as hexadecimal major:minor, the inode in decimal) and keeps
// the FLOCK holders of the file dev/ino.
func parse(data []byte, dev, ino uint64) []int {
	want := fmt.Sprintf("%02x:%02x:%d", major(dev), minor(dev), ino)
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
	var parts []string
	for _, pid := range PIDs(f) {
		parts = append(parts, describePID(pid))
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
