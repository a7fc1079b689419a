package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageOutsideService: an image path among what the build of the
// service reads (its etc/, postinst/, service.conf, or the services'
// common/) is refused before any work, links followed: the image was
// copied into the next image, and the guest's writes to it made every up
// rebuild. Elsewhere, in the service's own directory included, it is
// taken.
func TestImageOutsideService(t *testing.T) {
	smolvmmBin(t) // built here, before the test leaves the package's directory
	dir := t.TempDir()
	sd := filepath.Join(dir, "services")
	for _, d := range []string{"web/etc/sub", "web/postinst", "common", "other"} {
		if err := os.MkdirAll(filepath.Join(sd, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(sd, "web/etc/rc"), []byte("echo hi\n"), 0o644)
	os.WriteFile(filepath.Join(sd, "web/service.conf"), []byte("sets=rescue\n"), 0o644)
	// A link to the service's etc/, and one to an image in common/.
	os.Symlink(filepath.Join(sd, "web/etc"), filepath.Join(dir, "etclink"))
	os.Symlink(filepath.Join(sd, "common/x.img"), filepath.Join(dir, "img.link"))
	// A services directory reached through a link.
	os.Symlink(sd, filepath.Join(dir, "sdlink"))
	tests := []struct {
		name, image, sdir, service string
		refused                    string // the input named, "" when taken
	}{
		{"in etc/", filepath.Join(sd, "web/etc/web.img"), sd, "web", "web/etc"},
		{"in a directory under etc/", filepath.Join(sd, "web/etc/sub/web.img"), sd, "web", "web/etc"},
		{"in postinst/", filepath.Join(sd, "web/postinst/web.img"), sd, "web", "web/postinst"},
		{"service.conf", filepath.Join(sd, "web/service.conf"), sd, "web", "web/service.conf"},
		{"in common/", filepath.Join(sd, "common/web.img"), sd, "web", "common"},
		{"through a linked directory", filepath.Join(dir, "etclink/web.img"), sd, "web", "web/etc"},
		{"a link to a file in common/", filepath.Join(dir, "img.link"), sd, "web", "common"},
		{"services directory through a link", filepath.Join(sd, "web/etc/web.img"), filepath.Join(dir, "sdlink"), "web", "web/etc"},
		{"relative", "services/web/etc/web.img", "services", "web", "web/etc"},
		{"in the service's directory", filepath.Join(sd, "web/web.img"), sd, "web", ""},
		{"beside etc/", filepath.Join(sd, "web/etcetera.img"), sd, "web", ""},
		{"in another service", filepath.Join(sd, "other/web.img"), sd, "web", ""},
		{"an embedded service", filepath.Join(sd, "common/rescue.img"), sd, "rescue", ""},
		{"no service directory", filepath.Join(sd, "common/web.img"), "", "web", ""},
	}
	t.Chdir(dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkImageOutsideService(tt.image, tt.sdir, tt.service)
			switch {
			case tt.refused == "" && err != nil:
				t.Errorf("%v, want the image taken", err)
			case tt.refused != "" && (err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "image "+tt.image+" is in ") ||
				!strings.Contains(err.Error(), tt.refused+", which the build of service "+tt.service+" reads: the image would be copied into itself")):
				t.Errorf("%v, want status 2 and the image refused as in %s", err, tt.refused)
			}
		})
	}

	// The commands refuse it before any work, up before the download.
	img := filepath.Join(sd, "web/etc/web.img")
	for _, args := range [][]string{
		{"mkimg", "--service-dir", sd, "-s", "web", "-i", img},
		{"up", "--cache", filepath.Join(dir, "cache"), "--mirror", "http://127.0.0.1:1/", "--service-dir", sd, "-i", img, "web"},
	} {
		_, stderr, status := runCLIIn(t, dir, args...)
		if want := "smolvmm " + args[0] + ": image " + img + " is in " + filepath.Join(sd, "web/etc") + ", which the build of service web reads: the image would be copied into itself"; status != 2 || !strings.HasPrefix(stderr, want) {
			t.Errorf("smolvmm %s: status %d, stderr %q; want 2 and %q", args[0], status, stderr, want)
		}
		if _, err := os.Stat(img); err == nil {
			t.Errorf("smolvmm %s wrote %s", args[0], img)
		}
	}
}

// TestMkimgImageNotInput: mkimg wrote its image into its own input. An
// image in the --data directory went into the next disk built there
// (with -f), one in a -x directory into the root image, and -i naming an
// -x archive (-f) overwrote the set, status 0. Each is refused (status 2)
// before any work; an image beside them is taken.
func TestMkimgImageNotInput(t *testing.T) {
	dir := inSetDir(t)
	os.Mkdir("data", 0o755)
	os.WriteFile(filepath.Join("data", "f"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join("dset", "rescue"), 0o755)
	os.WriteFile(filepath.Join("dset", "rescue", "init"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("rescue.tgz", "set.link")
	os.Symlink("data", "data.link")
	set, _ := os.ReadFile("rescue.tgz")
	tests := []struct {
		name  string
		flags fakeFlags
		want  string // "" when taken
	}{
		{"image in --data DIR", fakeFlags{"data": "data", "image": "data/data.img", "force": true},
			"image data/data.img is in data (the directory given with --data, which the disk holds): the image would be read into itself"},
		{"--data . with the default image", fakeFlags{"data": ".", "force": true},
			"image data.img is in . (the directory given with --data, which the disk holds)"},
		{"image in --data DIR through a link", fakeFlags{"data": "data.link", "image": "data/d.img", "force": true},
			"image data/d.img is in data.link (the directory given with --data, which the disk holds)"},
		{"image in a -x directory", fakeFlags{"sets": []string{"dset"}, "image": "dset/root.img", "force": true},
			"image dset/root.img is in dset (a set given with -x): the image would be read into itself"},
		{"image is the -x archive", fakeFlags{"sets": []string{"rescue.tgz"}, "image": "rescue.tgz", "force": true},
			"image rescue.tgz is rescue.tgz (a set given with -x): writing the image would overwrite what it is built from; give -i another file"},
		{"image is the -x archive through a link", fakeFlags{"sets": []string{"rescue.tgz"}, "image": "set.link", "force": true},
			"image set.link is rescue.tgz (a set given with -x)"},
		{"image is the service's set", fakeFlags{"image": "rescue.tgz", "force": true},
			"image rescue.tgz is rescue.tgz (a set of service rescue)"},
		{"data image beside the directory", fakeFlags{"data": "data", "image": "d.img"}, ""},
		{"root image beside the set directory", fakeFlags{"sets": []string{"dset"}, "image": "r.img"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := mkimg(context.Background(), tc.flags, &bytes.Buffer{})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("%v, want the image taken", err)
			case tc.want != "" && (err == nil || exitCode(err) != 2 || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("%v, want status 2 and %q", err, tc.want)
			}
		})
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "rescue.tgz")); !bytes.Equal(got, set) {
		t.Error("rescue.tgz was overwritten")
	}
	for _, p := range []string{"data/data.img", "data.img", "data/d.img", "dset/root.img"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
}
