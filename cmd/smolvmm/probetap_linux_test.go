package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
)

// up's probe of --net tap:NAME, before its download, leaves the tap as it
// was: one made down beforehand (ip tuntap add) is not left up when up
// then fails.
func TestProbeNetTapLeavesItDown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a tap device needs root")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skipf("no ip(8) to make a persistent tap: %v", err)
	}
	name := fmt.Sprintf("smolpr%d", os.Getpid()%100000)
	if out, err := exec.Command(ip, "tuntap", "add", name, "mode", "tap").CombinedOutput(); err != nil {
		t.Skipf("ip tuntap add: %v: %s", err, out)
	}
	defer exec.Command(ip, "tuntap", "del", name, "mode", "tap").Run()
	if err := probeNet(netConfig{Spec: "tap:" + name}); err != nil {
		t.Fatalf("probe of a down tap this process may bring up: %v", err)
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if ifi.Flags&net.FlagUp != 0 {
		t.Errorf("tap %s after the probe: %v, want it down as it was", name, ifi.Flags)
	}
}
