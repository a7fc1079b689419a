package imagebuilder_test

import (
	"context"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestBuildRcAfterPostinst checks /etc/rc again once the postinst scripts
// have run: a script that removed it, made it a directory, emptied it,
// rewrote it with CR LF line endings or replaced it with a symlink that
// leads to none of a non-empty LF file in the image left an image whose
// init has no script to run, and the build succeeded. The error names the
// scripts; one that only dropped its execute bits gets them back. A
// symlink to such a file is kept: init runs sh /etc/rc, which the guest's
// kernel follows.
func TestBuildRcAfterPostinst(t *testing.T) {
	set := rescueSet(t, "tar")
	for _, tc := range []struct {
		name, script string
		want         string // in the error; "" for a build that succeeds
		file         string // the file etc/rc leads to, when not etc/rc
	}{
		{"removed", "rm etc/rc\n", "/etc/rc is missing", ""},
		{"dangling symlink", "rm etc/rc; ln -s /nonexistent etc/rc\n", "/etc/rc is a symlink to /nonexistent, which leads to no file in the image (/nonexistent not found)", ""},
		{"symlink loop", "rm etc/rc; ln -s rc etc/rc\n", "/etc/rc is a symlink to rc, which leads to no file in the image (too many symlinks)", ""},
		{"symlink to a control sequence", "rm etc/rc; ln -s \"$(printf 'x\\033[2Jy')\" etc/rc\n", `/etc/rc is a symlink to "x\x1b[2Jy", which leads to no file in the image (/etc/x\x1b[2Jy not found)`, ""},
		{"symlink to a directory", "rm etc/rc; ln -s /etc etc/rc\n", "/etc/rc is a symlink to /etc, which is a directory, not a regular file", ""},
		{"symlink to an empty file", "rm etc/rc; : > etc/rc.real; ln -s rc.real etc/rc\n", "/etc/rc is a symlink to rc.real, which is empty", ""},
		{"symlink to crlf", "rm etc/rc; printf 'sh\\r\\n' > etc/rc.real; ln -s rc.real etc/rc\n", "/etc/rc is a symlink to rc.real, which has CR LF (DOS) line endings", ""},
		{"directory", "rm etc/rc; mkdir etc/rc\n", "/etc/rc is a directory, not a regular file", ""},
		{"emptied", ": > etc/rc\n", "/etc/rc is empty", ""},
		{"crlf", `printf '. /etc/include/basicrc\r\nsh\r\n' > etc/rc` + "\n", "/etc/rc has CR LF (DOS) line endings", ""},
		{"rewritten", "printf 'echo hi\\n' > etc/rc\n", "", ""},
		{"not executable", "chmod 0600 etc/rc\n", "", ""},
		// init runs sh /etc/rc, which the guest's kernel follows.
		{"symlink to file", "mv etc/rc etc/rc.real; chmod 0600 etc/rc.real; ln -s rc.real etc/rc\n", "", "etc/rc.real"},
		{"absolute symlink through a symlink", "mkdir -p usr/pkg/etc; mv etc/rc usr/pkg/etc/rc; ln -s ../usr/pkg/etc/rc etc/rc.pkg; ln -s /etc/rc.pkg etc/rc\n", "", "usr/pkg/etc/rc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := postinstService(t, map[string]string{"10.sh": tc.script})
			cfg := imagebuilder.Config{Sets: []string{set}, Service: loadService(t, "svc", dir), Timestamp: ts}
			tree, err := imagebuilder.BuildTree(context.Background(), &cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				file := "etc/rc"
				if tc.file != "" {
					file = tc.file
				}
				rc, err := tree.Get(file)
				if err != nil || rc.Type != fstree.Regular || rc.Perm&0555 != 0555 {
					t.Errorf("%s = %+v, %v: want a regular file readable and executable by all", file, rc, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("built; want an error with %q", tc.want)
			}
			for _, w := range []string{tc.want, "postinst/10.sh"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q: want %q in it", err, w)
				}
			}
		})
	}
}
