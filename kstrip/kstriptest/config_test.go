package kstriptest

import (
	"strings"
	"testing"
)

func TestFromConfigErrors(t *testing.T) {
	const defs = "device mainbus: isabus pcibus\nattach mainbus at root\ndevice isa: isa\nattach isa at isabus\ndevice x\nattach x at isabus pcibus\n"
	tests := []struct{ config, msg string }{
		{"mainbus0 at root\nfoo0 at mainbus?\n", "no device foo"},
		{"mainbus0 at root\nx0 at mainbus?\n", "ambiguous"},
		{"isa0 at isabus0\n", "write isabus?"},
		{"isa at mainbus?\n", "has no unit"},
		{"isa0 at mainbus*\n", "foo?"},
		{"isa0 at root\n", "no attachment at root"},
		{"isa0 mainbus?\n", "want: NAME"},
		{"attach isa at\n", "want: attach"},
		{"device mainbus\n", "defined twice"},
		{"attach y at isa with\n", "one name after with"},
	}
	for _, tc := range tests {
		_, _, err := FromConfig(defs + tc.config)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: err = %v, want it to say %q", tc.config, err, tc.msg)
		}
	}
	if _, _, err := FromConfig(I386Generic); err != nil {
		t.Errorf("I386Generic: %v", err)
	}
}
