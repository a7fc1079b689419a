package main

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/netback"
)

func TestParseNetValues(t *testing.T) {
	tests := []struct {
		spec    string
		publish []string
		mac     string
		seed    string
		err     string // substring; empty for success
		wantMAC string // checked when set
		fwds    int
		noMAC   bool // no card (--net none): no MAC
	}{
		{spec: "user", publish: []string{"8080:80", "udp:5353:53"}, seed: "/vm/a.img", fwds: 2},
		{spec: "user", mac: "52:54:00:01:02:03", wantMAC: "52:54:00:01:02:03"},
		{spec: "none", noMAC: true},
		{spec: "none", seed: "/vm/a.img", noMAC: true},
		{spec: "tap:tap0"},
		{spec: "tap", err: "name the tap interface"},
		{spec: "tap:", err: `--net "tap:": name the tap interface, e.g. --net tap:tap0`},
		{spec: "bridge", err: "unknown network; use user, user:NAME, tap:NAME or none"},
		{spec: "user:x", publish: []string{"8080:80"}, fwds: 1},
		{spec: "user:/run/vms/net.sock"},
		// It said "unknown network", where tap: says what to add.
		{spec: "user:", err: `--net "user:": name the shared network, e.g. --net user:default (smolvmm net's), or give --net user for a NAT of the VM's own`},
		{spec: "user:.hidden", err: "--net user:.hidden: bad shared network name"},
		{spec: "tap:tap0", publish: []string{"8080:80"}, err: "port forwards need the user network"},
		{spec: "none", publish: []string{"8080:80"}, err: "port forwards need the user network"},
		{spec: "user", publish: []string{"8080"}, err: "-p: malformed port forward \"8080\""},
		{spec: "user", mac: "01:02:03:04:05:06", err: "--mac: bad MAC address"},
		// One VM cannot listen twice on a port: it said "the host port
		// is already in use ... stop the program using it" (itself).
		{spec: "user", publish: []string{"18080:80", "18080:81"}, err: "-p 18080:81: host port tcp 18080 given twice (also -p 18080:80)"},
		{spec: "user", publish: []string{"udp:53:53", "0.0.0.0:22:22", "udp:127.0.0.1:53:54"}, err: "host port udp 53 given twice"},
		{spec: "user", publish: []string{"0.0.0.0:22:22", "127.0.0.1:22:2222"}, err: "host port tcp 22 given twice"},
		{spec: "user:x", publish: []string{"[::]:22:22", "22:2222"}, err: "host port tcp 22 given twice"},
		{spec: "user", publish: []string{"18080:80", "udp:18080:80"}, fwds: 2},
		{spec: "user", publish: []string{"127.0.0.1:22:22", "127.0.0.2:22:2222"}, fwds: 2},
		{spec: "user", mac: "nope", err: "--mac: bad MAC address \"nope\""},
		// It was accepted and ignored.
		{spec: "none", mac: "52:54:00:12:34:56", err: "--mac 52:54:00:12:34:56: with --net none the guest has no network card to give it: drop --mac, or use --net user or tap:NAME"},
	}
	for _, tc := range tests {
		cfg, err := parseNetValues(tc.spec, tc.publish, tc.mac, tc.seed)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: err %v, want %q", tc, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", tc, err)
			continue
		}
		wantLen := 6
		if tc.noMAC {
			wantLen = 0
		}
		if len(cfg.Forwards) != tc.fwds || len(cfg.MAC) != wantLen || cfg.Spec != tc.spec {
			t.Errorf("%+v: got %+v", tc, cfg)
		}
		if tc.wantMAC != "" && cfg.MAC.String() != tc.wantMAC {
			t.Errorf("%+v: MAC %s, want %s", tc, cfg.MAC, tc.wantMAC)
		}
	}
	a, _ := parseNetValues("user", nil, "", "/vm/a.img")
	b, _ := parseNetValues("user", nil, "", "/vm/a.img")
	if a.MAC.String() != b.MAC.String() || !strings.HasPrefix(a.MAC.String(), "52:54:00:") {
		t.Errorf("default MAC not stable: %s then %s", a.MAC, b.MAC)
	}
}

// openNIC makes a card on the none backend too, given a MAC (the CLI
// adds no card with --net none, and parseNetValues gives it no MAC).
func TestOpenNICNone(t *testing.T) {
	cfg := netConfig{Spec: "none", MAC: randomMAC()}
	dev, failer, err := openNIC(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if failer != nil {
		t.Error("--net none's backend can fail for good")
	}
	if dev.MAC().String() != cfg.MAC.String() {
		t.Errorf("device MAC %s, want %s", dev.MAC(), cfg.MAC)
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
}

// bench --parallel's VM i gets the base MAC plus i, carried across its
// last two bytes.
func TestParallelMACs(t *testing.T) {
	tests := []struct {
		base string
		i    int
		want string
	}{
		{"52:54:00:5b:00:00", 0, "52:54:00:5b:00:00"},
		{"52:54:00:5b:00:00", 2, "52:54:00:5b:00:02"},
		{"52:54:00:12:00:fe", 1, "52:54:00:12:00:ff"},
		{"52:54:00:12:00:fe", 2, "52:54:00:12:01:00"},
		{"02:aa:bb:cc:ff:00", 255, "02:aa:bb:cc:ff:ff"},
	}
	for _, tt := range tests {
		base, err := net.ParseMAC(tt.base)
		if err != nil {
			t.Fatal(err)
		}
		if got := parallelMACs(base)(tt.i); len(got) != 2 || got[0] != "--mac" || got[1] != tt.want {
			t.Errorf("base %s, VM %d: %q, want --mac %s", tt.base, tt.i, got, tt.want)
		}
	}
}

// A VM that drops root (--user, --uid) tells the shared network it joins
// which uid it will run as, so that the network lets that user, and no
// other, rejoin with the privileged forwards granted to root's join; a VM
// that keeps its user says nothing.
func TestNICConfigRunsAs(t *testing.T) {
	nobody := nobodyUser(t) // contain_test.go
	tests := []struct {
		args []string
		want int
	}{
		{args: []string{"--user", "nobody", "--net", "user:NAME", "-p", "1023:22"}, want: nobody.UID},
		{args: []string{"--uid", "4321", "--gid", "4321", "--net", "user:NAME", "-p", "1023:22"}, want: 4321},
		{args: []string{"--net", "user:NAME", "-p", "1023:22"}, want: 0},
	}
	for _, tt := range tests {
		var got netback.OpenOptions
		var err error
		run := runCommand()
		run.Action = func(c *cli.Context) error {
			var nc netConfig
			nc, err = nicConfig(c, "")
			got = openOptions(nc)
			return nil
		}
		args := slices.Concat([]string{"smolvmm", "run", "-k", "x"}, tt.args)
		if rerr := newApp([]*cli.Command{run}).Run(args); rerr != nil || err != nil {
			t.Fatalf("%q: %v, %v", args, rerr, err)
		}
		if got.RunsAs != tt.want {
			t.Errorf("%q: the join runs as %d, want %d", args, got.RunsAs, tt.want)
		}
	}
}

// failedNIC is a nicFailer that has failed for good already.
type failedNIC struct{ err error }

func (f failedNIC) Failed() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func (f failedNIC) Err() error { return f.err }

// A VM whose shared network refused it for good while its machine was
// made (on a loaded host the network can go and come back before the
// guest runs) says the refusal, as it does once the guest runs; it said
// only "stopped before the guest ran". A stop asked for still says that.
func TestStoppedBeforeRun(t *testing.T) {
	refused := &netback.RefusedError{Socket: "/tmp/n.sock", Reason: netback.RefusedForward,
		Message: "port forward tcp:127.0.0.1:8080:80: the host port is already in use"}
	tests := []struct {
		name   string
		failer nicFailer
		want   string
	}{
		{"network refused the VM", failedNIC{refused}, "the VM stopped: " + refused.Error()},
		{"stop asked for", nil, "stopped before the guest ran"},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithCancelCause(context.Background())
		stop := watchNIC(ctx, cancel, tt.failer)
		if tt.failer == nil {
			cancel(nil) // Ctrl-A x, or a signal
		}
		<-ctx.Done()
		stop()
		err := stoppedBeforeRun(ctx)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
		if tt.failer != nil && !errors.Is(err, netback.ErrRefused) {
			t.Errorf("%s: %v does not wrap the refusal", tt.name, err)
		}
	}
}
