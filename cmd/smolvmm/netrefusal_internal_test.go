package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/netback"
)

// A shared network's refusal is said with what to do about it.
func TestBackendErrorAdvice(t *testing.T) {
	tests := []struct {
		reason netback.Refusal
		want   string
	}{
		{netback.RefusedDuplicateMAC, "(give this VM another --mac)"},
		{netback.RefusedMACOwner, "(give this VM a --mac of its own)"},
		{netback.RefusedUserLimit, "(stop one of your VMs on that network, or start a network of your own for them: smolvmm net --name NAME, then --net user:NAME)"},
	}
	for _, tt := range tests {
		t.Run(tt.reason.String(), func(t *testing.T) {
			refused := &netback.RefusedError{Socket: "/s", Reason: tt.reason, Message: "m"}
			err := backendError("user:/s", refused)
			if !strings.HasSuffix(err.Error(), tt.want) || !errors.Is(err, netback.ErrRefused) {
				t.Errorf("%q, want it to end %q, wrapping the refusal", err, tt.want)
			}
		})
	}
}
