package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// netDaemon is a running "smolvmm net" whose log lines arrive on lines.
type netDaemon struct {
	cmd   *exec.Cmd
	lines chan string
}

func startNetDaemon(t testing.TB, socket string, args ...string) *netDaemon {
	t.Helper()
	return startNetDaemonCmd(t, exec.Command(smolvmmBin(t), append([]string{"net", "--socket", socket}, args...)...), socket)
}

// startNetDaemonCmd starts cmd, a smolvmm net serving socket, as
// startNetDaemon does.
func startNetDaemonCmd(t testing.TB, cmd *exec.Cmd, socket string) *netDaemon {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &netDaemon{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
		close(d.lines)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	d.expect(t, "listening on "+socket)
	return d
}

// expect waits for a log line containing want.
func (d *netDaemon) expect(t testing.TB, want string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-d.lines:
			if !ok {
				t.Fatalf("smolvmm net ended before logging %q", want)
			}
			if strings.Contains(l, want) {
				return l
			}
		case <-timeout:
			t.Fatalf("smolvmm net did not log %q", want)
		}
	}
}

// TestCLISharedNetwork: the vnet guest on "smolvmm net" gets the
// gateway's ARP answer through the hub's switch; without the daemon, run
// fails before the VM starts and says how to start it; a bad name is a
// usage error.
func TestCLISharedNetwork(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "vnet")
	bin := smolvmmBin(t)
	socket := filepath.Join(testsock.Dir(t), "n.sock")
	d := startNetDaemon(t, socket)
	out, err := exec.Command(bin, "run", "-k", kernel, "-m", "32", "--net", "user:"+socket, "--mac", "52:54:00:aa:bb:cc").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("run: %v (want debug-exit status 1)\n%s", err, out)
	}
	for _, want := range []string{"vnet: arp reply 10.0.2.2 is at 5a:94:ef:e4:0c:dd", "vnet: ok"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	d.expect(t, "VM 52:54:00:aa:bb:cc joined as 10.0.2.15")
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		t.Errorf("smolvmm net on SIGTERM: %v, want status 0", err)
	}
	if _, err := os.Stat(socket); err == nil {
		t.Errorf("the socket %s is still there after smolvmm net stopped", socket)
	}

	tests := []struct {
		net, want string
		status    int
	}{
		{"user:" + socket, "shared network is not running: nothing answers on " + socket, 1},
		{"user:" + socket, "start it with: smolvmm net --socket " + socket, 1},
		{"user:nosuchnet", "start it with: smolvmm net --name nosuchnet", 1},
		{"user:bad name", "bad shared network name", 2},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "run", "-k", kernel, "-m", "32", "--net", tt.net)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != tt.status || !strings.Contains(stderr.String(), tt.want) || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
			t.Errorf("--net %s: %v, stderr %q; want status %d and one line with %q", tt.net, err, stderr.String(), tt.status, tt.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("--net %s: the guest ran: %q", tt.net, stdout.String())
		}
	}
}

// consoleLine is a line of a VM's console, without "\r\n", and when the
// test read it.
type consoleLine struct {
	text string
	at   time.Time
}

// vmRun is a running "smolvmm run" whose console lines arrive on lines.
type vmRun struct {
	cmd    *exec.Cmd
	lines  chan consoleLine
	out    strings.Builder // the console; read after done
	stderr bytes.Buffer
	done   chan struct{} // closed once the VM ended and out is complete
	err    error         // cmd.Wait's, set before done
}

func startVM(tb testing.TB, args ...string) *vmRun {
	tb.Helper()
	v := &vmRun{cmd: exec.Command(smolvmmBin(tb), append([]string{"run"}, args...)...),
		lines: make(chan consoleLine, 1000), done: make(chan struct{})}
	v.cmd.Stderr = &v.stderr
	stdout, err := v.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := v.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		defer close(v.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := consoleLine{strings.TrimSuffix(sc.Text(), "\r"), time.Now()}
			v.out.WriteString(l.text + "\n")
			select {
			case v.lines <- l:
			default: // nobody reads that far: out has it
			}
		}
		close(v.lines)
		v.err = v.cmd.Wait()
	}()
	tb.Cleanup(func() { v.cmd.Process.Kill(); <-v.done })
	return v
}

// expect waits for a console line starting with prefix.
func (v *vmRun) expect(tb testing.TB, prefix string) consoleLine {
	tb.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case l, ok := <-v.lines:
			if !ok {
				<-v.done
				tb.Fatalf("the VM ended (%v) before printing %q:\n%s%s", v.err, prefix, v.out.String(), v.stderr.String())
			}
			if strings.HasPrefix(l.text, prefix) {
				return l
			}
		case <-timeout:
			tb.Fatalf("the VM did not print %q", prefix)
		}
	}
}

// wait waits for the VM to end and returns its exit status and console.
func (v *vmRun) wait(tb testing.TB) (int, string) {
	tb.Helper()
	select {
	case <-v.done:
	case <-time.After(2 * time.Minute):
		tb.Fatal("the VM did not end")
	}
	var ee *exec.ExitError
	if v.err != nil && !errors.As(v.err, &ee) {
		tb.Fatalf("VM: %v", v.err)
	}
	return v.cmd.ProcessState.ExitCode(), v.out.String()
}

// tcpPair runs the vtcp guest as a listener and a sender of size bytes on
// the shared networks at socket (listener) and peerSocket (sender), the
// sender aimed at the address the listener printed, with extra words for
// both. It returns both VMs, running, and the listener's address.
func tcpPair(tb testing.TB, socket, peerSocket string, size int, extra string) (listener, sender *vmRun, addr string) {
	tb.Helper()
	kernel := guests.ForTest(tb, "vtcp")
	listener = startVM(tb, "-k", kernel, "-m", "32", "--net", "user:"+socket, "--mac", "52:54:00:7c:00:01",
		"-a", fmt.Sprintf("listen port=5000 bytes=%d %s", size, extra))
	l := listener.expect(tb, "vtcp: listening on ")
	addr, _, _ = strings.Cut(strings.TrimPrefix(l.text, "vtcp: listening on "), ":")
	sender = startVM(tb, "-k", kernel, "-m", "32", "--net", "user:"+peerSocket, "--mac", "52:54:00:7c:00:02",
		"-a", fmt.Sprintf("send peer=%s port=5000 bytes=%d %s", addr, size, extra))
	return listener, sender, addr
}

// TestCLISharedNetworkTCP: two VMs on one "smolvmm net", each running the
// vtcp guest (a TCP of its own over virtio-net, proven against QEMU's user
// network by guests.TestQEMUVtcp), exchange a TCP stream: both take their
// address by DHCP from the hub, the sender reaches the listener by the
// address the listener printed, and 32 KiB arrive checked byte for byte,
// every checksum good. With the sender on another network, nothing
// answers at that address and both fail.
func TestCLISharedNetworkTCP(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	const size = 32 << 10
	dir := testsock.Dir(t)
	socket := filepath.Join(dir, "n.sock")
	d := startNetDaemon(t, socket)

	listener, sender, addr := tcpPair(t, socket, socket, size, "")
	lStatus, lOut := listener.wait(t)
	sStatus, sOut := sender.wait(t)
	if lStatus != 1 || sStatus != 1 {
		t.Fatalf("exit statuses: listener %d, sender %d; want 1 (debug-exit 0) for both\nlistener:\n%s%s\nsender:\n%s%s",
			lStatus, sStatus, lOut, listener.stderr.String(), sOut, sender.stderr.String())
	}
	// The addresses the guests took by DHCP are the hub's leases.
	var lAddr, sAddr string
	for _, vm := range []struct {
		mac, out string
		addr     *string
	}{{"52:54:00:7c:00:01", lOut, &lAddr}, {"52:54:00:7c:00:02", sOut, &sAddr}} {
		l := d.expect(t, "VM "+vm.mac+" joined as ")
		*vm.addr = strings.Fields(l[strings.Index(l, " joined as ")+len(" joined as "):])[0]
		want := "vtcp: address " + *vm.addr + " mask 255.255.255.0 router 10.0.2.2 from dhcp server 10.0.2.2\n"
		if !strings.Contains(vm.out, want) {
			t.Errorf("VM %s did not print %q:\n%s", vm.mac, want, vm.out)
		}
	}
	if lAddr != addr || sAddr == lAddr {
		t.Errorf("listener at %s (printed %s), sender at %s: want the listener's lease, and two addresses", lAddr, addr, sAddr)
	}
	for _, want := range []string{
		"vtcp: " + lAddr + " is at 52:54:00:7c:00:01\n",
		"vtcp: connected to " + lAddr + ":5000 mss 1460 window 11680\n",
		fmt.Sprintf("vtcp: sent %d bytes, ", size),
		"vtcp: closed\n",
	} {
		if !strings.Contains(sOut, want) {
			t.Errorf("the sender did not print %q:\n%s", want, sOut)
		}
	}
	for _, want := range []string{
		"vtcp: connection from " + sAddr + ":40000 established\n",
		fmt.Sprintf("vtcp: received %d bytes ok\n", size),
		", bad checksums 0\n",
		"vtcp: closed\n",
	} {
		if !strings.Contains(lOut, want) {
			t.Errorf("the listener did not print %q:\n%s", want, lOut)
		}
	}

	// The same pair, the sender on a network of its own: its ARP for the
	// listener's address reaches nobody.
	other := filepath.Join(dir, "o.sock")
	startNetDaemon(t, other)
	listener, sender, _ = tcpPair(t, socket, other, size, "timeout=3")
	sStatus, sOut = sender.wait(t)
	lStatus, lOut = listener.wait(t)
	if want := "FAIL: vtcp: no ARP reply for " + addr + "\n"; sStatus != 3 || !strings.Contains(sOut, want) {
		t.Errorf("sender on another network: status %d, want 3 and %q:\n%s", sStatus, want, sOut)
	}
	if want := "FAIL: vtcp: no connection\n"; lStatus != 3 || !strings.Contains(lOut, want) {
		t.Errorf("listener with its sender on another network: status %d, want 3 and %q:\n%s", lStatus, want, lOut)
	}
}

// TestCLISharedNetworkTCPChecksums: the vtcp listener drops and counts
// segments whose IPv4 or TCP checksum is wrong, and a bad byte under a
// good checksum fails it. The sender is the test itself, joined to the
// hub as a VM, so that the bad segments are made on purpose.
func TestCLISharedNetworkTCPChecksums(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "vtcp")
	socket := filepath.Join(testsock.Dir(t), "n.sock")
	startNetDaemon(t, socket)
	const mss = 1460
	stream := guests.VtcpStream(2 * mss)
	guestMAC, _ := net.ParseMAC("52:54:00:7c:00:05")
	tests := []struct {
		name string
		// bad is sent before the first segment as it should be.
		bad        []func(f []byte)
		want       []string
		wantStatus int
	}{
		{"checksums", []func(f []byte){
			func(f []byte) { f[len(f)-1] ^= 1 },    // a payload bit: the TCP checksum
			func(f []byte) { f[14+10] ^= 1 },       // the IPv4 header checksum
			func(f []byte) { f[14+20+16] ^= 0x80 }, // the TCP checksum itself
			func(f []byte) { f[14+20+4] ^= 1 },     // the sequence number
		}, []string{"vtcp: received 2920 bytes ok\n", "vtcp: segments 2, out of order 0, bad checksums 4\n", "vtcp: closed\n"}, 1},
		{"bad byte, good checksum", nil, []string{"FAIL: vtcp: stream byte 100 is 0x65, want 0x64\n"}, 3},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := startVM(t, "-k", kernel, "-m", "32", "--net", "user:"+socket, "--mac", guestMAC.String(),
				"-a", fmt.Sprintf("listen port=5000 bytes=%d timeout=10", len(stream)))
			addr, err := netip.ParseAddr(strings.Split(strings.TrimPrefix(vm.expect(t, "vtcp: listening on ").text, "vtcp: listening on "), ":")[0])
			if err != nil {
				t.Fatal(err)
			}
			p := joinTCPPeer(t, socket, fmt.Sprintf("52:54:00:7c:01:%02x", i), guestMAC, addr)
			p.send(t, 0x02, nil) // SYN
			synack := p.expect(t, 0x12)
			p.ack = synack.seq + 1
			p.seq++
			p.send(t, 0x10, nil)
			data := stream[:mss]
			if tt.bad == nil {
				data = bytes.Clone(data)
				data[100]++
			}
			for _, corrupt := range tt.bad {
				f := p.frame(0x18, data)
				corrupt(f)
				p.write(t, f)
			}
			p.send(t, 0x18, data)
			if tt.wantStatus == 1 {
				p.seq += mss
				p.expectAck(t, p.seq)
				p.send(t, 0x18, stream[mss:])
				p.seq += mss
				p.expectAck(t, p.seq)
				p.send(t, 0x11, nil) // FIN
				p.seq++
				fin := p.expect(t, 0x11)
				p.ack = fin.seq + 1
				p.send(t, 0x10, nil)
			}
			status, out := vm.wait(t)
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("the guest did not print %q", want)
				}
			}
			if status != tt.wantStatus || t.Failed() {
				t.Fatalf("status %d, want %d:\n%s", status, tt.wantStatus, out)
			}
		})
	}
}

// tcpPeer is a test-made TCP endpoint on a shared network: a joined VM
// that writes its frames by hand.
type tcpPeer struct {
	j            *netback.Joined
	mac, peerMAC net.HardwareAddr
	addr, peer   netip.Addr
	seq, ack     uint32
	frames       chan []byte
	sport, dport uint16
}

func joinTCPPeer(t *testing.T, socket, mac string, peerMAC net.HardwareAddr, peer netip.Addr) *tcpPeer {
	t.Helper()
	hw, _ := net.ParseMAC(mac)
	j, err := netback.Join(socket, hw, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpPeer{j: j, mac: hw, peerMAC: peerMAC, addr: j.Addr(), peer: peer, seq: 7000, frames: make(chan []byte, 100), sport: 40001, dport: 5000}
	go func() {
		defer close(p.frames)
		for {
			buf := make([]byte, 2048)
			n, err := j.ReadFrame(buf)
			if err != nil {
				return
			}
			p.frames <- buf[:n]
		}
	}()
	t.Cleanup(func() { j.Close() })
	return p
}

// checksum is the Internet checksum of b, folded, not complemented.
func checksum(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return sum
}

// frame builds an Ethernet frame with a TCP segment from p.seq.
func (p *tcpPeer) frame(flags byte, payload []byte) []byte {
	f := make([]byte, 14+20+20+len(payload))
	copy(f, p.peerMAC)
	copy(f[6:], p.mac)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(40+len(payload)))
	ip[8], ip[9] = 64, 6
	copy(ip[12:], p.addr.AsSlice())
	copy(ip[16:], p.peer.AsSlice())
	binary.BigEndian.PutUint16(ip[10:], ^uint16(checksum(0, ip[:20])))
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp, p.sport)
	binary.BigEndian.PutUint16(tcp[2:], p.dport)
	binary.BigEndian.PutUint32(tcp[4:], p.seq)
	binary.BigEndian.PutUint32(tcp[8:], p.ack)
	tcp[12], tcp[13] = 5<<4, flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	copy(tcp[20:], payload)
	pseudo := append(append(append([]byte{}, ip[12:20]...), 0, 6), byte(len(tcp)>>8), byte(len(tcp)))
	binary.BigEndian.PutUint16(tcp[16:], ^uint16(checksum(checksum(0, pseudo), tcp)))
	return f
}

func (p *tcpPeer) write(t *testing.T, f []byte) {
	t.Helper()
	if err := p.j.WriteFrame(f); err != nil {
		t.Fatal(err)
	}
}

func (p *tcpPeer) send(t *testing.T, flags byte, payload []byte) {
	t.Helper()
	p.write(t, p.frame(flags, payload))
}

// tcpSeen is a segment the peer received.
type tcpSeen struct {
	seq, ack uint32
	flags    byte
}

// expect waits for a segment from the guest with exactly these flags.
func (p *tcpPeer) expect(t *testing.T, flags byte) tcpSeen {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case f, ok := <-p.frames:
			if !ok {
				t.Fatal("the shared network closed")
			}
			if len(f) < 54 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[14+9] != 6 {
				continue
			}
			tcp := f[14+int(f[14]&15)*4:]
			s := tcpSeen{binary.BigEndian.Uint32(tcp[4:]), binary.BigEndian.Uint32(tcp[8:]), tcp[13]}
			if s.flags == flags {
				return s
			}
		case <-timeout:
			t.Fatalf("no segment with flags %#x from the guest", flags)
		}
	}
}

// expectAck waits for the guest's ACK of everything before seq.
func (p *tcpPeer) expectAck(t *testing.T, seq uint32) {
	t.Helper()
	for {
		if s := p.expect(t, 0x10); s.ack == seq {
			return
		}
	}
}

// TestCLIUserNetworkTCP runs the vtcp guest against gVisor's TCP, on the
// default user network and on a shared one, with a Go peer on the host:
// the sender through the gateway's NAT to a host listener, the listener
// behind a -p forward. The stream is checked at both ends.
func TestCLIUserNetworkTCP(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "vtcp")
	const size = 20000
	stream := guests.VtcpStream(size)
	socket := filepath.Join(testsock.Dir(t), "n.sock")
	startNetDaemon(t, socket)
	for _, network := range []string{"user", "user:" + socket} {
		t.Run(network+"/send", func(t *testing.T) {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := guests.ReadOneConnection(ln)
			port := ln.Addr().(*net.TCPAddr).Port
			vm := startVM(t, "-k", kernel, "-m", "32", "--net", network, "--mac", "52:54:00:7c:00:03",
				"-a", fmt.Sprintf("send peer=10.0.2.2 port=%d bytes=%d", port, size))
			status, out := vm.wait(t)
			for _, want := range []string{fmt.Sprintf("vtcp: connected to 10.0.2.2:%d mss 1460 ", port),
				fmt.Sprintf("vtcp: sent %d bytes, ", size), "vtcp: closed\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("the guest did not print %q", want)
				}
			}
			if status != 1 || t.Failed() {
				t.Fatalf("status %d, want 1:\n%s%s", status, out, vm.stderr.String())
			}
			ln.Close()
			if b := <-got; !bytes.Equal(b, stream) {
				t.Errorf("the host listener got %d bytes, not the %d of the stream", len(b), size)
			}
		})
		t.Run(network+"/listen", func(t *testing.T) {
			// Below the ephemeral range: a closed port-0 listener's
			// port could be taken by another process's connection
			// before the forward listened on it.
			hostPort := testsock.Port(t)
			vm := startVM(t, "-k", kernel, "-m", "32", "--net", network, "--mac", "52:54:00:7c:00:04",
				"-p", fmt.Sprintf("%d:5000", hostPort), "-a", fmt.Sprintf("listen port=5000 bytes=%d", size))
			vm.expect(t, "vtcp: listening on ")
			c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", hostPort), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Minute))
			if _, err := c.Write(stream); err != nil {
				t.Fatal(err)
			}
			c.(*net.TCPConn).CloseWrite()
			// The guest's FIN after ours; it sends no data.
			if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
				t.Errorf("reading from the guest: %d bytes, %v; want its FIN alone", len(b), err)
			}
			status, out := vm.wait(t)
			for _, want := range []string{"vtcp: connection from 10.0.2.2:", fmt.Sprintf("vtcp: received %d bytes ok\n", size),
				", bad checksums 0\n", "vtcp: closed\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("the guest did not print %q", want)
				}
			}
			if status != 1 || t.Failed() {
				t.Fatalf("status %d, want 1:\n%s%s", status, out, vm.stderr.String())
			}
		})
	}
}

// TestCLISharedNetworkDaemonKilled: a VM whose network daemon is killed
// keeps running, reconnects under its seccomp filter when a new daemon
// starts, and still stops normally.
func TestCLISharedNetworkDaemonKilled(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := spinKernel(t)
	dir := testsock.Dir(t)
	socket := filepath.Join(dir, "n.sock")
	d := startNetDaemon(t, socket)
	vm := exec.Command(smolvmmBin(t), "run", "-k", kernel, "-m", "16", "--net", "user:"+socket, "--mac", "52:54:00:aa:bb:01", "-v")
	pipe, err := vm.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Start(); err != nil {
		t.Fatal(err)
	}
	defer vm.Process.Kill()
	// The filter is on before the daemon dies, so the VM reconnects
	// under it.
	var stderr strings.Builder
	filterOn := make(chan bool, 1)
	vmDone := make(chan struct{})
	go func() {
		defer close(vmDone)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "seccomp filter of") {
				filterOn <- true
			}
		}
		filterOn <- false
	}()
	d.expect(t, "VM 52:54:00:aa:bb:01 joined as 10.0.2.15")
	if !<-filterOn {
		t.Fatal("the VM did not report its seccomp filter")
	}
	d.cmd.Process.Kill()
	d.cmd.Wait()
	d2 := startNetDaemon(t, socket)
	d2.expect(t, "VM 52:54:00:aa:bb:01 joined as 10.0.2.15")
	vm.Process.Signal(syscall.SIGTERM)
	<-vmDone
	err = vm.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("VM: %v, want status 130 after running under its seccomp filter; stderr:\n%s", err, stderr.String())
	}
}

// TestBenchParallelSharedNetwork: bench --parallel on a shared network
// gives each VM its own MAC (a shared one would be refused), from --mac
// up, so that a bench started while another one's VMs (here: a VM of the
// test's, with the first of the default MACs) are joined runs beside them
// (it was refused with --mac, and collided without); the network's memory
// is shared out among every VM joined to it, not only the bench's.
func TestBenchParallelSharedNetwork(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	socket := filepath.Join(testsock.Dir(t), "n.sock")
	d := startNetDaemon(t, socket)
	other, err := netback.Join(socket, net.HardwareAddr{0x52, 0x54, 0x00, 0x5b, 0x00, 0x00}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	d.expect(t, "VM 52:54:00:5b:00:00 joined")
	js := filepath.Join(t.TempDir(), "p.json")
	status, stdout, stderr := benchRun(t, nil, "--parallel", "3", "--net", "user:"+socket, "--mac", "52:54:00:5c:00:ff", "--json", js)
	if status != 0 || !strings.Contains(stdout, "started 3, failed 0") {
		t.Fatalf("status %d\n%s\n%s", status, stdout, stderr)
	}
	// The network's own memory, read while the VMs were connected.
	res := readParallelJSON(t, js)
	nm := res.NetworkMemory
	if nm == nil || nm.PID != d.cmd.Process.Pid || nm.RSSKiB <= 0 || nm.PSSKiB <= 0 || nm.VMs != 4 || nm.PSSKiBPerVM != float64(nm.PSSKiB)/4 || res.Config.Net != "user:"+socket {
		t.Errorf("network memory %+v (%s), config net %q; want the daemon's (pid %d), shared by 4 VMs", nm, res.NetworkMemoryError, res.Config.Net, d.cmd.Process.Pid)
	}
	if want := fmt.Sprintf("shared network user:%s (process %d): RSS ", socket, d.cmd.Process.Pid); !strings.Contains(stdout, want) || !strings.Contains(stdout, "per joined VM (4 joined)") {
		t.Errorf("stdout lacks %q and the 4 joined VMs:\n%s", want, stdout)
	}
	joined := map[string]bool{}
	for range 3 {
		l := d.expect(t, " joined as ")
		joined[strings.Fields(l[strings.Index(l, "VM "):])[1]] = true
	}
	for _, mac := range []string{"52:54:00:5c:00:ff", "52:54:00:5c:01:00", "52:54:00:5c:01:01"} {
		if !joined[mac] {
			t.Errorf("no VM joined with MAC %s; joined: %v", mac, joined)
		}
	}
}

// TestNetCommandErrors: smolvmm net's mistakes are one line each, usage
// errors with status 2; a socket path taken by a file or by a running
// network is refused with status 1.
func TestNetCommandErrors(t *testing.T) {
	dir := testsock.Dir(t)
	file := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live.sock")
	startNetDaemon(t, live)
	link := filepath.Join(dir, "link.leases")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"--name", "a/b"}, 2, `--name: bad shared network name "a/b"`},
		{[]string{"--name", "x", "--socket", filepath.Join(dir, "y.sock")}, 2, "give --name or --socket, not both"},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		// Before, it started and never saved its leases. A lease file
		// that cannot be written is a file's problem, status 1, as for
		// --socket and --leases /dev/full (it was 2).
		{[]string{"--socket", filepath.Join(dir, "l.sock"), "--leases", filepath.Join(dir, "missing", "x")}, 1,
			"--leases " + filepath.Join(dir, "missing", "x") + ": no directory " + filepath.Join(dir, "missing")},
		{[]string{"--socket", filepath.Join(dir, "l.sock"), "--leases", filepath.Join(file, "x")}, 1, "no directory " + file},
		{[]string{"--socket", filepath.Join(dir, "l.sock"), "--leases", dir}, 1, "that is a directory"},
		{[]string{"--socket", filepath.Join(dir, "l.sock"), "--leases", "/dev/full"}, 1, "/dev/full is a character device"},
		{[]string{"--socket", filepath.Join(dir, "g.sock"), "--group", "no-such-group-here"}, 2, "--group no-such-group-here: no such group"},
		{[]string{"--socket", filepath.Join(dir, "g.sock"), "--group", "0"}, 2, "--group 0: give the group of the VMs' users, not root's"},
		// They said "exists and is not a socket", with no way out.
		{[]string{"--socket", file}, 1, "--socket " + file + " is a regular file, not a socket: give a path where no file is (the network makes its socket there)"},
		{[]string{"--socket", dir}, 1, "--socket " + dir + " is a directory, not a socket: give a path where no file is, e.g. " + filepath.Join(dir, "net.sock")},
		// Status 1 and no advice before.
		{[]string{"--socket", filepath.Join(dir, strings.Repeat("s", netback.MaxSocketPath))}, 2,
			fmt.Sprintf("--socket %s is %d bytes long; a Unix socket's path has at most %d: give a shorter one", filepath.Join(dir, strings.Repeat("s", netback.MaxSocketPath)), len(dir)+1+netback.MaxSocketPath, netback.MaxSocketPath)},
		// Before, it made the directories.
		{[]string{"--socket", filepath.Join(dir, "nonexist", "dir", "x.sock")}, 1,
			"--socket " + filepath.Join(dir, "nonexist", "dir", "x.sock") + ": no directory " + filepath.Join(dir, "nonexist", "dir") + " to listen in"},
		{[]string{"--socket", live}, 1, "already running on this socket (stop it first, or give another --name or --socket)"},
		// Before, a network ran on another's lease file, and each
		// overwrote the other's leases.
		{[]string{"--socket", filepath.Join(dir, "second.sock"), "--leases", netback.HubLeases(live)}, 1,
			"lease file in use by another network: its lock " + netback.HubLeases(live) + ".lock is held by process "},
		{[]string{"--socket", filepath.Join(dir, "second.sock"), "--leases", netback.HubLeases(live)}, 1,
			"(two networks would overwrite each other's leases: stop that one, or give this one another --leases)"},
		// Before, the first save replaced the file the link named.
		{[]string{"--socket", filepath.Join(dir, "l.sock"), "--leases", link}, 1,
			"lease file " + link + ": lease file not safe from other users: it is a symbolic link, which the network does not follow"},
		{[]string{"--socket", filepath.Join(dir, "l.sock"), "--leases", link}, 1, "(give --leases a file of your own, not a symlink"},
	}
	defer func() {
		if _, err := os.Stat(filepath.Join(dir, "nonexist")); err == nil {
			t.Errorf("smolvmm net made the missing directory of its --socket")
		}
		// A refused --group (a mistake, status 2) makes no start lock.
		if _, err := os.Stat(filepath.Join(dir, "g.sock.lock")); err == nil {
			t.Errorf("smolvmm net refused its --group but made g.sock.lock")
		}
	}()
	for _, tt := range tests {
		// Each is refused at start; one that starts instead runs until
		// killed: a failure, not a hang of the test.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, smolvmmBin(t), append([]string{"net"}, tt.args...)...).CombinedOutput()
		cancel()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != tt.status || !strings.Contains(string(out), tt.want) || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("net %q: %v, output %q; want status %d and one line with %q", tt.args, err, out, tt.status, tt.want)
		}
	}
}

// TestCLISharedNetworkPortTaken: a VM whose -p host port another program
// took while its network daemon was away is refused when it reconnects,
// and stops with the refusal (status 1) rather than running on unplugged.
func TestCLISharedNetworkPortTaken(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := spinKernel(t)
	socket := filepath.Join(testsock.Dir(t), "n.sock")
	d := startNetDaemon(t, socket)
	port := testsock.Port(t) // below the ephemeral range: free until -p listens
	vm := exec.Command(smolvmmBin(t), "run", "-k", kernel, "-m", "16", "--net", "user:"+socket, "--mac", "52:54:00:aa:bb:02", "-p", fmt.Sprintf("%d:80", port))
	var stderr bytes.Buffer
	vm.Stderr = &stderr
	if err := vm.Start(); err != nil {
		t.Fatal(err)
	}
	defer vm.Process.Kill()
	d.expect(t, "VM 52:54:00:aa:bb:02 joined as 10.0.2.15")
	d.cmd.Process.Kill()
	d.cmd.Wait()
	taken, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	d2 := startNetDaemon(t, socket)
	d2.expect(t, "refused a VM: port forward refused")
	done := make(chan error, 1)
	go func() { done <- vm.Wait() }()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the VM runs on after its network refused it for good")
	}
	want := fmt.Sprintf("127.0.0.1:%d:80: the host port is already in use", port)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), want) {
		t.Fatalf("VM: %v, stderr %q; want status 1 and %q", err, stderr.String(), want)
	}
}

// TestNetGroup: with --group the socket is that group's, mode 0660, so
// that its members' VMs can join; without, the owner's only (0600).
func TestNetGroup(t *testing.T) {
	gid := os.Getgid()
	if os.Geteuid() == 0 {
		gid = 4242 // root may give any group
	}
	if gid == 0 {
		t.Skip("needs a group other than root's")
	}
	for _, args := range [][]string{nil, {"--group", strconv.Itoa(gid)}} {
		socket := filepath.Join(testsock.Dir(t), "n.sock")
		startNetDaemon(t, socket, args...)
		st, err := os.Lstat(socket)
		if err != nil {
			t.Fatal(err)
		}
		mode, g := st.Mode().Perm(), int(st.Sys().(*syscall.Stat_t).Gid)
		if args == nil && mode != 0o600 || args != nil && (mode != 0o660 || g != gid) {
			t.Errorf("net %q: socket mode %v group %d", args, mode, g)
		}
	}
}

// TestNetRelativeSocket: with --socket rel.sock the daemon says to join
// with the socket's absolute path: user:rel.sock is read as a name
// (NAME.sock in the runtime directory), and another directory's VM would
// not find it anyway.
func TestNetRelativeSocket(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ arg, want string }{
		{"rel.sock", filepath.Join(dir, "rel.sock")},
		{"./sub/../dot.sock", filepath.Join(dir, "dot.sock")},
		{filepath.Join(dir, "abs.sock"), filepath.Join(dir, "abs.sock")},
	}
	for _, tt := range tests {
		cmd := exec.Command(smolvmmBin(t), "net", "--socket", tt.arg)
		cmd.Dir = dir
		if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(stderr).ReadString('\n')
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if want := "join with --net user:" + tt.want + "\n"; !strings.HasSuffix(line, want) {
			t.Errorf("net --socket %s: %q, want it to end with %q", tt.arg, line, want)
		}
	}
}

// TestNetStopStatus: smolvmm net is a daemon: stopped by SIGINT or SIGTERM
// (its service manager's stop) it ends with status 0, its socket removed
// (contained, by its broker), unlike run, fetch, up and bench (130: they
// did not finish their work); but not a socket another daemon made there
// since (the daemon's moved away), which it removes neither.
func TestNetStopStatus(t *testing.T) {
	for _, tc := range []struct {
		sig       syscall.Signal
		contained bool
		replaced  bool
	}{
		{syscall.SIGINT, true, false}, {syscall.SIGTERM, true, false}, {syscall.SIGTERM, false, false},
		{syscall.SIGTERM, true, true}, {syscall.SIGTERM, false, true},
	} {
		sig := tc.sig
		t.Run(fmt.Sprintf("%s/contained=%v/replaced=%v", sig, tc.contained, tc.replaced), func(t *testing.T) {
			dir := testsock.Dir(t)
			socket := filepath.Join(dir, "n.sock")
			var args []string
			if !tc.contained {
				args = append(args, "--no-seccomp")
			}
			d := startNetDaemon(t, socket, args...)
			var other net.Listener
			if tc.replaced {
				if err := os.Rename(socket, filepath.Join(dir, "moved.sock")); err != nil {
					t.Fatal(err)
				}
				var err error
				if other, err = net.Listen("unix", socket); err != nil {
					t.Fatal(err)
				}
				defer other.Close()
			}
			d.cmd.Process.Signal(sig)
			// Before Wait, which closes the pipe; the counts it ends with
			// include the NAT's and DNS's refusals.
			d.expect(t, "0 outgoing connections and 0 UDP flows refused at a VM's, its user's or the network's bound, 0 outgoing connections delayed while too many were being dialled or left unanswered by their VM, 0 DNS queries refused while too many were asked, 0 DNS TCP connections refused at a VM's bound")
			if err := d.cmd.Wait(); err != nil {
				t.Errorf("smolvmm net on %v: %v, want status 0", sig, err)
			}
			_, err := os.Stat(socket)
			switch {
			case !tc.replaced && err == nil:
				t.Errorf("the socket is still there")
			case tc.replaced && err != nil:
				t.Errorf("the other socket at %s: %v; want it left", socket, err)
			case tc.replaced:
				if c, err := net.Dial("unix", socket); err != nil {
					t.Errorf("dial the other socket: %v; want it left listening", err)
				} else {
					c.Close()
				}
			}
		})
	}
}

// BenchmarkTwoVMTCP measures a TCP stream between two VMs on one smolvmm
// net (vtcp guests, window=4 segments), from the host side: the time
// between the listener's "established" and "received" lines as they
// arrive on its console, for the stream's bytes; and, side by side, the
// same bytes over host loopback TCP between two goroutines (from the dial
// to the reader's end of stream, the median of 21), the ceiling. This
// machine's KVM emulates the guests' instructions, the guests build,
// checksum and check every byte (15,000 to 21,000 instructions a segment)
// and each spins on a core, so the VMs' figure is bound by the guests and
// the host's two cores, not by the VMMs or the hub: one-vm-send and
// one-vm-listen measure one guest alone against gVisor's TCP (a host peer
// through the network's NAT, and through a -p forward), the bound of a
// pair.
func BenchmarkTwoVMTCP(b *testing.B) {
	if !kvmUsable() {
		b.Skip("needs /dev/kvm")
	}
	for _, size := range []int{32 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("bytes=%d", size), func(b *testing.B) {
			socket := filepath.Join(testsock.Dir(b), "n.sock")
			d := startNetDaemon(b, socket)
			go func() {
				for range d.lines { // its joins and leaves: unread, they would stall it
				}
			}()
			stream := guests.VtcpStream(size)
			var vm, lo time.Duration
			var timeouts, outOfOrder int
			for range b.N {
				listener, sender, _ := tcpPair(b, socket, socket, size, "")
				est := listener.expect(b, "vtcp: connection from ")
				rcv := listener.expect(b, fmt.Sprintf("vtcp: received %d bytes ok", size))
				lStatus, lOut := listener.wait(b)
				sStatus, sOut := sender.wait(b)
				if lStatus != 1 || sStatus != 1 {
					b.Fatalf("exit statuses: listener %d, sender %d\n%s\n%s", lStatus, sStatus, lOut, sOut)
				}
				vm += rcv.at.Sub(est.at)
				// Loopback's ~1 ms is at the scheduler's mercy on a
				// busy machine: the median of several.
				var los []time.Duration
				for range 21 {
					los = append(los, loopbackTCP(b, stream))
				}
				slices.Sort(los)
				lo += los[len(los)/2]
				// Losses and go-backs, which would slow the VMs
				// for reasons other than their own speed.
				var segs, ooo, bad int
				if _, err := fmt.Sscanf(lOut[max(strings.Index(lOut, "vtcp: segments "), 0):], "vtcp: segments %d, out of order %d, bad checksums %d", &segs, &ooo, &bad); err != nil {
					b.Fatalf("listener's summary: %v\n%s", err, lOut)
				}
				timeouts += sentTimeouts(b, sOut)
				outOfOrder += ooo
			}
			b.ReportMetric(float64(timeouts)/float64(b.N), "timeouts/op")
			b.ReportMetric(float64(outOfOrder)/float64(b.N), "out-of-order/op")
			b.ReportMetric(float64(size*b.N)/vm.Seconds()/(1<<20), "vm-MiB/s")
			b.ReportMetric(float64(size*b.N)/lo.Seconds()/(1<<20), "loopback-MiB/s")
		})
	}
	// What one guest alone sends and receives, against gVisor's TCP on
	// the same network and a Go peer on the host: the bound of a pair.
	const size = 256 << 10
	stream := guests.VtcpStream(size)
	b.Run(fmt.Sprintf("one-vm-send/bytes=%d", size), func(b *testing.B) {
		socket := filepath.Join(testsock.Dir(b), "n.sock")
		startNetDaemon(b, socket)
		var vm time.Duration
		timeouts := 0
		for range b.N {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			took := make(chan time.Duration, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					took <- 0
					return
				}
				defer c.Close()
				start := time.Now()
				got, _ := io.ReadAll(c)
				if !bytes.Equal(got, stream) {
					took <- 0
					return
				}
				took <- time.Since(start)
			}()
			v := startVM(b, "-k", guests.ForTest(b, "vtcp"), "-m", "32", "--net", "user:"+socket, "--mac", "52:54:00:7c:00:06",
				"-a", fmt.Sprintf("send peer=10.0.2.2 port=%d bytes=%d", ln.Addr().(*net.TCPAddr).Port, size))
			status, out := v.wait(b)
			ln.Close()
			d := <-took
			if status != 1 || d == 0 {
				b.Fatalf("status %d, stream checked: %v\n%s", status, d != 0, out)
			}
			vm += d
			timeouts += sentTimeouts(b, out)
		}
		b.ReportMetric(float64(timeouts)/float64(b.N), "timeouts/op")
		b.ReportMetric(float64(size*b.N)/vm.Seconds()/(1<<20), "vm-MiB/s")
	})
	b.Run(fmt.Sprintf("one-vm-listen/bytes=%d", size), func(b *testing.B) {
		socket := filepath.Join(testsock.Dir(b), "n.sock")
		startNetDaemon(b, socket)
		var vm time.Duration
		for range b.N {
			port := testsock.Port(b) // as TestCLIUserNetworkTCP's listen
			v := startVM(b, "-k", guests.ForTest(b, "vtcp"), "-m", "32", "--net", "user:"+socket, "--mac", "52:54:00:7c:00:07",
				"-p", fmt.Sprintf("%d:5000", port), "-a", fmt.Sprintf("listen port=5000 bytes=%d", size))
			v.expect(b, "vtcp: listening on ")
			c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				c.Write(stream)
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, c)
				c.Close()
			}()
			est := v.expect(b, "vtcp: connection from ")
			rcv := v.expect(b, fmt.Sprintf("vtcp: received %d bytes ok", size))
			if status, out := v.wait(b); status != 1 {
				b.Fatalf("status %d\n%s", status, out)
			}
			vm += rcv.at.Sub(est.at)
		}
		b.ReportMetric(float64(size*b.N)/vm.Seconds()/(1<<20), "vm-MiB/s")
	})
}

// sentTimeouts reads the go-backs from a vtcp sender's summary line.
func sentTimeouts(b *testing.B, out string) int {
	var n, t int
	i := strings.Index(out, "vtcp: sent ")
	if i < 0 {
		b.Fatalf("no summary from the sender:\n%s", out)
	}
	if _, err := fmt.Sscanf(out[i:], "vtcp: sent %d bytes, %d timeouts", &n, &t); err != nil {
		b.Fatalf("sender's summary: %v\n%s", err, out)
	}
	return t
}

// loopbackTCP sends stream over host loopback TCP and returns the time
// from the dial to the reader's end of stream, the stream checked.
func loopbackTCP(b *testing.B, stream []byte) time.Duration {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		end time.Time
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		got, err := io.ReadAll(c)
		end := time.Now()
		if err == nil && !bytes.Equal(got, stream) {
			err = fmt.Errorf("loopback: %d bytes arrived, not the %d sent", len(got), len(stream))
		}
		done <- result{end, err}
	}()
	start := time.Now()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	_, err = c.Write(stream)
	c.Close()
	r := <-done
	if err != nil || r.err != nil {
		b.Fatal(err, r.err)
	}
	return r.end.Sub(start)
}

// releaseLoop releases after each quiet period in turn once changes
// stop, starting over at the first on a change, not while idle, and
// stops for good when a release fails.
func TestReleaseLoop(t *testing.T) {
	type wait struct {
		d    time.Duration
		fire chan time.Time
	}
	changed := make(chan struct{}, 1)
	waits := make(chan wait) // each quiet period the loop waits for
	after := func(d time.Duration) <-chan time.Time {
		w := wait{d, make(chan time.Time, 1)}
		waits <- w
		return w.fire
	}
	results := make(chan bool)    // what each release returns, given when it runs
	periods := make(chan int, 16) // the quiet period each release ended
	release := func(period int) bool {
		periods <- period
		return <-results
	}
	quiet := []time.Duration{1, 2}
	stop := releaseLoop(changed, quiet, after, release)
	defer stop()
	next := func(want time.Duration) wait {
		t.Helper()
		w := <-waits
		if w.d != want {
			t.Fatalf("waiting %v of quiet; want %v", w.d, want)
		}
		return w
	}
	released := func() bool {
		select {
		case results <- true:
			return true
		default:
			return false
		}
	}
	idle := func(when string) {
		t.Helper()
		select {
		case w := <-waits:
			t.Fatalf("%s: waiting %v of quiet with no change", when, w.d)
		case results <- true:
			t.Fatalf("%s: released with no change", when)
		default:
		}
	}
	idle("at start")
	// A burst: the second change starts the first quiet period over.
	changed <- struct{}{}
	w1 := next(1)
	changed <- struct{}{}
	w2 := next(1) // the change was seen
	w1.fire <- time.Time{}
	if released() {
		t.Fatal("released before the last change was quiet")
	}
	w2.fire <- time.Time{}
	results <- true
	next(2).fire <- time.Time{}
	results <- true
	idle("after both releases")
	// A change in the second period starts over at the first.
	changed <- struct{}{}
	next(1).fire <- time.Time{}
	results <- true
	w := next(2)
	changed <- struct{}{}
	w1 = next(1)
	w.fire <- time.Time{} // the abandoned period's end no longer counts
	if released() {
		t.Fatal("released at the end of a period a change cut short")
	}
	w1.fire <- time.Time{}
	results <- true
	next(2).fire <- time.Time{}
	results <- true
	idle("after the second burst")
	// A failed release ends the loop.
	changed <- struct{}{}
	next(1).fire <- time.Time{}
	results <- false
	changed <- struct{}{}
	stop()
	idle("after a failed release")
	close(periods)
	var got []int
	for p := range periods {
		got = append(got, p)
	}
	if want := []int{0, 1, 0, 0, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("releases ended quiet periods %v, want %v", got, want)
	}
}

// TestNetEmptyLeaseFile: a --leases file made ahead and empty (touch)
// holds no leases; the network starts (it said "unexpected end of JSON
// input (remove it to start afresh)").
func TestNetEmptyLeaseFile(t *testing.T) {
	dir := t.TempDir()
	leases := filepath.Join(dir, "net.leases")
	if err := os.WriteFile(leases, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	startNetDaemon(t, filepath.Join(dir, "net.sock"), "--leases", leases)
}

// The hub serves from NewHub on, before the daemon writes its start
// line, and a VM waiting to rejoin connects at once: what the hub logged
// meanwhile ("refused a VM", "joined") came before "listening on", where
// a reader waiting for that line (the tests' startNetDaemon) missed it.
// It now follows the start line, in order, with the time it happened.
func TestDaemonLogOrder(t *testing.T) {
	tests := []struct {
		name          string
		before, after []string
		want          string
	}{
		{"nothing before the start", nil, []string{"VM a joined"},
			"start\nsmolvmm net: 12:00:00 VM a joined\n"},
		{"lines before the start follow it", []string{"refused a VM: x", "VM b joined"}, []string{"VM b left"},
			"start\nsmolvmm net: 12:00:00 refused a VM: x\nsmolvmm net: 12:00:00 VM b joined\nsmolvmm net: 12:00:00 VM b left\n"},
		// A line with control characters, whoever logs it, stays one
		// line and sends no escape to the terminal.
		{"control characters escaped", nil, []string{"refused a VM: [\nsmolvmm net: 10:59:59 VM c joined\x1b[2J"},
			"start\nsmolvmm net: 12:00:00 refused a VM: [\\nsmolvmm net: 10:59:59 VM c joined\\x1b[2J\n"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		l := &daemonLog{w: &out, now: func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) }}
		var wg sync.WaitGroup
		for _, s := range tt.before {
			// As the hub does: from its own goroutines.
			wg.Add(1)
			go func() { defer wg.Done(); l.logf("%s", s) }()
			wg.Wait()
		}
		l.start("start\n")
		for _, s := range tt.after {
			l.logf("%s", s)
		}
		if out.String() != tt.want {
			t.Errorf("%s: logged %q, want %q", tt.name, out.String(), tt.want)
		}
	}
}

// TestNetUnderNohup: a daemon started with SIGHUP ignored (nohup, or a
// shell's trap) keeps ignoring it: the hangup sent before a SIGTERM does
// not stop it, the SIGTERM does.
func TestNetUnderNohup(t *testing.T) {
	socket := filepath.Join(testsock.Dir(t), "n.sock")
	cmd := exec.Command("sh", "-c", `trap "" HUP; exec "$0" net --socket "$1"`, smolvmmBin(t), socket)
	d := startNetDaemonCmd(t, cmd, socket)
	cmd.Process.Signal(syscall.SIGHUP)
	cmd.Process.Signal(syscall.SIGTERM)
	line := d.expect(t, ": stopped (")
	if !strings.Contains(line, "terminated") || strings.Contains(line, "hangup") {
		t.Errorf("the daemon stopped on %q; want the SIGTERM, the hangup ignored", line)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("daemon: %v, want status 0", err)
	}
}
