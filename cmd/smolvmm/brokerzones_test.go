package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/netback"
)

// brokerEtcChild names the test that the test binary runs in a mount
// namespace of its own (inEtcNamespace).
const brokerEtcChild = "SMOLVMM_TEST_BROKER_ETC"

// brokerZonesResolvConf is the resolv.conf the child sees: NetworkManager's
// zoned nameserver on lo (which every host has), one on an interface
// there is none of, one by its index.
const brokerZonesResolvConf = "nameserver fe80::1%lo\nnameserver fe80::2%nosuchif0\nnameserver fe80::3%4\nnameserver 192.0.2.53\n"

// inEtcNamespace reports whether this is the test run again in a mount
// namespace where each of etc's files (/etc/hosts, /etc/resolv.conf,
// which the broker reads and no caller names) has the content given;
// otherwise it runs the test so, as root, and fails when the test fails
// there. The bind mounts follow a symlink at /etc; the namespace's
// propagation is private, the host's /etc untouched.
func inEtcNamespace(t *testing.T, etc map[string]string) bool {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the seccomp filter is linux/amd64's")
	}
	if os.Getenv(brokerEtcChild) == t.Name() {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root, to bind-mount files over /etc's in a mount namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skipf("needs util-linux's unshare: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := ""
	args := []string{"sh"}
	for target, content := range etc {
		src := filepath.Join(dir, filepath.Base(target))
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, src, target)
		script += fmt.Sprintf(`mount --bind "$%d" "$%d" && `, len(args)-2, len(args)-1)
	}
	args = append(args, exe)
	script += fmt.Sprintf(`exec "$%d" -test.run='^%s$' -test.count=1 -test.v`, len(args)-1, t.Name())
	cmd := exec.Command(unshare, append([]string{"--mount", "--propagation", "private", "sh", "-c", script}, args...)...)
	cmd.Env = append(os.Environ(), brokerEtcChild+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("in a mount namespace: %v\n%s", err, out)
	}
	return false
}

// TestBrokerHostFilesZones: a shared network's broker, under its filter,
// answers 'r' with the interface index of each zone resolv.conf's
// nameservers name (read from /sys/class/net: its daemon's filter
// refuses the netlink socket the net package would ask), lo's as the
// net package finds it; a zone naming no interface, or a number, is not
// in it; without the content, no zones.
func TestBrokerHostFilesZones(t *testing.T) {
	if _, err := net.InterfaceByName("lo"); err != nil {
		t.Skipf("no interface lo: %v", err)
	}
	if inEtcNamespace(t, map[string]string{"/etc/resolv.conf": brokerZonesResolvConf}) {
		brokerZonesCheck(t)
	}
}

// TestBrokerHostFilesLong: a shared network's broker sends a hosts file
// of a few MiB, as ad-blocking lists are, whole.
func TestBrokerHostFilesLong(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 3<<20; i++ {
		fmt.Fprintf(&b, "0.0.0.0 ads%d.example.test\n", i)
	}
	hosts := b.String()
	if !inEtcNamespace(t, map[string]string{"/etc/hosts": hosts}) {
		return
	}
	got, err := startTestBroker(t, true).hostFiles(true)
	if err != nil {
		t.Fatalf("hostFiles(true): %v", err)
	}
	if got.Hosts.Cut || string(got.Hosts.Content) != hosts {
		t.Errorf("the hosts file: %d bytes, cut %v; want its %d bytes whole", len(got.Hosts.Content), got.Hosts.Cut, len(hosts))
	}
}

// brokerZonesCheck is TestBrokerHostFilesZones in its mount namespace.
func brokerZonesCheck(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	b := startTestBroker(t, true)
	got, err := b.hostFiles(true)
	if err != nil {
		t.Fatalf("hostFiles(true): %v", err)
	}
	if string(got.ResolvConf.Content) != brokerZonesResolvConf {
		t.Fatalf("resolv.conf as the broker read it: %q, want the test's %q", got.ResolvConf.Content, brokerZonesResolvConf)
	}
	if want := map[string]int{"lo": lo.Index}; fmt.Sprint(got.Zones) != fmt.Sprint(want) {
		t.Errorf("zones %v, want %v", got.Zones, want)
	}
	got, err = b.hostFiles(false)
	if err != nil || got.Zones != nil {
		t.Errorf("hostFiles(false): zones %v, %v; want none", got.Zones, err)
	}
}

// TestParseHostFilesZones: an 'r' answer's zones are read back as laid
// out; too many, a name empty, longer than an interface's or given
// twice, an index of 0, a zone cut short, or zones without the content
// asked for, are refused.
func TestParseHostFilesZones(t *testing.T) {
	files := netback.HostFiles{
		ResolvConf: netback.HostFile{Stamp: netback.HostFileStamp{Present: true, Ino: 3, Size: 26}, Content: []byte("nameserver fe80::1%wlp2s0\n")},
		Zones:      map[string]int{"wlp2s0": 3, "lo": 1},
	}
	data := hostFilesData(files)
	got, err := parseHostFiles(data, true)
	if err != nil || fmt.Sprint(got.Zones) != fmt.Sprint(files.Zones) || string(got.ResolvConf.Content) != string(files.ResolvConf.Content) {
		t.Errorf("parseHostFiles(hostFilesData(%+v)) = %+v, %v", files, got, err)
	}
	if got, err := parseHostFiles(hostFilesData(netback.HostFiles{}), true); err != nil || got.Zones != nil {
		t.Errorf("no zones: %v, %v; want none", got.Zones, err)
	}
	// The zones' part, laid out by hand: after two empty files.
	empty := hostFilesData(netback.HostFiles{})
	files0 := empty[:len(empty)-1]
	zone := func(name string, index byte) []byte {
		return append(append([]byte{byte(len(name))}, name...), index, 0, 0, 0)
	}
	var many []byte
	for i := range netback.MaxHostZones + 1 {
		many = append(many, zone(fmt.Sprintf("if%d", i), 1)...)
	}
	for _, tt := range []struct {
		name  string
		zones []byte
	}{
		{"none given", nil},
		{"too many", append([]byte{netback.MaxHostZones + 1}, many...)},
		{"an empty name", append([]byte{1}, zone("", 1)...)},
		{"a name too long", append([]byte{1}, zone("sixteen-bytes-ab", 1)...)},
		{"a name twice", append(append([]byte{2}, zone("lo", 1)...), zone("lo", 2)...)},
		{"index 0", append([]byte{1}, zone("lo", 0)...)},
		{"cut short", append([]byte{1}, zone("lo", 1)[:5]...)},
		{"fewer than said", append([]byte{2}, zone("lo", 1)...)},
		{"more than said", append(append([]byte{1}, zone("lo", 1)...), zone("eth0", 2)...)},
	} {
		if _, err := parseHostFiles(append(append([]byte(nil), files0...), tt.zones...), true); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	withZones := append(append([]byte(nil), files0...), append([]byte{1}, zone("lo", 1)...)...)
	if _, err := parseHostFiles(withZones, true); err != nil {
		t.Errorf("one zone: %v", err)
	}
	if _, err := parseHostFiles(withZones, false); err == nil {
		t.Error("zones without the content asked for: no error")
	}
}
