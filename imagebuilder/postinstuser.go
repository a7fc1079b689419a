package imagebuilder

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The ids a root build's postinst scripts run as are taken from
// [buildIDLow, buildIDHigh): far above the ids of users and of the
// ranges container tools hand out (subuid from 100000, 65536 each), so
// that no file of the host has one, and no process but the build's.
const (
	buildIDLow  = 0x7f000000
	buildIDHigh = 0x7fff0000
)

// buildIDs picks the user and group id (one number for both) a root
// build runs its postinst scripts as: one that no process has as a user
// or group id, and no user or group of the system's databases has. A
// shared user such as nobody would let any process of it (a script of
// an earlier build left running, a daemon) read and change the staging
// tree, and outlive the build unseen among the user's others. Inside a
// user namespace whose maps do not hold the range, an id is taken from
// those they hold, from 1000 up.
func buildIDs() (uint32, error) {
	ranges := mappedIDs()
	if len(ranges) == 0 {
		return 0, errors.New("no id from 1000 to 4294967293 is mapped both as a user id and as a group id (/proc/self/uid_map, gid_map)")
	}
	for range 100 {
		r := ranges[rand.IntN(len(ranges))]
		id := r[0] + uint32(rand.Uint64N(uint64(r[1]-r[0])))
		if id == 65534 || id == 65535 { // nobody, and the old (uid16_t)-1
			continue
		}
		if idInUse(id) {
			continue
		}
		return id, nil
	}
	return 0, errors.New("every id tried is used by a process or named in the user or group database")
}

// mappedIDs returns the ranges [low, high) of ids that buildIDs may
// pick: those of [buildIDLow, buildIDHigh) that the process's user
// namespace maps both as user and as group ids, else those it maps from
// 1000 up.
func mappedIDs() [][2]uint32 {
	both := intersect(readIDMap("/proc/self/uid_map"), readIDMap("/proc/self/gid_map"))
	if r := intersect(both, [][2]uint32{{buildIDLow, buildIDHigh}}); len(r) > 0 {
		return r
	}
	// (uid_t)-1 and -2 are no ids: setuid takes -1 for "unchanged".
	return intersect(both, [][2]uint32{{1000, 0xfffffffe}})
}

// readIDMap reads a user namespace's uid_map or gid_map as ranges
// [low, high) of the ids inside; without one (no /proc), the whole range.
func readIDMap(name string) [][2]uint32 {
	b, err := os.ReadFile(name)
	if err != nil {
		return [][2]uint32{{0, 0xffffffff}}
	}
	var rs [][2]uint32
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		lo, err1 := strconv.ParseUint(f[0], 10, 32)
		n, err2 := strconv.ParseUint(f[2], 10, 33)
		if err1 != nil || err2 != nil || n == 0 {
			continue
		}
		rs = append(rs, [2]uint32{uint32(lo), uint32(min(lo+n, 0xffffffff))})
	}
	return rs
}

// intersect returns the non-empty intersections of ranges of a with
// ranges of b.
func intersect(a, b [][2]uint32) [][2]uint32 {
	var rs [][2]uint32
	for _, x := range a {
		for _, y := range b {
			if lo, hi := max(x[0], y[0]), min(x[1], y[1]); lo < hi {
				rs = append(rs, [2]uint32{lo, hi})
			}
		}
	}
	return rs
}

// idInUse reports whether id is a user or group id of a running process
// (real, effective, saved or file system), or names a user or group of
// the system's databases.
func idInUse(id uint32) bool {
	if idNamed(id) {
		return true
	}
	found := false
	eachProcess(func(pid int, uids, gids []uint32, zombie bool) {
		for _, v := range append(uids, gids...) {
			if v == id {
				found = true
			}
		}
	})
	return found
}

// idNamed reports whether id names a user or group of the system's
// databases; tests replace it to name an id of the build range.
var idNamed = func(id uint32) bool {
	s := strconv.FormatUint(uint64(id), 10)
	if _, err := user.LookupId(s); err == nil {
		return true
	}
	_, err := user.LookupGroupId(s)
	return err == nil
}

// nsIdent identifies a namespace: the device and inode of its
// /proc/PID/ns file.
type nsIdent struct{ dev, ino uint64 }

func (n nsIdent) String() string { return fmt.Sprintf("%d:%d", n.dev, n.ino) }

// selfUserNS is the user namespace of this process; ok is false
// without /proc.
func selfUserNS() (ns nsIdent, ok bool) {
	var st unix.Stat_t
	if unix.Stat("/proc/self/ns/user", &st) != nil {
		return nsIdent{}, false
	}
	return nsIdent{uint64(st.Dev), st.Ino}, true
}

// bootID is the kernel's id of this boot, "" when it cannot be read.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// buildNote is what a root build records in its staging directory's
// lock file: the id its scripts run as, and the boot and user namespace
// in which that id is the build's (see deadBuildUID).
func buildNote(uid uint32) []byte {
	ns, _ := selfUserNS()
	return fmt.Appendf(nil, "uid %d\nboot %s\nuserns %s\n", uid, bootID(), ns)
}

// deadBuildUID returns the id a dead root build's note (see buildNote)
// names, and the user namespace it ran in, when the processes of that
// id there can only be its scripts': the note is of this boot (after a
// reboot the id may be anyone's), of this user namespace (another's ids
// are not these), the id is one a build here picks now (see mappedIDs:
// one below is a user's) and no user or group of the databases has it
// (one may have been added since; inside a namespace whose maps fall
// back to ids from 1000, most are). A note of an older smolvmm, a bare
// id, names none.
func deadBuildUID(note []byte) (uint32, nsIdent, bool) {
	fields := map[string]string{}
	for _, line := range strings.Split(string(note), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			fields[k] = v
		}
	}
	v, err := strconv.ParseUint(fields["uid"], 10, 32)
	if err != nil {
		return 0, nsIdent{}, false
	}
	uid := uint32(v)
	ns, ok := selfUserNS()
	if boot := bootID(); !ok || boot == "" || fields["boot"] != boot || fields["userns"] != ns.String() {
		return 0, nsIdent{}, false
	}
	if !pickable(uid) || idNamed(uid) {
		return 0, nsIdent{}, false
	}
	return uid, ns, true
}

// pickable reports whether buildIDs may pick id now.
func pickable(id uint32) bool {
	if id == 65534 || id == 65535 {
		return false
	}
	for _, r := range mappedIDs() {
		if r[0] <= id && id < r[1] {
			return true
		}
	}
	return false
}

// maxUserNSDepth bounds the walk up from a user namespace to its
// ancestors: the kernel nests no deeper than 32.
const maxUserNSDepth = 33

// inUserNS reports whether process pid is in the user namespace ns or
// in one made below it (a script's own, see runScript): walked up with
// NS_GET_PARENT, which fails once above this process's own namespace.
func inUserNS(pid int, ns nsIdent) bool {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	for range maxUserNSDepth {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil {
			break
		}
		if (nsIdent{uint64(st.Dev), st.Ino}) == ns {
			unix.Close(fd)
			return true
		}
		parent, err := unix.IoctlRetInt(fd, unix.NS_GET_PARENT)
		unix.Close(fd)
		if err != nil {
			return false
		}
		fd = parent
	}
	unix.Close(fd)
	return false
}

// eachProcess calls f for each process of /proc with its user and group
// ids (real, effective, saved, file system) and whether it is a zombie.
// A process gone before its status is read is left out.
func eachProcess(f func(pid int, uids, gids []uint32, zombie bool)) {
	eachProcessState(func(pid int, uids, gids []uint32, state byte, _ bool) {
		f(pid, uids, gids, state == 'Z' || state == 'X')
	})
}

// eachProcessState is eachProcess with the process's state, the letter
// of /proc/PID/status (R running, T stopped, Z zombie...), and whether
// a SIGSTOP is pending for it: it stops before it runs its own code
// again, though it may first end a wait in the kernel (state D), such as
// a vfork's for a child that is stopped.
func eachProcessState(f func(pid int, uids, gids []uint32, state byte, stopPending bool)) {
	d, err := os.Open("/proc")
	if err != nil {
		return
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		st, err := os.Open("/proc/" + name + "/status")
		if err != nil {
			continue
		}
		var uids, gids []uint32
		var state byte
		stopPending := false
		sc := bufio.NewScanner(st)
		for sc.Scan() {
			key, val, _ := strings.Cut(sc.Text(), ":")
			switch key {
			case "State":
				if v := strings.TrimSpace(val); v != "" {
					state = v[0]
				}
			case "Uid":
				uids = parseIDs(val)
			case "Gid":
				gids = parseIDs(val)
			case "SigPnd", "ShdPnd":
				if m, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64); err == nil && m&(1<<(syscall.SIGSTOP-1)) != 0 {
					stopPending = true
				}
			}
		}
		st.Close()
		if uids != nil {
			f(pid, uids, gids, state, stopPending)
		}
	}
}

// parseIDs parses the ids of a Uid: or Gid: line of /proc/PID/status.
func parseIDs(s string) []uint32 {
	var ids []uint32
	for _, f := range strings.Fields(s) {
		if v, err := strconv.ParseUint(f, 10, 32); err == nil {
			ids = append(ids, uint32(v))
		}
	}
	return ids
}

// nobodyIDs returns the user and group ids of nobody (65534 without
// one, or with root's), which a root build's scripts have inside their
// user namespace: a name lookup of their user finds nobody's entry, as
// when they ran as nobody, while outside they are the build's own id.
func nobodyIDs() (uid, gid uint32) {
	uid, gid = 65534, 65534
	u, err := user.Lookup("nobody")
	if err != nil {
		return uid, gid
	}
	if v, err := strconv.ParseUint(u.Uid, 10, 32); err == nil && v != 0 {
		uid = uint32(v)
	}
	if v, err := strconv.ParseUint(u.Gid, 10, 32); err == nil && v != 0 {
		gid = uint32(v)
	}
	return uid, gid
}

// killUser kills every process that has uid as a user id, the build's
// own (see buildIDs), so none but a script's: what a script left
// running, even outside its process group (setsid). Each one neither
// stopped nor with a SIGSTOP pending is sent one, looking again until a
// look finds none such (one could have continued another, SIGCONT,
// before it was stopped itself), so that none forks while they are
// killed; then all are killed, and the whole is done again until a look
// finds none (a child forked as its parent was stopped can have been
// missed). It gives up after a few seconds of processes that keep
// running, and says so. With ns not nil, only the processes in that
// user namespace or one below it are, the others left alone.
func killUser(uid uint32, ns *nsIdent) error {
	deadline := time.Now().Add(5 * time.Second)
	ofUser := func(uids []uint32) bool {
		for _, v := range uids {
			if v == uid {
				return true
			}
		}
		return false
	}
	for {
		seen := map[int]bool{}
		for {
			running := false
			eachProcessState(func(pid int, uids, _ []uint32, state byte, stopPending bool) {
				if state == 'Z' || state == 'X' || !ofUser(uids) || ns != nil && !inUserNS(pid, *ns) {
					return
				}
				seen[pid] = true
				// t: stopped by its tracer, which is of uid too and
				// is stopped in turn. A SIGCONT would have discarded
				// a SIGSTOP still pending.
				if state != 'T' && state != 't' && !stopPending {
					syscall.Kill(pid, syscall.SIGSTOP)
					running = true
				}
			})
			if !running || time.Now().After(deadline) {
				break
			}
		}
		if len(seen) == 0 {
			return nil
		}
		for pid := range seen {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of uid %d, the user the postinst scripts ran as, kept running for 5s while they were stopped and killed", uid)
		}
		// Those killed are gone or zombies by a later look, but for
		// one in an uninterruptible wait.
		time.Sleep(5 * time.Millisecond)
	}
}
