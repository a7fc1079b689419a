package netback_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

func TestOpen(t *testing.T) {
	fwd, err := netback.ParseForward("udp:0.0.0.0:1:1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		spec     string
		forwards []netback.Forward
		want     string // %T of the backend, or an error substring
	}{
		{spec: "user", want: "*netback.User"},
		{spec: "none", want: "*netback.None"},
		{spec: "tap", want: `network "tap": unknown network: the tap interface is not named`},
		{spec: "user:", want: `network "user:": unknown network: the shared network is not named`},
		{spec: "tap:", want: "tap name \"\""},
		{spec: "tap:a/b", want: "not allowed in an interface name"},
		{spec: "bogus", want: `network "bogus": unknown network`},
		{spec: "user:/nonexistent/x.sock", want: "shared network is not running: nothing answers on /nonexistent/x.sock"},
		{spec: "user:.x", want: "bad shared network name \".x\""},
		{spec: "user:a b", want: "bad shared network name"},
		{spec: "none:x", want: "unknown network"},
		{spec: "", want: "unknown network"},
		{spec: "none", forwards: []netback.Forward{fwd}, want: "need the user network"},
	}
	hub := startHub(t, testsock.Dir(t))
	tests = append(tests, struct {
		spec     string
		forwards []netback.Forward
		want     string
	}{spec: "user:" + hub.Socket(), want: "*netback.Joined"})
	for _, tc := range tests {
		b, err := netback.Open(tc.spec, tc.forwards, guestMAC)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = fmt.Sprintf("%T", b)
			b.Close()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("Open(%q) = %q, want %q", tc.spec, got, tc.want)
		}
		// The library states the fact: what to give is its caller's.
		for _, a := range []string{"as in", "; the networks are", "name the"} {
			if strings.Contains(got, a) {
				t.Errorf("Open(%q) = %q, advises (%q)", tc.spec, got, a)
			}
		}
	}
}
