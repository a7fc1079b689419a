package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/portready/portreadytest"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/sandbox"
)

// needJail skips a test that cannot start a jailed VM here.
func needJail(t *testing.T) {
	t.Helper()
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	if os.Geteuid() != 0 {
		t.Skip("--jail needs root")
	}
}

// jailedPID is the process the smolvmm started as pid runs jailed: its
// only child.
func jailedPID(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		kids = append(kids, strings.Fields(string(b))...)
	}
	if len(kids) != 1 {
		t.Fatalf("smolvmm --jail (pid %d) has children %v, want one: the jailed VMM", pid, kids)
	}
	child, err := strconv.Atoi(kids[0])
	if err != nil {
		t.Fatal(err)
	}
	return child
}

// TestJailNamespaces: a running VM started with --jail is a child of
// smolvmm in mount, PID, IPC and UTS namespaces other than the test's, in
// a network namespace of its own with --net none and --net user:NAME
// (a shared network's socket) and in the host's with --net user (whose
// NAT uses the host's sockets), and sees itself as PID 1
// there; it is contained as without the jail (filter on every thread).
func TestJailNamespaces(t *testing.T) {
	needJail(t)
	dir := testsock.Dir(t)
	startNetDaemon(t, filepath.Join(dir, "n.sock")) // net_test.go
	for _, tt := range []struct {
		net     string
		ownNet  bool
		comment string
	}{
		{"none", true, "no network: a namespace of its own"},
		{"user", false, "the user network needs the host's"},
		{"user:" + filepath.Join(dir, "n.sock"), true, "a shared network is reached by its socket's path"},
	} {
		t.Run(tt.net, func(t *testing.T) {
			cmd, _ := runningVM(t, nil, "--jail", "--net", tt.net)
			vmm := jailedPID(t, cmd.Process.Pid)
			for _, ns := range []string{"mnt", "pid", "ipc", "uts", "net"} {
				ours, err := os.Readlink("/proc/self/ns/" + ns)
				if err != nil {
					t.Fatal(err)
				}
				theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", vmm, ns))
				if err != nil {
					t.Fatal(err)
				}
				parent, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", cmd.Process.Pid, ns))
				if parent != ours {
					t.Errorf("smolvmm itself is in %s, not in the test's %s", parent, ours)
				}
				if want := ns != "net" || tt.ownNet; (theirs != ours) != want {
					t.Errorf("--net %s: the jailed VMM is in %s, the test in %s; want a namespace of its own: %v (%s)", tt.net, theirs, ours, want, tt.comment)
				}
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", vmm))
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("\nNSpid:\t%d\t1\n", vmm); !strings.Contains(string(b), want) {
				t.Errorf("/proc/%d/status lacks %q (PID 1 of its own namespace):\n%s", vmm, want, b)
			}
			for _, st := range procStatus(t, vmm) {
				if st["Seccomp"] != "2" || st["NoNewPrivs"] != "1" {
					t.Errorf("%s: Seccomp %q, NoNewPrivs %q; want 2 and 1", st["path"], st["Seccomp"], st["NoNewPrivs"])
				}
			}
		})
	}
}

// TestJailContained: --jail with --chroot and --user: the jailed VMM runs
// as nobody with no capabilities, under the filter, in the empty
// directory, on every thread.
func TestJailContained(t *testing.T) {
	needJail(t)
	nobody := nobodyUser(t)
	dir := t.TempDir()
	cmd, _ := runningVM(t, nil, "--jail", "--chroot", dir, "--user", "nobody")
	vmm := jailedPID(t, cmd.Process.Pid)
	wantID := fmt.Sprintf("%d\t%d\t%d\t%d", nobody.UID, nobody.UID, nobody.UID, nobody.UID)
	for _, st := range procStatus(t, vmm) {
		if st["Seccomp"] != "2" || st["NoNewPrivs"] != "1" || st["CapEff"] != "0000000000000000" || st["CapPrm"] != "0000000000000000" {
			t.Errorf("%s: Seccomp %q NoNewPrivs %q CapEff %q CapPrm %q; want 2, 1, none, none", st["path"], st["Seccomp"], st["NoNewPrivs"], st["CapEff"], st["CapPrm"])
		}
		if st["Uid"] != wantID || st["Groups"] != "" {
			t.Errorf("%s: Uid %q Groups %q; want %q and none", st["path"], st["Uid"], st["Groups"], wantID)
		}
	}
	// The root is the directory's copy in the VMM's mount namespace: an
	// empty directory in either case.
	if root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", vmm)); err != nil || root != dir {
		t.Errorf("root of the jailed VMM %q (%v), want %q", root, err, dir)
	}
	if names, err := os.ReadDir(fmt.Sprintf("/proc/%d/root/", vmm)); err != nil || len(names) != 0 {
		t.Errorf("the jailed VMM's root holds %v (%v), want nothing", names, err)
	}
}

// TestJailProc: the jailed VMM's /proc is its PID namespace's: /proc/1 is
// itself, and the test's process is not there. It kept the host's, where
// a jailed VMM (--no-seccomp) read the host's PID 1's command line.
func TestJailProc(t *testing.T) {
	needJail(t)
	bin := smolvmmBin(t)
	for _, tt := range []struct{ path, want string }{
		{"/proc/1/cmdline", `"` + bin + `\x00demo\x00--no-seccomp\x00--jail\x00" <nil>`},
		{fmt.Sprintf("/proc/%d/cmdline", os.Getpid()), "no such file or directory"},
		// What the VMM opens from /proc still names it.
		{"/proc/self/stat", `"1 (`},
	} {
		t.Run(tt.path, func(t *testing.T) {
			cmd := exec.Command(bin, "demo", "--no-seccomp", "--jail")
			cmd.Env = append(os.Environ(), testHookEnv+"=read:"+tt.path)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			head := "smolvmm-test: read " + tt.path + ": "
			_, line, _ := strings.Cut(string(out), head)
			if line, _, _ = strings.Cut(line, "\n"); !strings.Contains(line, tt.want) {
				t.Errorf("want %q after %q in:\n%s", tt.want, head, out)
			}
		})
	}
}

// TestJailExitStatus: smolvmm --jail ends as the jailed VMM does: the
// guest's debug-exit status, 148 for a call the filter refused, 130 for a
// SIGTERM sent to smolvmm (passed on), and 128+9 when the VMM itself is
// killed. (TestIgnoredSignals: SIGUSR1 and the like change nothing.)
func TestJailExitStatus(t *testing.T) {
	needJail(t)
	bin := smolvmmBin(t)
	hammer := guests.ForTest(t, "hammer")
	for _, tt := range []struct {
		name   string
		args   []string
		env    string
		status int
		want   string
	}{
		{"guest debug-exit", []string{"run", "-k", hammer, "-m", "32", "-a", "n=300", "--net", "none"}, "", 0x55, "hammer: devices answer"},
		{"demo", []string{"demo"}, "", 0, "smolvmm-demo: done"},
		{"forbidden call", []string{"demo"}, testHookEnv + "=open:/etc/passwd", sandbox.ExitStatus, "forbidden openat (system call 257)"},
		// Killed by the kernel, the VMM says nothing: its status was
		// all there was.
		{"forbidden call with SIGSYS blocked", []string{"demo"}, testHookEnv + "=sigsys-blocked", 128 + int(syscall.SIGSYS),
			"smolvmm demo: the jailed VMM was killed by SIGSYS (a forbidden system call while SIGSYS was blocked)\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, append(tt.args, "--jail")...)
			cmd.Env = append(os.Environ(), tt.env)
			out, err := cmd.CombinedOutput()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tt.status || !bytes.Contains(out, []byte(tt.want)) {
				t.Errorf("status %d, want %d and %q in:\n%s", status, tt.status, tt.want, out)
			}
		})
	}
	for _, tt := range []struct {
		name   string
		toVMM  bool
		sig    syscall.Signal
		status int
	}{
		{"SIGTERM to smolvmm", false, syscall.SIGTERM, 130},
		{"SIGKILL to the jailed VMM", true, syscall.SIGKILL, 128 + int(syscall.SIGKILL)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd, stderr := runningVM(t, nil, "--jail")
			pid := cmd.Process.Pid
			if tt.toVMM {
				pid = jailedPID(t, pid)
			}
			if err := syscall.Kill(pid, tt.sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("smolvmm --jail did not end within 30 s of %v", tt.sig)
			}
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != tt.status {
				t.Errorf("smolvmm --jail after %v: %v, want exit status %d; stderr:\n%s", tt.sig, err, tt.status, stderr)
			}
			if killed := strings.Contains(stderr.String(), "smolvmm run: the jailed VMM was killed by SIGKILL"); killed != tt.toVMM {
				t.Errorf("smolvmm --jail after %v: says it killed the VMM %v, want %v; stderr:\n%s", tt.sig, killed, tt.toVMM, stderr)
			}
		})
	}
}

// TestUpRunArgs: the smolvmm run command line up starts for --jail boots
// up's kernel with its image as ld0 and the run flags up was given, as
// run parses them.
func TestUpRunArgs(t *testing.T) {
	var args []string
	up := &cli.Command{Name: "up", Flags: upCommand().Flags, Action: func(c *cli.Context) error {
		args = upRunArgs(c, "/cache/netbsd", "rescue.img")
		return nil
	}}
	if err := newApp([]*cli.Command{up}).Run([]string{"smolvmm", "up", "--version", "10.1", "-m", "256", "-d", "data.img,ro",
		"-d", "more.img", "--net", "none", "--jail", "--no-seccomp", "-a", "-s root=ld0a", "rescue"}); err != nil {
		t.Fatal(err)
	}
	if len(args) < 2 || args[1] != "run" {
		t.Fatalf("upRunArgs = %q, want smolvmm run ...", args)
	}
	var got map[string]any
	run := runCommand()
	run.Action = func(c *cli.Context) error {
		got = map[string]any{"kernel": c.String("kernel"), "memory": c.Int("memory"), "disk": c.StringSlice("disk"),
			"net": c.String("net"), "jail": c.Bool("jail"), "no-seccomp": c.Bool("no-seccomp"), "append": c.String("append"),
			"version set": hasFlag(c, "version")}
		return nil
	}
	app := newApp([]*cli.Command{run})
	app.ExitErrHandler = func(*cli.Context, error) {}
	if err := app.Run(args); err != nil {
		t.Fatalf("smolvmm run refuses %q: %v", args, err)
	}
	want := map[string]any{"kernel": "/cache/netbsd", "memory": 256, "disk": []string{"rescue.img", "data.img,ro", "more.img"},
		"net": "none", "jail": true, "no-seccomp": true, "append": "-s root=ld0a", "version set": false}
	for k, v := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(v) {
			t.Errorf("run %q: %s = %v, want %v", args, k, got[k], v)
		}
	}
	if slices.Contains(args, "--version") {
		t.Errorf("run %q: up's own --version passed on", args)
	}
}

// TestJailTapTraffic: a jailed VMM, in a network namespace of its own,
// moves frames both ways through a tap of the host's namespace: the vnet
// guest's ARP request for 10.0.2.2 arrives on the host's interface (read
// with a packet socket), and the reply the test sends there, from a MAC
// of its own, reaches the guest, which prints that MAC.
func TestJailTapTraffic(t *testing.T) {
	needJail(t)
	name := fmt.Sprintf("smolj%d", os.Getpid()%100000)
	ifindex := persistentTap(t, name)
	sock, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		t.Skipf("no packet socket: %v", err)
	}
	defer unix.Close(sock)
	if err := unix.Bind(sock, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex}); err != nil {
		t.Fatal(err)
	}
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(sock, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(smolvmmBin(t), "run", "-k", guests.ForTest(t, "vnet"), "-m", "32", "--net", "tap:"+name, "-a", "timeout=30", "--jail")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// The guest's request: broadcast ARP, who has 10.0.2.2, tell 10.0.2.15.
	var guestMAC []byte
	buf := make([]byte, 2048)
	for deadline := time.Now().Add(30 * time.Second); guestMAC == nil && time.Now().Before(deadline); {
		n, _, err := unix.Recvfrom(sock, buf, 0)
		if err != nil {
			continue // timeout: read again
		}
		f := buf[:n]
		if n >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 1 &&
			bytes.Equal(f[28:32], []byte{10, 0, 2, 15}) && bytes.Equal(f[38:42], []byte{10, 0, 2, 2}) {
			guestMAC = append([]byte(nil), f[22:28]...)
		}
	}
	if guestMAC == nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no ARP request from the guest on tap %s; smolvmm:\n%s", name, out.Bytes())
	}
	ours := []byte{0x02, 0x00, 0x5e, 0x10, 0x0a, 0x02}
	reply := append(append(append([]byte(nil), guestMAC...), ours...), 0x08, 0x06, // Ethernet
		0, 1, 8, 0, 6, 4, 0, 2) // ARP reply
	reply = append(append(append(reply, ours...), 10, 0, 2, 2), guestMAC...)
	reply = append(reply, 10, 0, 2, 15)
	var to [8]byte
	copy(to[:], guestMAC)
	if err := unix.Sendto(sock, reply, 0, &unix.SockaddrLinklayer{Ifindex: ifindex, Halen: 6, Addr: to}); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	want := "vnet: arp reply 10.0.2.2 is at 02:00:5e:10:0a:02"
	// The guest's exit(0) through the debug-exit port is status 1.
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "vnet: ok") {
		t.Errorf("smolvmm: %v, want status 1, %q and vnet: ok in:\n%s", err, want, out.Bytes())
	}
}

// persistentTap creates tap name (up, kept when its descriptors close)
// for the test's life and returns its interface index.
func persistentTap(t *testing.T, name string) int {
	t.Helper()
	setPersist := func(on uintptr) error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			return err
		}
		return unix.IoctlSetInt(fd, unix.TUNSETPERSIST, int(on))
	}
	if err := setPersist(1); err != nil {
		t.Skipf("cannot create tap %s here: %v", name, err)
	}
	t.Cleanup(func() {
		if err := setPersist(0); err != nil {
			t.Errorf("remove tap %s: %v", name, err)
		}
	})
	// No IPv6 on the test's tap: the host would send router
	// solicitations and MLD reports into the guest's four receive
	// buffers as the link comes up, and a slow guest could lose the
	// ARP reply the test sends behind them. (Best effort: a host
	// without IPv6 has no such file.)
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0o644)
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		t.Fatal(err)
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return ifi.Index
}

// htons is v in network byte order, as packet sockets take protocols.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestBenchJail: smolvmm bench --jail boots the demo guest jailed and
// reads the memory of the jailed VMM, which maps the guest RAM, not of
// the process that waits for it.
func TestBenchJail(t *testing.T) {
	needJail(t)
	out := filepath.Join(t.TempDir(), "r.json")
	status, stdout, stderr := benchRun(t, nil, "-n", "2", "--warmup", "1", "--net", "none", "--jail", "--json", out)
	if status != 0 {
		t.Fatalf("bench --jail: status %d\n%s\n%s", status, stdout, stderr)
	}
	s := readBenchJSON(t, out).Systems[0]
	if s.MemoryError != "" || s.Memory == nil || s.Memory.GuestRAMKiB != 128<<10 {
		t.Errorf("bench --jail memory %+v, error %q; want the jailed VMM's, with its 128 MiB guest RAM", s.Memory, s.MemoryError)
	}
	if !slices.Contains(s.Command, "--jail") {
		t.Errorf("bench --jail ran %q", s.Command)
	}
}

// TestJailRefused: root without CAP_SYS_ADMIN (setpriv drops it from the
// bounding set) gets the kernel's refusal, said as such, status 1, and
// no VM.
func TestJailRefused(t *testing.T) {
	needJail(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv(1) from util-linux to drop CAP_SYS_ADMIN")
	}
	out, err := exec.Command(setpriv, "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", smolvmmBin(t), "demo", "--jail").CombinedOutput()
	want := "the kernel refused to create the namespaces"
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !bytes.Contains(out, []byte(want)) || bytes.Contains(out, []byte("smolvmm-demo")) {
		t.Errorf("demo --jail without CAP_SYS_ADMIN: %v, want status 1, %q and no guest output in:\n%s", err, want, out)
	}
}

// TestIgnoredSignals: a running VM, jailed or not, ignores SIGUSR1,
// SIGUSR2 and SIGALRM (a Go program's default) and still ends with 130 on
// the SIGTERM sent after them. Before, the jailed VMM ended with 128+n on
// them while the unjailed one ran on.
func TestIgnoredSignals(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	for _, mode := range []struct {
		name  string
		extra []string
	}{{"unjailed", nil}, {"jailed", []string{"--jail"}}} {
		t.Run(mode.name, func(t *testing.T) {
			if mode.extra != nil {
				needJail(t)
			}
			cmd, stderr := runningVM(t, nil, mode.extra...)
			for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGTERM} {
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatalf("%v: %v", sig, err)
				}
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("smolvmm did not end within 30 s of SIGTERM")
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
				t.Errorf("after SIGUSR1, SIGUSR2, SIGALRM, SIGTERM: %v, want exit status 130 (the last one's); stderr:\n%s", err, stderr)
			}
		})
	}
}

// TestNohupRun: a running VM whose SIGHUP was ignored at exec (nohup),
// jailed or not, runs on after a SIGHUP, sent to smolvmm and, jailed, to
// the jailed VMM too (a terminal's hangup reaches its whole process
// group), and ends with 130 on the SIGTERM after. Before, smolvmm --jail
// caught SIGHUP (undoing the ignore the jailed VMM would inherit) and
// passed it on: the VM stopped when its terminal closed.
func TestNohupRun(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	for _, mode := range []struct {
		name  string
		extra []string
	}{{"unjailed", nil}, {"jailed", []string{"--jail"}}} {
		t.Run(mode.name, func(t *testing.T) {
			if mode.extra != nil {
				needJail(t)
			}
			nohup := func(cmd *exec.Cmd) {
				cmd.Args = append([]string{"sh", "-c", `trap "" HUP; exec "$0" "$@"`}, cmd.Args...)
				cmd.Path = "/bin/sh"
			}
			cmd, stderr := runningVMWith(t, nohup, nil, mode.extra...)
			pids := []int{cmd.Process.Pid}
			if mode.extra != nil {
				pids = append(pids, jailedPID(t, cmd.Process.Pid))
			}
			for _, pid := range pids {
				if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
					t.Fatalf("SIGHUP to %d: %v", pid, err)
				}
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				t.Fatalf("smolvmm ended on the SIGHUP it ignored at exec: %v; stderr:\n%s", err, stderr)
			case <-time.After(2 * time.Second):
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("smolvmm did not end within 30 s of SIGTERM")
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
				t.Errorf("after SIGHUP (ignored), SIGTERM: %v, want exit status 130; stderr:\n%s", err, stderr)
			}
		})
	}
}

// TestJailsNetwork: which jailed VMMs get a network namespace of their
// own. A tap with --ready-port did, where loopback is down: the probe of
// 127.0.0.1 never succeeded and the VM was never said to be ready.
func TestJailsNetwork(t *testing.T) {
	for _, tt := range []struct {
		spec      string
		readyPort bool
		want      bool
	}{
		{"none", false, true},
		{"tap:tap0", false, true},
		{"tap:tap0", true, false},
		{"user:web", false, true},
		{"user:web", true, false},
		{"user", false, false},
		{"user", true, false},
	} {
		if got := jailsNetwork(tt.spec, tt.readyPort); got != tt.want {
			t.Errorf("jailsNetwork(%q, ready port %v) = %v, want %v", tt.spec, tt.readyPort, got, tt.want)
		}
	}
}

// TestJailTapReadyPort: jailed on a tap with --ready-port, the VMM probes
// the host's loopback (here the test answers) and --timings reports the VM
// ready. In a network namespace of its own, loopback was down and the
// probe never succeeded, without a word. (The vnet guest waits for an ARP
// reply that does not come, long enough for the probe, and ends.)
func TestJailTapReadyPort(t *testing.T) {
	needJail(t)
	name := fmt.Sprintf("smolr%d", os.Getpid()%100000)
	persistentTap(t, name)
	_, port, _ := strings.Cut(portreadytest.Greeter(t, "SSH-2.0-test\r\n"), "127.0.0.1:")
	out, stderr, status := runCLI(t, "run", "-k", guests.ForTest(t, "vnet"), "-m", "32", "--net", "tap:"+name,
		"-a", "timeout=3", "--jail", "--ready-port", port, "--timings")
	// Without the reply, the guest fails: debug-exit 1, status 3.
	if status != 3 {
		t.Fatalf("status %d, want 3 (debug-exit 1)\n%s\n%s", status, out, stderr)
	}
	if !slices.Contains(timingPhases(stderr), "ready") {
		t.Errorf("no ready from the probe of 127.0.0.1:%s\n%s\n%s", port, out, stderr)
	}
}

// TestUpJailedNotStarted: up --jail whose jailed VMM never started (here
// a tap name run refuses; as well a tap that cannot be opened, no
// namespaces, or a jail that fails to start) marks its error so, and up
// then says no time the VM ran ("run ended after", once said for a VM
// that never existed).
func TestUpJailedNotStarted(t *testing.T) {
	var err error
	var ran bool
	up := &cli.Command{Name: "up", Flags: upCommand().Flags, Action: func(c *cli.Context) error {
		ran, err = upJailed(c, "/cache/netbsd", "rescue.img")
		return nil
	}}
	// A name longer than an interface's 15 bytes: refused before any
	// tap is made or jail started.
	if e := newApp([]*cli.Command{up}).Run([]string{"smolvmm", "up", "--net", "tap:nosuchtapnameislonger", "--jail", "rescue"}); e != nil {
		t.Fatal(e)
	}
	var ns notStartedError
	if !ran || !errors.As(err, &ns) {
		t.Fatalf("upJailed: ran %v, err %v (%T); want it ran and its error marked not started", ran, err, err)
	}
}
