package imagebuilder_test

import (
	"context"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
)

// TestBuildRcBOMAfterPostinst: an /etc/rc a postinst script wrote with a
// UTF-8 byte order mark was built, and the guest's sh took the mark as
// part of its first command (". /etc/include/basicrc" became no command),
// as service.Validate refuses one in the service itself. The error names
// the scripts; a mark further on in the file is left alone.
func TestBuildRcBOMAfterPostinst(t *testing.T) {
	set := rescueSet(t, "tar")
	for _, tc := range []struct {
		name, script string
		want         string // in the error; "" for a build that succeeds
	}{
		{"byte order mark", `printf '\357\273\277. /etc/include/basicrc\nsh\n' > etc/rc` + "\n",
			"/etc/rc begins with a UTF-8 byte order mark (bytes EF BB BF), which sh would take as part of its first command"},
		{"symlink to a byte order mark", `rm etc/rc; printf '\357\273\277sh\n' > etc/rc.real; ln -s rc.real etc/rc` + "\n",
			"/etc/rc is a symlink to rc.real, which begins with a UTF-8 byte order mark"},
		{"byte order mark further on", `printf 'echo \357\273\277\nsh\n' > etc/rc` + "\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := postinstService(t, map[string]string{"10.sh": tc.script})
			cfg := imagebuilder.Config{Sets: []string{set}, Service: loadService(t, "svc", dir), Timestamp: ts}
			_, err := imagebuilder.BuildTree(context.Background(), &cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("built; want an error with %q", tc.want)
			}
			for _, w := range []string{tc.want, "postinst/10.sh", "no byte order mark"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q: want %q in it", err, w)
				}
			}
		})
	}
}
