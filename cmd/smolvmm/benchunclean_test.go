package main

import (
	"bytes"
	"testing"
)

// TestWarnWritableDisks: each boot bench stops ends without the guest's
// shutdown, so a writable -d image's file systems are left not clean and
// every later boot checks them (basicrc's fsck -p /) within the time
// measured. bench says so once, naming the writable disks and the ,ro
// flags that avoid it; read-only disks alone, or none, say nothing.
func TestWarnWritableDisks(t *testing.T) {
	const tail = " writable: a boot the bench stops (its guest still running a second after it is ready) ends without the guest's shutdown, leaving the file systems it mounted read-write marked not clean, so each later boot checks them (the built-in services run fsck -p /) within the time measured; give "
	for _, tc := range []struct {
		name  string
		disks []string
		want  string
	}{
		{"none", nil, ""},
		{"read-only", []string{"root.img,ro", "data.img,ro,serial=x"}, ""},
		{"writable", []string{"root.img"}, "smolvmm bench: warning: -d root.img is" + tail + "-d root.img,ro for boots that compare\n"},
		{"one of two", []string{"root.img,serial=r", "data.img,ro"}, "smolvmm bench: warning: -d root.img,serial=r is" + tail + "-d root.img,ro,serial=r for boots that compare\n"},
		{"two", []string{"root.img", "my data.img"}, "smolvmm bench: warning: -d root.img, -d my data.img are" + tail + "-d root.img,ro -d 'my data.img,ro' for boots that compare\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w bytes.Buffer
			warnWritableDisks(&w, tc.disks)
			if got := w.String(); got != tc.want {
				t.Errorf("warning:\n%q\nwant:\n%q", got, tc.want)
			}
		})
	}
}
