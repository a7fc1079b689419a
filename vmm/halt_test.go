package vmm

import (
	"regexp"
	"testing"
)

func TestConsoleLineWatch(t *testing.T) {
	tests := []struct {
		name   string
		out    string
		halted bool
		ready  bool
	}{
		{"NetBSD halt", "\r\nThe operating system has halted.\r\nPlease press any key to reboot.\r\n\r\n", true, false},
		{"second line alone", "Please press any key to reboot.\r\n", false, false},
		{"first line alone", "The operating system has halted.\r\n", false, false},
		{"ready prompt without newline", "boot...\r\nlogin: ", false, true},
		{"ready pattern split over lines does not match", "log\r\nin: ", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready := false
			m := &Machine{cfg: Config{Ready: regexp.MustCompile(`login: `),
				OnEvent: func(e Event) { ready = ready || e.Phase == PhaseReady }}}
			for _, b := range []byte(tt.out) {
				m.onConsoleByte(b)
			}
			if got := m.exit.Load() != nil && m.exit.Load().Reason == ExitHalted; got != tt.halted {
				t.Errorf("halted = %v, want %v", got, tt.halted)
			}
			if ready != tt.ready {
				t.Errorf("ready = %v, want %v", ready, tt.ready)
			}
		})
	}
}
