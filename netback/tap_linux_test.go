//go:build linux

package netback

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestTapErrorMessages(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{syscall.EPERM, "run as root, or create the tap for your user first, as root, with `ip tuntap add tap7 mode tap user $USER`"},
		{syscall.EACCES, "permission denied"},
		{syscall.EBUSY, "tap tap7 is already in use by another process"},
		{syscall.EINVAL, "interface tap7 exists but is not a tap device"},
		{syscall.ENOENT, "load the tun module"},
		{syscall.EIO, "cannot attach"},
	}
	for _, tc := range tests {
		err := tapErr("tap7", "TUNSETIFF", 0, tc.err)
		if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "TUNSETIFF") {
			t.Errorf("tapErr(%v) = %q, want it to wrap the errno and say %q", tc.err, err, tc.want)
		}
	}
	for _, name := range []string{"", "a/b", "0123456789abcdef", "a b", "x:y", ".."} {
		if _, err := OpenTap(name); err == nil || !strings.Contains(err.Error(), "tap name") {
			t.Errorf("OpenTap(%q) = %v, want a tap name error", name, err)
		}
	}
}

// needTap skips unless this process may create tap devices.
func needTap(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a tap needs root (CAP_NET_ADMIN)")
	}
	if _, err := os.Stat(tunDevice); err != nil {
		t.Skipf("%s missing: %v", tunDevice, err)
	}
}

// tapName is a tap name unique to this test process.
func tapName(tag string) string {
	return fmt.Sprintf("smt%s%d", tag, os.Getpid()%100000)
}

// openTapOrSkip creates a fresh tap, skipping where the kernel refuses.
func openTapOrSkip(t *testing.T, name string) *Tap {
	t.Helper()
	tap, err := OpenTap(name)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		t.Skipf("cannot create a tap here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tap.Close() })
	return tap
}

// packetSocket is an AF_PACKET socket bound to one interface: the "wire"
// side of the tap.
func packetSocket(t *testing.T, ifname string) (int, int) {
	t.Helper()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		t.Skipf("no AF_PACKET socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		t.Fatal(err)
	}
	tv := unix.Timeval{Sec: 20}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd, ifi.Index
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// testFrame is a broadcast frame with an experimental EtherType and a
// payload the kernel will not send on its own.
func testFrame(src net.HardwareAddr, msg string) []byte {
	f := make([]byte, 14, 64)
	copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], 0x88b5)
	f = append(f, msg...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

func TestTapFramesBothWays(t *testing.T) {
	needTap(t)
	name := tapName("a")
	tap := openTapOrSkip(t, name)
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatalf("created tap %s not visible: %v", name, err)
	}
	if ifi.Flags&net.FlagUp == 0 {
		t.Errorf("created tap %s is not up", name)
	}
	fd, index := packetSocket(t, name)

	// Guest to tap: the frame arrives on the interface.
	out := testFrame(net.HardwareAddr{0x52, 0x54, 0, 1, 2, 3}, "from the guest")
	if err := tap.WriteFrame(out); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			t.Fatalf("frame written by the guest side never appeared on %s: %v", name, err)
		}
		if bytes.Equal(buf[:n], out) {
			break
		}
	}

	// Tap to guest: a frame sent on the interface reaches ReadFrame.
	in := testFrame(net.HardwareAddr{0x02, 0, 0, 0, 0, 9}, "to the guest")
	sa := &unix.SockaddrLinklayer{Protocol: htons(0x88b5), Ifindex: index, Halen: 6}
	copy(sa.Addr[:], in[:6])
	if err := unix.Sendto(fd, in, 0, sa); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, MaxFrameSize)
		for {
			n, err := tap.ReadFrame(b)
			if err != nil {
				close(got)
				return
			}
			if bytes.Equal(b[:n], in) {
				got <- append([]byte(nil), b[:n]...)
				return
			}
		}
	}()
	select {
	case _, ok := <-got:
		if !ok {
			t.Fatal("tap closed before the frame arrived")
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("frame sent on %s never reached ReadFrame", name)
	}
	if st := tap.Stats(); st.FromGuest != 1 || st.ToGuest == 0 {
		t.Errorf("stats %+v", st)
	}

	// The same tap cannot be attached twice.
	_, err = OpenTap(name)
	if !errors.Is(err, syscall.EBUSY) || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("second OpenTap(%s) = %v, want EBUSY saying it is in use", name, err)
	}

	// Close ends a pending read and removes the tap we created.
	pending := make(chan error, 1)
	go func() {
		b := make([]byte, MaxFrameSize)
		for {
			n, err := tap.ReadFrame(b)
			if err != nil || bytes.Equal(b[:n], in) {
				pending <- err
				return
			}
		}
	}()
	// Pending: parked in the poller, not merely started (a read begun
	// after Close fails with ErrClosed too).
	if !waitForStack(10*time.Second, "[IO wait", "netback.(*Tap).ReadFrame(") {
		t.Fatal("ReadFrame never waited for a frame")
	}
	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-pending:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("pending ReadFrame ended with %v, want ErrClosed", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ReadFrame still blocked after Close")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := net.InterfaceByName(name); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tap %s still exists after Close", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTapAttachesToExisting(t *testing.T) {
	needTap(t)
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("iproute2's ip is not installed")
	}
	name := tapName("p")
	if out, err := exec.Command(ip, "tuntap", "add", name, "mode", "tap").CombinedOutput(); err != nil {
		t.Skipf("ip tuntap add: %v: %s", err, out)
	}
	defer exec.Command(ip, "tuntap", "del", name, "mode", "tap").Run()
	tap := openTapOrSkip(t, name)
	if tap.Name() != name {
		t.Errorf("Name() = %q", tap.Name())
	}
	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}
	// A persistent tap outlives the backend.
	if _, err := net.InterfaceByName(name); err != nil {
		t.Errorf("persistent tap %s gone after Close: %v", name, err)
	}
}

// TestTapRefusesOtherInterfaces: an interface OpenTap may not attach to
// is refused (EINVAL) saying what it is and what to do: no tun device at
// all (lo), a tun device, a tap made multi_queue.
func TestTapRefusesOtherInterfaces(t *testing.T) {
	needTap(t)
	ip, ipErr := exec.LookPath("ip")
	tests := []struct {
		name string
		mode []string // ip tuntap add's mode, nil for lo
		want string
	}{
		{"lo", nil, "interface lo exists but is not a tap device"},
		{tapName("u"), []string{"mode", "tun"}, "is a tun device (IP packets, no Ethernet frames), not a tap"},
		{tapName("q"), []string{"mode", "tap", "multi_queue"}, "was created multi_queue, and a VM attaches to one queue only: recreate it without multi_queue (`ip tuntap del " + tapName("q") + " mode tap multi_queue`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mode != nil {
				if ipErr != nil {
					t.Skip("iproute2's ip is not installed")
				}
				if out, err := exec.Command(ip, append([]string{"tuntap", "add", tt.name}, tt.mode...)...).CombinedOutput(); err != nil {
					t.Skipf("ip tuntap add: %v: %s", err, out)
				}
				defer exec.Command(ip, append([]string{"tuntap", "del", tt.name}, tt.mode...)...).Run()
			}
			tap, err := OpenTap(tt.name)
			if err == nil {
				tap.Close()
			}
			if errors.Is(err, syscall.EPERM) {
				t.Skipf("no permission here: %v", err)
			}
			if !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenTap(%s) = %v, want EINVAL saying %q", tt.name, err, tt.want)
			}
		})
	}
}

// TestTapNotTapHint: the flags of each kind of tun device the kernel will
// not attach a plain tap to give their own advice.
func TestTapNotTapHint(t *testing.T) {
	tests := []struct {
		flags int64
		want  string
	}{
		{-1, "exists but is not a tap device"},
		{unix.IFF_TUN | unix.IFF_NO_PI, "is a tun device"},
		{unix.IFF_TAP | unix.IFF_MULTI_QUEUE | unix.IFF_NO_PI, "was created multi_queue"},
		{unix.IFF_TAP | unix.IFF_NO_PI, "(flags 0x1002) refuses a plain tap's attach"},
	}
	for _, tt := range tests {
		if got := notTapHint("t0", tt.flags); !strings.Contains(got, tt.want) {
			t.Errorf("notTapHint(%#x) = %q, want %q", tt.flags, got, tt.want)
		}
	}
}

// waitForStack waits, at most d, for a goroutine in state (the bracketed
// status of a stack dump, such as "[IO wait") with frame in its stack,
// and reports whether one was seen.
func waitForStack(d time.Duration, state, frame string) bool {
	deadline := time.Now().Add(d)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n == len(buf) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if strings.Contains(header, " "+state) && strings.Contains(g, frame) {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// inNewNetns moves the test's goroutine, locked to its thread for good
// (the thread ends with it), into a network namespace of its own,
// skipping where that is not possible.
func inNewNetns(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Skipf("cannot make a network namespace here: %v", err)
	}
}

// makeDownTap creates persistent tap name owned by the effective user,
// left down, as "ip tuntap add NAME mode tap user $USER" does.
func makeDownTap(t *testing.T, name string) {
	t.Helper()
	makeTapOf(t, name, os.Geteuid())
}

// dropNetAdmin removes CAP_NET_ADMIN from the effective capabilities of
// the calling thread (inNewNetns's, which no other goroutine uses), as for
// an ordinary user.
func dropNetAdmin(t *testing.T) {
	t.Helper()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
}

// A tap made beforehand is down until someone brings it up, and a down
// tap loses every frame (a write fails with EIO): OpenTap brings it up,
// and where it may not (without CAP_NET_ADMIN), refuses it, saying how to
// bring it up; a tap already up needs no capability.
func TestTapExistingDown(t *testing.T) {
	tests := []struct {
		name      string
		up        bool // brought up before OpenTap
		noNetAdm  bool
		wantError string
	}{
		{name: "down, may bring up"},
		{name: "down, may not bring up", noNetAdm: true,
			wantError: "tap smtdown is down and this process may not bring it up (that needs CAP_NET_ADMIN): bring it up first with `ip link set smtdown up`"},
		{name: "up already, no capability", up: true, noNetAdm: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			needTap(t)
			inNewNetns(t)
			const name = "smtdown"
			makeDownTap(t, name)
			if tc.up {
				if _, err := setIfUp(name); err != nil {
					t.Fatal(err)
				}
			}
			if tc.noNetAdm {
				dropNetAdmin(t)
			}
			tap, err := OpenTap(name)
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) || !errors.Is(err, syscall.EPERM) {
					t.Fatalf("OpenTap(%s) = %v, want EPERM saying %q", name, err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tap.Close()
			if ifi, err := net.InterfaceByName(name); err != nil || ifi.Flags&net.FlagUp == 0 {
				t.Errorf("tap %s after OpenTap: %+v, %v; want it up", name, ifi, err)
			}
			if err := tap.WriteFrame(testFrame(net.HardwareAddr{0x52, 0x54, 0, 1, 2, 3}, "from the guest")); err != nil {
				t.Errorf("a frame from the guest was lost: %v", err)
			}
		})
	}
}

// CheckTap, up's probe before its download, fails as OpenTap would and
// leaves the interface as it found it: a down tap stays down (brought
// up to check that it may be, then down again), an up one up, and one
// it created is gone.
func TestCheckTap(t *testing.T) {
	tests := []struct {
		name      string
		exists    bool
		up        bool // brought up before CheckTap
		noNetAdm  bool
		wantError string
	}{
		{name: "down", exists: true},
		{name: "up", exists: true, up: true},
		{name: "up, no capability", exists: true, up: true, noNetAdm: true},
		{name: "down, may not bring up", exists: true, noNetAdm: true,
			wantError: "tap smtcheck is down and this process may not bring it up (that needs CAP_NET_ADMIN)"},
		{name: "missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			needTap(t)
			inNewNetns(t)
			const name = "smtcheck"
			if tc.exists {
				makeDownTap(t, name)
			}
			if tc.up {
				if _, err := setIfUp(name); err != nil {
					t.Fatal(err)
				}
			}
			if tc.noNetAdm {
				dropNetAdmin(t)
			}
			err := CheckTap(name)
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("CheckTap(%s) = %v, want %q", name, err, tc.wantError)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			ifi, err := net.InterfaceByName(name)
			if !tc.exists {
				if err == nil {
					t.Errorf("tap %s, which CheckTap created, is still there", name)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if up := ifi.Flags&net.FlagUp != 0; up != tc.up {
				t.Errorf("tap %s after CheckTap: up %v, want %v", name, up, tc.up)
			}
		})
	}
}
