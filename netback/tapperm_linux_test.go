//go:build linux

package netback

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/nobodyfs"
)

// TestTapPermissionHints: a refusal says which step was refused. The
// clone device refused (a container's is often mode 0600, root's) was
// answered "create the tap for your user first", which changes nothing
// there, with "permission denied" said twice; a tap that exists for
// another user got the same advice, which ip refuses (it exists).
func TestTapPermissionHints(t *testing.T) {
	dev := fileOwner{known: true, mode: 0o600, uid: 0, gid: 0}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"device mode", tunDeviceRefused(syscall.EACCES, dev, 1000),
			"the device (mode 0600, owner 0:0) is not open to this user (uid 1000): run as root, or have root open it to all users with `chmod 0666 /dev/net/tun`, the mode most distributions give it"},
		{"device not examined", tunDeviceRefused(syscall.EACCES, fileOwner{}, 1000),
			"the device is not open to this user (uid 1000): run as root, or have root open it to all users with `chmod 0666 /dev/net/tun`, the mode most distributions give it"},
		{"device rules", tunDeviceRefused(syscall.EPERM, fileOwner{known: true, mode: 0o666}, 1000),
			"the device (mode 0666, owner 0:0) may not be opened here, whatever its mode: the device rules of this container, or a security module, forbid it"},
		{"no such tap", tapNotPermitted("tap7", false, 0, 0, 1000),
			"this user (uid 1000) may not create tap tap7 (that needs CAP_NET_ADMIN): run as root, or create the tap for your user first, as root, with `ip tuntap add tap7 mode tap user $USER` (then `ip link set tap7 up`)"},
		{"another's tap", tapNotPermitted("tap7", true, 1001, -1, 1000),
			"tap tap7 exists and belongs to uid 1001: this user (uid 1000) may not attach to it (that needs CAP_NET_ADMIN): run as root, or make it anew for your user, as root, with `ip tuntap del tap7 mode tap` and `ip tuntap add tap7 mode tap user $USER` (then `ip link set tap7 up`)"},
		{"a group's tap", tapNotPermitted("tap7", true, -1, 20, 1000),
			"tap tap7 exists and belongs to group 20: this user (uid 1000) may not attach to it (that needs CAP_NET_ADMIN): run as root, or make it anew for your user, as root, with `ip tuntap del tap7 mode tap` and `ip tuntap add tap7 mode tap user $USER` (then `ip link set tap7 up`)"},
		{"no one's tap", tapNotPermitted("tap7", true, -1, -1, 1000),
			"tap tap7 exists and belongs to no user: this user (uid 1000) may not attach to it (that needs CAP_NET_ADMIN): run as root, or make it anew for your user, as root, with `ip tuntap del tap7 mode tap` and `ip tuntap add tap7 mode tap user $USER` (then `ip link set tap7 up`)"},
		// sysfs showing another network namespace's devices.
		{"owner not known", tapNotPermitted("tap7", true, unknownOwner, unknownOwner, 1000),
			"tap tap7 exists and does not belong to this user: this user (uid 1000) may not attach to it (that needs CAP_NET_ADMIN): run as root, or make it anew for your user, as root, with `ip tuntap del tap7 mode tap` and `ip tuntap add tap7 mode tap user $USER` (then `ip link set tap7 up`)"},
		{"own tap refused", tapNotPermitted("tap7", true, 1000, -1, 1000),
			"tap tap7 belongs to this user (uid 1000), and still the kernel refused to attach to it (a security module?)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, tt.got, tt.want)
		}
	}
}

// TestTapDeviceNotOpen: where this user may not open the clone device,
// OpenTap says so, with the device's mode and owner, once "permission
// denied", and not to create the tap for the user (which changes nothing).
// As root it runs as nobody, in a network namespace of its own, so that a
// tap it makes by mistake is not left in the host's.
func TestTapDeviceNotOpen(t *testing.T) {
	if _, err := os.Stat(tunDevice); err != nil {
		t.Skipf("%s: %v", tunDevice, err)
	}
	if os.Geteuid() == 0 {
		inNewNetns(t)
	} else {
		// Never unlocked: Become's ids end with the thread.
		runtime.LockOSThread()
	}
	nobodyfs.Become(t)
	if fd, err := unix.Open(tunDevice, unix.O_RDWR|unix.O_CLOEXEC, 0); err == nil {
		unix.Close(fd)
		t.Skipf("%s is open to this user here", tunDevice)
	}
	tap, err := OpenTap("smtperm")
	if tap != nil {
		tap.Close()
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if !errors.Is(err, syscall.EACCES) || !strings.Contains(msg, "tap smtperm: open /dev/net/tun: the device (mode ") ||
		!strings.Contains(msg, "is not open to this user") || strings.Count(msg, "permission denied") != 1 || strings.Contains(msg, "ip tuntap add") {
		t.Errorf("OpenTap as a user the device refuses: %v", err)
	}
}

// TestTapOfAnotherUser: a tap made for another user is refused to this
// one (without CAP_NET_ADMIN) saying whose it is and how to make it anew,
// and a tap this user may not create says how to create it for the user.
func TestTapOfAnotherUser(t *testing.T) {
	tests := []struct {
		name, tap string
		owner     int // -1: no tap made beforehand
		want      string
	}{
		{"another user's", "smtother", 61237, "tap smtother exists and belongs to uid 61237: this user (uid 0) may not attach to it (that needs CAP_NET_ADMIN): run as root, or make it anew for your user, as root, with `ip tuntap del smtother mode tap` and `ip tuntap add smtother mode tap user $USER`"},
		{"none yet", "smtnone", -1, "this user (uid 0) may not create tap smtnone (that needs CAP_NET_ADMIN): run as root, or create the tap for your user first, as root, with `ip tuntap add smtnone mode tap user $USER`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needTap(t)
			inNewNetns(t)
			sysfsOfNetns(t)
			if tt.owner >= 0 {
				makeTapOf(t, tt.tap, tt.owner)
			}
			dropNetAdmin(t)
			_, err := OpenTap(tt.tap)
			if err == nil || !errors.Is(err, syscall.EPERM) || !strings.Contains(err.Error(), "TUNSETIFF: "+tt.want) ||
				strings.Count(err.Error(), "operation not permitted") != 1 {
				t.Errorf("OpenTap(%s) = %v, want EPERM saying %q", tt.tap, err, tt.want)
			}
		})
	}
}

// TestTapOwnerOfAnotherNetns: with /sys showing another network
// namespace's devices (nsenter --net, or unshare -n without mounting /sys
// anew), a refused tap was said to exist and belong to that namespace's
// tap's owner, with advice to delete a tap not in this namespace. The
// owner is now read only from a sysfs whose interface has this
// namespace's index.
func TestTapOwnerOfAnotherNetns(t *testing.T) {
	tests := []struct {
		name  string
		owner int // -1: no tap in this namespace
		want  string
	}{
		{"none here", -1, "TUNSETIFF: this user (uid 0) may not create tap smtns (that needs CAP_NET_ADMIN)"},
		{"another here", 61237, "TUNSETIFF: tap smtns exists and does not belong to this user: this user (uid 0) may not attach to it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needTap(t)
			inNewNetns(t)
			sysfsOfNetns(t)
			makeTapOf(t, "smtns", 1234)
			// Held, so that the first namespace, its tap with it, lives on
			// once this thread leaves it.
			first, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			// A namespace of its own, /sys still showing the first's.
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				t.Skipf("cannot make a network namespace here: %v", err)
			}
			if tt.owner >= 0 {
				// Another index than the first namespace's tap's.
				makeTapOf(t, "smtpad", 0)
				makeTapOf(t, "smtns", tt.owner)
			}
			dropNetAdmin(t)
			if _, err := os.Stat("/sys/class/net/smtns"); err != nil {
				t.Fatalf("/sys does not show the first namespace's tap: %v", err)
			}
			tap, err := OpenTap("smtns")
			if tap != nil {
				tap.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "1234") {
				t.Errorf("OpenTap(smtns) = %v, want it to say %q, and nothing of uid 1234", err, tt.want)
			}
		})
	}
}

// makeTapOf creates persistent tap name owned by uid, left down.
func makeTapOf(t *testing.T, name string, uid int) {
	t.Helper()
	fd, err := unix.Open(tunDevice, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("open %s: %v", tunDevice, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		t.Skipf("cannot create a tap here: %v", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOWNER, uid); err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
		t.Fatal(err)
	}
}

// sysfsOfNetns mounts, for the calling thread (inNewNetns's) alone, a
// sysfs showing its network namespace's devices, as "ip netns exec" does.
func sysfsOfNetns(t *testing.T) {
	t.Helper()
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		t.Skipf("cannot make a mount namespace here: %v", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		t.Skipf("cannot make / a slave mount here: %v", err)
	}
	if err := unix.Mount("sysfs", "/sys", "sysfs", 0, ""); err != nil {
		t.Skipf("cannot mount sysfs here: %v", err)
	}
}
