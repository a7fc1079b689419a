package imagebuilder_test

import (
	"context"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
)

// TestBuildRcAfterPostinst checks /etc/rc again once the postinst scripts
// have run: a script that removed it, linked it, made it a directory,
// emptied it or rewrote it with CR LF line endings left an image whose
// init has no script to run, and the build succeeded. The error names the
// scripts; one that only dropped its execute bits gets them back.
func TestBuildRcAfterPostinst(t *testing.T) {
	set := rescueSet(t, "tar")
	for _, tc := range []struct {
		name, script string
		want         string // in the error; "" for a build that succeeds
	}{
		{"removed", "rm etc/rc\n", "/etc/rc is missing"},
		{"dangling symlink", "rm etc/rc; ln -s /nonexistent etc/rc\n", "/etc/rc is a symlink to /nonexistent, not a regular file"},
		{"symlink to file", "mv etc/rc etc/rc.real; ln -s rc.real etc/rc\n", "/etc/rc is a symlink to rc.real, not a regular file"},
		{"symlink to a control sequence", "rm etc/rc; ln -s \"$(printf 'x\\033[2Jy')\" etc/rc\n", `/etc/rc is a symlink to "x\x1b[2Jy", not a regular file`},
		{"directory", "rm etc/rc; mkdir etc/rc\n", "/etc/rc is a directory, not a regular file"},
		{"emptied", ": > etc/rc\n", "/etc/rc is empty"},
		{"crlf", `printf '. /etc/include/basicrc\r\nsh\r\n' > etc/rc` + "\n", "/etc/rc has CR LF (DOS) line endings"},
		{"rewritten", "printf 'echo hi\\n' > etc/rc\n", ""},
		{"not executable", "chmod 0600 etc/rc\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := postinstService(t, map[string]string{"10.sh": tc.script})
			cfg := imagebuilder.Config{Sets: []string{set}, Service: loadService(t, "svc", dir), Timestamp: ts}
			tree, err := imagebuilder.BuildTree(context.Background(), &cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				rc, err := tree.Get("etc/rc")
				if err != nil || rc.Perm&0555 != 0555 {
					t.Errorf("etc/rc = %+v, %v: want it readable and executable by all", rc, err)
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
