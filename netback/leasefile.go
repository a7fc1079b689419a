package netback

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/filekind"
	"github.com/smolvmm/smolvmm/internal/lockholder"
	"github.com/smolvmm/smolvmm/internal/regfile"
)

// Errors of a lease file that callers can test with errors.Is.
var (
	// ErrLeasesInUse: another process holds the lease file's lock: a
	// network that keeps its leases there is running.
	ErrLeasesInUse = errors.New("lease file in use by another network")
	// ErrLeasesUnsafe: the lease file, or its directory, is open to
	// another user, who could make the network (often root) write
	// another file or read leases of their making: a symlink at its
	// path, a file another user owns or may write, a directory another
	// user owns or may replace files in.
	ErrLeasesUnsafe = errors.New("lease file not safe from other users")
	// ErrLeasesLockLink: the lease file's lock (its path and ".lock")
	// is a symbolic link, which the network does not follow; the lock
	// is the network's own file, made where none is. Wrapped with
	// ErrLeasesUnsafe.
	ErrLeasesLockLink = errors.New("it is a symbolic link, which the network does not follow")
	// ErrLeasesNewer: the lease file's version is newer than any this
	// package reads: newer code wrote it, with fields (such as a
	// lease's owner) that a save of this code would drop.
	ErrLeasesNewer = errors.New("lease file of a newer layout")
)

// The lease file is read and written through a descriptor of its
// directory, opened once: neither a symlink put at its path (the file is
// opened O_NOFOLLOW, and a new table is renamed over the path, which
// replaces a link rather than following it) nor a directory renamed in
// its path leads a write elsewhere. openLeaseDir's checks make sure that
// no other user (root aside) can swap the file meanwhile.

// openLeaseDir opens the directory of lease file path and refuses one
// another user could change the file in (ErrLeasesUnsafe): owned by a
// user neither this process's nor root, or writable by group or others
// without the sticky bit (with it, as in /tmp, only a file's owner may
// rename or remove it).
func openLeaseDir(path string) (*os.File, error) {
	dirName := filepath.Dir(path)
	fd, err := unix.Open(dirName, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lease file %s: its directory: %w", path, &os.PathError{Op: "open", Path: dirName, Err: err})
	}
	dir := os.NewFile(uintptr(fd), dirName)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		dir.Close()
		return nil, fmt.Errorf("lease file %s: its directory: %w", path, &os.PathError{Op: "fstat", Path: dirName, Err: err})
	}
	euid := os.Geteuid()
	switch {
	case int(st.Uid) != euid && st.Uid != 0:
		dir.Close()
		return nil, fmt.Errorf("lease file %s: %w: its directory %s is owned by uid %d, neither this process's user (uid %d) nor root, and its owner could replace the file", path, ErrLeasesUnsafe, dirName, st.Uid, euid)
	case st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0:
		dir.Close()
		return nil, fmt.Errorf("lease file %s: %w: its directory %s is mode %04o: other users may replace files in it (it is not sticky)", path, ErrLeasesUnsafe, dirName, st.Mode&0o7777)
	}
	return dir, nil
}

// openLeaseFile opens lease file base in dir for reading, without
// following a symlink, and refuses (ErrLeasesUnsafe) a symlink or a file
// of another user's or that others may write (they could forge its
// leases and the users they are bound to), and, by its kind, what is
// not a regular file (a FIFO would block the open: O_NONBLOCK). A
// missing file is (nil, nil). path names the file in errors.
func openLeaseFile(dir *os.File, base, path string) (*os.File, error) {
	var lst unix.Stat_t
	err := unix.Fstatat(int(dir.Fd()), base, &lst, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lease file: %w", &os.PathError{Op: "lstat", Path: path, Err: err})
	}
	if lst.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil, fmt.Errorf("lease file %s: %w: it is a symbolic link, which the network does not follow: one another user made would have it overwrite the file linked to", path, ErrLeasesUnsafe)
	}
	fd, err := unix.Openat(int(dir.Fd()), base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lease file: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	if err := checkOwnFile(f, path, "lease file"); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkOwnFile refuses f (named path, what it is called in errors) if it
// is not a regular file (naming its kind), or is another user's, or
// others may write it (ErrLeasesUnsafe).
func checkOwnFile(f *os.File, path, what string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %s is %s: %w", what, path, filekind.Of(fi.Mode()), regfile.ErrNotRegular)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if euid := os.Geteuid(); int(st.Uid) != euid {
		return fmt.Errorf("%s %s: %w: it is owned by uid %d, not by this process's user (uid %d)", what, path, ErrLeasesUnsafe, st.Uid, euid)
	}
	if st.Mode&0o022 != 0 {
		return fmt.Errorf("%s %s: %w: it is mode %04o: its group or other users may write it", what, path, ErrLeasesUnsafe, st.Mode&0o7777)
	}
	return nil
}

// lockLeases takes the exclusive lock of lease file base in dir, on
// base+".lock" beside it (the file itself is replaced by each save, and a
// lock on it would stay with the replaced one), created if need be and
// kept: removing it would let two networks lock two files of one name.
// A lock another process holds is ErrLeasesInUse, naming the holder.
func lockLeases(dir *os.File, base, path string) (*os.File, error) {
	name := base + ".lock"
	lockPath := path + ".lock"
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		// O_NOFOLLOW's ELOOP would say only "too many levels of
		// symbolic links".
		var lst unix.Stat_t
		if unix.Fstatat(int(dir.Fd()), name, &lst, unix.AT_SYMLINK_NOFOLLOW) == nil && lst.Mode&unix.S_IFMT == unix.S_IFLNK {
			return nil, fmt.Errorf("lease file's lock %s: %w: %w", lockPath, ErrLeasesUnsafe, ErrLeasesLockLink)
		}
		return nil, fmt.Errorf("lease file %s: its lock: %w", path, &os.PathError{Op: "open", Path: lockPath, Err: err})
	}
	f := os.NewFile(uintptr(fd), lockPath)
	if err := checkOwnFile(f, lockPath, "lease file's lock"); err != nil {
		f.Close()
		return nil, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lease file %s: its lock: %w", path, &os.PathError{Op: "flock", Path: lockPath, Err: err})
		}
		who := lockholder.Describe(f)
		if who == "" {
			who = "another process"
		}
		return nil, fmt.Errorf("lease file %s: %w: its lock %s is held by %s", path, ErrLeasesInUse, lockPath, who)
	}
	return f, nil
}

// openLeases opens s's lease file for a network's life: its directory
// (checked), its lock (taken) and its table, which it returns for
// parseLeases.
func (s *leaseStore) openLeases() (_ []byte, err error) {
	base := filepath.Base(s.path)
	if s.dir, err = openLeaseDir(s.path); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	// Checked before the lock is made beside it, so that a path
	// such as /dev/null is refused for what it is, not for its
	// directory taking no lock file.
	f, err := openLeaseFile(s.dir, base, s.path)
	if err != nil {
		return nil, err
	}
	if f != nil {
		f.Close()
	}
	if s.lock, err = lockLeases(s.dir, base, s.path); err != nil {
		return nil, err
	}
	removeTempLeases(s.dir, base)
	// Opened again under the lock: the last network's final save may
	// have replaced it.
	if f, err = openLeaseFile(s.dir, base, s.path); err != nil || f == nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxLeaseFile+1))
	if err != nil {
		return nil, fmt.Errorf("lease file: %w", err)
	}
	if len(b) > maxLeaseFile {
		return nil, fmt.Errorf("lease file %s: larger than %d bytes, which no table of %d leases and %d kept without an address needs", s.path, maxLeaseFile, poolSize(), maxKept)
	}
	return b, nil
}

// leaseTempPrefix is what the name of a temporary file of writeLeases
// for lease file base starts with; a random base-36 number follows.
func leaseTempPrefix(base string) string { return "." + base + ".tmp-" }

// removeTempLeases removes, from dir, the temporary files writeLeases
// left for lease file base when its network was killed between creating
// one and renaming it: each held a whole table, and they were never
// removed. Called under the lease file's lock, when no save of another
// network can be under way. A file that cannot be removed is left: it
// holds up nothing, and the next start tries again.
func removeTempLeases(dir *os.File, base string) {
	names, err := readDirNames(dir)
	if err != nil {
		return
	}
	prefix := leaseTempPrefix(base)
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || rest == "" || strings.Trim(rest, "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
			continue
		}
		_ = unix.Unlinkat(int(dir.Fd()), name, 0)
	}
}

// readDirNames lists the names in dir without moving dir's own offset:
// through a descriptor of its own.
func readDirNames(dir *os.File) ([]string, error) {
	fd, err := unix.Openat(int(dir.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := os.NewFile(uintptr(fd), dir.Name())
	defer d.Close()
	return d.Readdirnames(-1)
}

// close releases the lease file's lock and directory.
func (s *leaseStore) close() {
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
	if s.dir != nil {
		s.dir.Close()
		s.dir = nil
	}
}

// poolSize is the number of addresses a hub leases.
func poolSize() int {
	return int(leasePool[1].As4()[3]-leasePool[0].As4()[3]) + 1
}

// leaseEntry is a lease as the file spells it, each field checked by
// parseLeases.
type leaseEntry struct {
	MAC           string   `json:"mac"`
	Addr          string   `json:"addr"`
	Seen          string   `json:"seen"`
	Privileged    []string `json:"privileged"`
	PrivilegedUID int64    `json:"privileged_uid"`
	UID           *int64   `json:"uid"`
	Connected     bool     `json:"connected"`
}

// leaseFields lists leaseEntry's fields, for the error of an unknown one.
const leaseFields = "mac, addr, seen, privileged, privileged_uid, uid, connected"

// parseLeases reads the leases of lease file path's content b; a lease
// without "addr" is a kept one (leaseStore), which must name a user or
// privileged forwards. Any
// error refuses the whole file, saying where: a JSON syntax error by its
// byte offset, a bad lease by its index, byte offset and field. Skipping
// a bad lease would hand its address to another MAC, or its MAC to
// another user.
func parseLeases(path string, b []byte) ([]*storedLease, error) {
	var lf struct {
		Version int               `json:"version"`
		Leases  []json.RawMessage `json:"leases"`
	}
	if err := json.Unmarshal(b, &lf); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("lease file %s: at byte offset %d: %w", path, se.Offset, err)
		case errors.As(err, &te) && te.Field == "":
			start := len(b) - len(bytes.TrimLeft(b, " \t\r\n"))
			return nil, fmt.Errorf("lease file %s: at byte offset %d: %s", path, start, typeError(te))
		case errors.As(err, &te):
			return nil, fmt.Errorf("lease file %s: at byte offset %d: field %q: %s", path, te.Offset, te.Field, typeError(te))
		}
		return nil, fmt.Errorf("lease file %s: %w", path, err)
	}
	switch {
	case lf.Version > leaseFileVersion:
		return nil, fmt.Errorf("lease file %s: %w: field \"version\" is %d, and %d is the newest known here", path, ErrLeasesNewer, lf.Version, leaseFileVersion)
	case lf.Version < oldestLeaseFileVersion:
		return nil, fmt.Errorf("lease file %s: field \"version\": %d, want %d or %d", path, lf.Version, oldestLeaseFileVersion, leaseFileVersion)
	}
	offs := leaseOffsets(b)
	var ls []*storedLease
	byMAC, byAddr := map[string]int{}, map[netip.Addr]int{}
	kept := 0
	for i, raw := range lf.Leases {
		off := int64(-1)
		if i < len(offs) {
			off = offs[i]
		}
		bad := func(field string, err error) error {
			return fmt.Errorf("lease file %s: lease %d (at byte offset %d): field %q: %w", path, i, off, field, err)
		}
		var e leaseEntry
		// A field the network does not know would be dropped by the
		// next save: a mistyped "uid" would leave the MAC anyone's.
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, bad(te.Field, errors.New(typeError(te)))
			}
			if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
				field, _ = strconv.Unquote(field)
				return nil, bad(field, fmt.Errorf("not a field of a lease (%s)", leaseFields))
			}
			return nil, fmt.Errorf("lease file %s: lease %d (at byte offset %d): %w", path, i, off, err)
		}
		mac, err := net.ParseMAC(e.MAC)
		if err == nil && len(mac) != 6 {
			err = fmt.Errorf("%s is %d bytes long, not an Ethernet MAC's 6", e.MAC, len(mac))
		}
		if err == nil {
			// A lease no VM could join with would keep its address
			// taken for good.
			err = checkVMMAC(mac)
		}
		if err != nil {
			return nil, bad("mac", err)
		}
		l := &storedLease{MAC: mac.String(), PrivilegedUID: int(e.PrivilegedUID), Connected: e.Connected}
		for j, p := range e.Privileged {
			f, err := ParseForward(p)
			if err != nil {
				return nil, bad("privileged", fmt.Errorf("entry %d: %w", j, err))
			}
			// As checkPrivileged spells the forwards it looks up.
			l.Privileged = append(l.Privileged, f.String())
		}
		if j, ok := byMAC[l.MAC]; ok {
			return nil, bad("mac", fmt.Errorf("%s has lease %d already", l.MAC, j))
		}
		// Without one, a kept lease (leaseStore), checked below once
		// its user is read.
		if e.Addr != "" {
			if l.Addr, err = netip.ParseAddr(e.Addr); err != nil {
				return nil, bad("addr", err)
			}
			if !inPool(l.Addr) {
				return nil, bad("addr", fmt.Errorf("%s is not in the pool, %s to %s", l.Addr, leasePool[0], leasePool[1]))
			}
			if j, ok := byAddr[l.Addr]; ok {
				return nil, bad("addr", fmt.Errorf("%s is lease %d's already", l.Addr, j))
			}
		}
		if e.Seen != "" {
			// Absent, as in a lease written by hand: seen longest ago.
			if l.Seen, err = time.Parse(time.RFC3339Nano, e.Seen); err != nil {
				return nil, bad("seen", err)
			}
		}
		if e.PrivilegedUID < 0 || e.PrivilegedUID > maxUID {
			return nil, bad("privileged_uid", fmt.Errorf("%d is not a uid (0 to %d)", e.PrivilegedUID, int64(maxUID)))
		}
		if e.UID != nil {
			if *e.UID < 0 || *e.UID > maxUID {
				return nil, bad("uid", fmt.Errorf("%d is not a uid (0 to %d)", *e.UID, int64(maxUID)))
			}
			uid := int(*e.UID)
			l.UID = &uid
		}
		if !l.Addr.IsValid() {
			if l.UID == nil && len(l.Privileged) == 0 {
				return nil, bad("addr", errors.New("absent, and the lease names no user (uid) nor privileged forwards to keep the MAC for"))
			}
			if kept++; kept > maxKept {
				return nil, bad("addr", fmt.Errorf("absent, and more than %d leases are kept without an address", maxKept))
			}
		}
		byMAC[l.MAC] = i
		if l.Addr.IsValid() {
			byAddr[l.Addr] = i
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// typeError says what a JSON value of the wrong type is and what was
// wanted there, in JSON's words rather than Go's.
func typeError(te *json.UnmarshalTypeError) string {
	want := "a " + te.Type.String()
	switch te.Type.Kind() {
	case reflect.String:
		want = "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want = "an integer"
	case reflect.Slice:
		want = "a list"
	case reflect.Struct, reflect.Map:
		want = "an object"
	case reflect.Pointer:
		want = "an integer" // only uid is a pointer
	}
	return fmt.Sprintf("JSON %s where %s belongs", te.Value, want)
}

// leaseOffsets returns the byte offset of each lease of a lease file's
// content b, valid JSON: where its '{' is.
func leaseOffsets(b []byte) []int64 {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil
		}
		if key != "leases" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return nil
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			return nil
		}
		var offs []int64
		for dec.More() {
			// The offset is that of the previous token's end: the
			// lease starts after the blanks and comma.
			off := dec.InputOffset()
			for off < int64(len(b)) && bytes.IndexByte([]byte(" \t\r\n,"), b[off]) >= 0 {
				off++
			}
			offs = append(offs, off)
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return offs
			}
		}
		return offs
	}
	return nil
}

// writeLeases replaces s's lease file with content b: written to a new
// temporary file in its directory (O_EXCL, so no symlink is followed),
// synced, and renamed over the file, which replaces whatever is at its
// path (a symlink too) rather than writing through it; or given to
// s.write, when set.
func (s *leaseStore) writeLeases(b []byte) error {
	if s.write != nil {
		if err := s.write(b); err != nil {
			return fmt.Errorf("lease file %s: %w", s.path, err)
		}
		return nil
	}
	base := filepath.Base(s.path)
	dfd := int(s.dir.Fd())
	var tmp string
	var fd int
	for {
		tmp = leaseTempPrefix(base) + strconv.FormatUint(rand.Uint64(), 36)
		var err error
		fd, err = unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return fmt.Errorf("lease file %s: %w", s.path, &os.PathError{Op: "create", Path: filepath.Join(filepath.Dir(s.path), tmp), Err: err})
		}
		break
	}
	f := os.NewFile(uintptr(fd), filepath.Join(filepath.Dir(s.path), tmp))
	_, err := f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if rerr := unix.Renameat(dfd, tmp, dfd, base); rerr != nil {
			err = &os.PathError{Op: "rename", Path: s.path, Err: rerr}
		}
	}
	if err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return fmt.Errorf("lease file %s: %w", s.path, err)
	}
	_ = s.dir.Sync()
	return nil
}

// sortLeases orders ls by address, as the file lists them, the kept
// leases last by MAC.
func sortLeases(ls []*storedLease) {
	sort.Slice(ls, func(i, j int) bool {
		a, b := ls[i], ls[j]
		if a.Addr.IsValid() != b.Addr.IsValid() {
			return a.Addr.IsValid()
		}
		if !a.Addr.IsValid() {
			return a.MAC < b.MAC
		}
		return a.Addr.Less(b.Addr)
	})
}
