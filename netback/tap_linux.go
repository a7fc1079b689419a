//go:build linux

package netback

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// tunDevice is the Linux TUN/TAP clone device.
const tunDevice = "/dev/net/tun"

// Tap is the backend of the network "tap:NAME": frames go to and come from a
// Linux tap interface, for bridged setups.
type Tap struct {
	name    string
	file    *os.File
	scratch []byte // for callers whose buffer may be too short; read side only

	closeOnce        sync.Once
	closeErr         error
	toGuest, fromGst atomic.Uint64
}

// OpenTap attaches to the tap interface name, or creates it when it does
// not exist, and brings it up (a down tap loses every frame). Creating a
// tap, or bringing one up, needs CAP_NET_ADMIN; attaching to one made with
// "ip tuntap add NAME mode tap user $USER" and brought up with "ip link set
// NAME up" does not. A tap that OpenTap created disappears when the
// backend is closed.
func OpenTap(name string) (*Tap, error) {
	t, _, err := openTap(name)
	return t, err
}

// CheckTap checks that OpenTap(name) would succeed, as OpenTap would
// fail, leaving the interface as it was: a tap it brought up is brought
// down again, one it created disappears.
func CheckTap(name string) error {
	t, raised, err := openTap(name)
	if err != nil {
		return err
	}
	if raised {
		err = setIfDown(name)
	}
	return errors.Join(err, t.Close())
}

// openTap is OpenTap, saying too whether it brought the tap up.
func openTap(name string) (t *Tap, raised bool, err error) {
	if err := CheckTapName(name); err != nil {
		return nil, false, fmt.Errorf("tap name %q: %w", name, err)
	}
	// The index tells whether sysfs shows this namespace's interface
	// (0: there is none).
	var ifindex int
	if ifi, err := net.InterfaceByName(name); err == nil {
		ifindex = ifi.Index
	}
	existed := ifindex != 0

	fd, err := unix.Open(tunDevice, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			// The clone device itself is refused: a tap made for this
			// user would not help, as TUNSETIFF's refusal's advice says.
			return nil, false, fmt.Errorf("tap %s: open %s: %s: %w", name, tunDevice, tunDeviceRefused(err, statOwner(tunDevice), os.Geteuid()), err)
		}
		return nil, false, tapErr(name, "open "+tunDevice, ifindex, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		_ = unix.Close(fd)
		return nil, false, fmt.Errorf("tap %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		_ = unix.Close(fd)
		return nil, false, tapErr(name, "TUNSETIFF", ifindex, err)
	}
	// A tap made beforehand ("ip tuntap add") is down, and a down tap
	// fails every frame written to it: up it goes, or it is refused.
	raised, err = setIfUp(name)
	if err != nil {
		_ = unix.Close(fd)
		if existed && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)) {
			return nil, false, fmt.Errorf("tap %s is down and this process may not bring it up (that needs CAP_NET_ADMIN): bring it up first with `ip link set %s up`: %w", name, name, err)
		}
		return nil, false, err
	}
	// The descriptor is non-blocking, so the file uses Go's poller and Close
	// wakes a pending ReadFrame.
	return &Tap{name: name, file: os.NewFile(uintptr(fd), tunDevice+":"+name)}, raised, nil
}

// CheckTapName checks name as an interface's name, without opening
// anything: 1 to 15 bytes (IFNAMSIZ less its NUL), not . or .., and no
// '/', ':' or white space, which Linux refuses (a path's '/', an alias's
// ':'). Nor a control or non-ASCII character: Linux would take one (ip
// tuntap add dev tapé works), but the name is echoed to terminals and
// logs, where it would be an escape or look like another name, and it
// must be typed again to delete the tap, so the rule here is printable
// ASCII. OpenTap refuses such a name with this error, after "tap name
// NAME: ".
func CheckTapName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("the name is empty: an interface name has 1 to %d characters", unix.IFNAMSIZ-1)
	case len(name) >= unix.IFNAMSIZ:
		return fmt.Errorf("the name is %d bytes: an interface name has at most %d characters", len(name), unix.IFNAMSIZ-1)
	case name == "." || name == "..":
		return fmt.Errorf("%s is not an interface name: Linux refuses . and ..", name)
	}
	for _, r := range name {
		// White space and the rest by code point: quoted, they would
		// be escapes the terminal escapes again.
		switch {
		case r == '/' || r == ':':
			return fmt.Errorf("character %q is not allowed in an interface name", r)
		case r == ' ' || (r >= '\t' && r <= '\r'):
			return fmt.Errorf("character %U is not allowed in an interface name: Linux refuses white space", r)
		case r < ' ' || r > '~':
			return fmt.Errorf("character %U is not allowed in a tap name: Linux would take it, but the name is kept to printable ASCII, as it is echoed to terminals and logs and typed to delete the tap", r)
		}
	}
	return nil
}

// tapErr turns the usual failures of opening a tap into advice; ifindex
// is the interface's index in this network namespace before, 0 when there
// was none.
func tapErr(name, op string, ifindex int, err error) error {
	var hint string
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		owner, group := int64(unknownOwner), int64(unknownOwner)
		if ifindex != 0 && sysfsShows(name, ifindex) {
			o, ok := readTunAttr(name, "owner")
			g, gok := readTunAttr(name, "group")
			if ok && gok {
				owner, group = o, g
			}
		}
		hint = tapNotPermitted(name, ifindex != 0, owner, group, os.Geteuid())
	case errors.Is(err, syscall.EBUSY):
		hint = fmt.Sprintf("tap %s is already in use by another process (another VM?): stop it or choose another tap name", name)
	case errors.Is(err, syscall.EINVAL):
		hint = notTapHint(name, readTunFlags(name))
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		hint = fmt.Sprintf("%s is missing: load the tun module (modprobe tun)", tunDevice)
	default:
		hint = "cannot attach"
	}
	return fmt.Errorf("tap %s: %s: %s: %w", name, op, hint, err)
}

// readTunFlags is the flags interface name was created with (its
// /sys/class/net/NAME/tun_flags, which only tun and tap devices have), -1
// when they cannot be read.
func readTunFlags(name string) int64 {
	v, ok := readTunAttr(name, "tun_flags")
	if !ok {
		return -1
	}
	return v
}

// sysfsShows says whether /sys/class/net shows this network namespace's
// interface name, of index ifindex: entering a network namespace, or
// making one, without mounting /sys anew leaves a sysfs showing another
// namespace's interfaces, a same-named one with another owner among them.
func sysfsShows(name string, ifindex int) bool {
	v, ok := readTunAttr(name, "ifindex")
	return ok && v == int64(ifindex)
}

// readTunAttr reads the number in /sys/class/net/NAME/attr (owner, group
// and tun_flags only tun and tap devices have; owner and group are -1 when
// unset); ok is false when there is no such device or the number cannot be
// read.
func readTunAttr(name, attr string) (v int64, ok bool) {
	b, err := os.ReadFile("/sys/class/net/" + name + "/" + attr)
	if err != nil {
		return 0, false
	}
	v, err = strconv.ParseInt(strings.TrimSpace(string(b)), 0, 64)
	return v, err == nil
}

// fileOwner is a file's mode and owner, for saying why it was refused.
type fileOwner struct {
	known    bool // false: the file could not be examined
	mode     os.FileMode
	uid, gid uint32
}

// statOwner is path's mode and owner; known is false when it cannot be
// examined.
func statOwner(path string) fileOwner {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return fileOwner{}
	}
	return fileOwner{known: true, mode: os.FileMode(st.Mode & 0o777), uid: st.Uid, gid: st.Gid}
}

// tunDeviceRefused says why opening the clone device failed with err
// (EACCES or EPERM), given its mode and owner f, for the user euid. A tap
// made for the user changes nothing here: every tap is opened through it.
func tunDeviceRefused(err error, f fileOwner, euid int) string {
	what := "the device"
	if f.known {
		what = fmt.Sprintf("the device (mode %#o, owner %d:%d)", f.mode, f.uid, f.gid)
	}
	if errors.Is(err, syscall.EPERM) {
		// Not the mode bits (EACCES): a container's device rules or a
		// security module.
		return fmt.Sprintf("%s may not be opened here, whatever its mode: the device rules of this container, or a security module, forbid it", what)
	}
	return fmt.Sprintf("%s is not open to this user (uid %d): run as root, or have root open it to all users with `chmod 0666 %s`, the mode most distributions give it", what, euid, tunDevice)
}

// unknownOwner is tapNotPermitted's owner and group when they cannot be
// read.
const unknownOwner = -2

// tapNotPermitted says why the kernel refused the user euid the tap
// name: only its owner, a member of its group, or a process with
// CAP_NET_ADMIN may attach to a tap, and only the last may create one.
// exists says the tap exists, with owner and group (-1: none;
// unknownOwner: not known).
func tapNotPermitted(name string, exists bool, owner, group int64, euid int) string {
	if !exists {
		return fmt.Sprintf("this user (uid %d) may not create tap %s (that needs CAP_NET_ADMIN): run as root, or create the tap for your user first, as root, with `ip tuntap add %s mode tap user $USER` (then `ip link set %s up`)", euid, name, name, name)
	}
	if owner >= 0 && owner == int64(euid) {
		return fmt.Sprintf("tap %s belongs to this user (uid %d), and still the kernel refused to attach to it (a security module?)", name, euid)
	}
	var whose string
	switch {
	case owner >= 0 && group >= 0:
		whose = fmt.Sprintf("belongs to uid %d and group %d", owner, group)
	case owner >= 0:
		whose = fmt.Sprintf("belongs to uid %d", owner)
	case group >= 0:
		whose = fmt.Sprintf("belongs to group %d", group)
	case owner == unknownOwner:
		whose = "does not belong to this user"
	default:
		whose = "belongs to no user"
	}
	return fmt.Sprintf("tap %s exists and %s: this user (uid %d) may not attach to it (that needs CAP_NET_ADMIN): run as root, or make it anew for your user, as root, with `ip tuntap del %s mode tap` and `ip tuntap add %s mode tap user $USER` (then `ip link set %s up`)", name, whose, euid, name, name, name)
}

// notTapHint says why the kernel refused (EINVAL) to attach to interface
// name, given its tun_flags (-1: none, it is no tun or tap device): an
// existing device is attached to only as it was made, a tap and not a tun,
// with one queue.
func notTapHint(name string, flags int64) string {
	switch {
	case flags < 0:
		return fmt.Sprintf("interface %s exists but is not a tap device: choose another name", name)
	case flags&unix.IFF_TAP == 0:
		return fmt.Sprintf("interface %s is a tun device (IP packets, no Ethernet frames), not a tap: recreate it with `ip tuntap del %s mode tun` and `ip tuntap add %s mode tap`, or choose another name", name, name, name)
	case flags&unix.IFF_MULTI_QUEUE != 0:
		return fmt.Sprintf("tap %s was created multi_queue, and a VM attaches to one queue only: recreate it without multi_queue (`ip tuntap del %s mode tap multi_queue`, then `ip tuntap add %s mode tap`)", name, name, name)
	}
	return fmt.Sprintf("tap %s (flags %#x) refuses a plain tap's attach: recreate it with `ip tuntap add %s mode tap`, or choose another name", name, flags, name)
}

// setIfUp sets IFF_UP on an interface, as "ip link set NAME up" does,
// unless it is set already (reading the flags needs no capability);
// raised says it was not.
func setIfUp(name string) (raised bool, err error) {
	return setIfFlag(name, "bring up", true)
}

// setIfDown clears IFF_UP on an interface, as "ip link set NAME down"
// does.
func setIfDown(name string) error {
	_, err := setIfFlag(name, "bring down", false)
	return err
}

// setIfFlag sets IFF_UP on an interface to up unless it is so already
// (changed says it was not); what names the change in errors.
func setIfFlag(name, what string, up bool) (changed bool, err error) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("tap %s: %s: socket: %w", name, what, err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return false, fmt.Errorf("tap %s: %s: %w", name, what, err)
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return false, fmt.Errorf("tap %s: %s: SIOCGIFFLAGS: %w", name, what, err)
	}
	flags := ifr.Uint16()
	if (flags&unix.IFF_UP != 0) == up {
		return false, nil
	}
	flags ^= unix.IFF_UP
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return false, fmt.Errorf("tap %s: %s: SIOCSIFFLAGS: %w", name, what, err)
	}
	return true, nil
}

// Name is the tap interface's name.
func (t *Tap) Name() string { return t.name }

// File is the tap's descriptor, to hand to another process (which makes a
// Tap of its own with TapFromFD). The Tap still owns it: Close closes it.
func (t *Tap) File() *os.File { return t.file }

// TapFromFD makes a Tap of fd, the descriptor of tap interface name opened
// by another process (OpenTap's File), possibly in another network
// namespace: its frames still go to and come from that interface. It
// checks that fd is attached to a tap named name; the Tap owns fd from
// then on, also when it returns an error.
func TapFromFD(name string, fd int) (*Tap, error) {
	ifr, err := unix.NewIfreq("")
	if err == nil {
		err = unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr)
	}
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("tap %s: descriptor %d: TUNGETIFF: %w", name, fd, err)
	}
	if got := ifr.Name(); got != name || ifr.Uint16()&unix.IFF_TAP == 0 {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("tap %s: descriptor %d is attached to %q (flags %#x), not to tap %s", name, fd, got, ifr.Uint16(), name)
	}
	// Passing the descriptor on made it blocking (os.File.Fd): back to
	// non-blocking, for Go's poller and a Close that wakes ReadFrame.
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("tap %s: descriptor %d: %w", name, fd, err)
	}
	unix.CloseOnExec(fd)
	return &Tap{name: name, file: os.NewFile(uintptr(fd), tunDevice+":"+name)}, nil
}

// ReadFrame implements Backend. The kernel silently truncates a frame read
// into a short buffer, so a buffer shorter than MaxFrameSize is served
// through a scratch buffer to detect that.
func (t *Tap) ReadFrame(buf []byte) (int, error) {
	dst := buf
	if len(buf) < MaxFrameSize {
		if t.scratch == nil {
			t.scratch = make([]byte, MaxFrameSize)
		}
		dst = t.scratch
	}
	n, err := t.file.Read(dst)
	if err != nil {
		if errors.Is(err, os.ErrClosed) {
			err = ErrClosed
		}
		return 0, fmt.Errorf("tap %s: read frame: %w", t.name, err)
	}
	if len(buf) < MaxFrameSize {
		if n > len(buf) {
			return 0, fmt.Errorf("tap %s: read frame: %w: %d-byte frame, %d-byte buffer", t.name, ErrFrameTooLong, n, len(buf))
		}
		copy(buf, dst[:n])
	}
	t.toGuest.Add(1)
	return n, nil
}

// WriteFrame implements Backend.
func (t *Tap) WriteFrame(frame []byte) error {
	if err := checkOutgoing(frame); err != nil {
		return fmt.Errorf("tap %s: write frame: %w", t.name, err)
	}
	if _, err := t.file.Write(frame); err != nil {
		if errors.Is(err, os.ErrClosed) {
			err = ErrClosed
		}
		return fmt.Errorf("tap %s: write frame: %w", t.name, err)
	}
	t.fromGst.Add(1)
	return nil
}

// Stats implements StatsReporter. The kernel counts the tap's drops itself
// (ip -s link show NAME).
func (t *Tap) Stats() Stats {
	return Stats{ToGuest: t.toGuest.Load(), FromGuest: t.fromGst.Load()}
}

// Close implements Backend.
func (t *Tap) Close() error {
	t.closeOnce.Do(func() {
		if err := t.file.Close(); err != nil {
			t.closeErr = fmt.Errorf("tap %s: close: %w", t.name, err)
		}
	})
	return t.closeErr
}
