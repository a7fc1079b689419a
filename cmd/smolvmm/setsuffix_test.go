package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// TestMkimgSetSuffixes: a set named in service.conf with any extension a
// set's archive has (the fetcher's, which NetBSD releases and mirrors use,
// and the builder's) is that archive, as service.conf's check of a set
// named twice already took it: sets=rescue.tbz was looked for as
// rescue.tbz.tgz and rescue.tbz.tar.xz, and the existing rescue.tbz said
// missing. What the archive is comes from its content: a bzip2 one is
// refused naming the file and what the builder reads; a gzip one named
// .tbz is read.
func TestMkimgSetSuffixes(t *testing.T) {
	bzip2, err := exec.LookPath("bzip2")
	if err != nil {
		t.Skip("bzip2 is not installed: no bzip2 set to write")
	}
	tar, err := testsets.Bytes(testsets.Rescue(1_000_000), "tar")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bzip2, "-c")
	cmd.Stdin = bytes.NewReader(tar)
	bz, err := cmd.Output()
	if err != nil {
		t.Fatalf("bzip2: %v", err)
	}
	gz, err := testsets.Bytes(testsets.Rescue(1_000_000), "tgz")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file    string
		content []byte
		err     string // "" when the image is built
	}{
		{"rescue.tbz", bz, "rescue.tbz: bzip2 compression is not supported: recompress the set as .tgz or .tar.xz"},
		{"rescue.tar.bz2", bz, "rescue.tar.bz2: bzip2 compression is not supported"},
		{filepath.Join("sets", "rescue.tbz"), bz, filepath.Join("sets", "rescue.tbz") + ": bzip2 compression is not supported"},
		{"rescue.tbz", gz, ""}, // misnamed: read by its content
		{"rescue.txz", gz, ""},
	} {
		t.Run(tc.file+map[bool]string{true: " (gzip)", false: ""}[tc.err == ""], func(t *testing.T) {
			t.Chdir(t.TempDir())
			t.Setenv("XDG_CACHE_HOME", t.TempDir())
			svc := filepath.Join("svcs", "old", "etc")
			os.MkdirAll(svc, 0o755)
			os.MkdirAll("sets", 0o755)
			os.WriteFile(filepath.Join(svc, "rc"), []byte("#!/bin/sh\n"), 0o644)
			os.WriteFile(filepath.Join("svcs", "old", "service.conf"), []byte("sets="+filepath.Base(tc.file)+"\nsize=auto\n"), 0o644)
			if err := os.WriteFile(tc.file, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			err := mkimg(context.Background(), fakeFlags{"service": "old", "service-dir": "svcs", "image": "o.img", "timestamp": "1700000000"}, &log)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("%v\n%s", err, log.String())
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err = %v, want one containing %q", err, tc.err)
			case tc.err == "":
				if st, err := os.Stat("o.img"); err != nil || st.Size() == 0 {
					t.Errorf("no image: %v", err)
				}
			}
		})
	}
}

// TestFindSetSuffixes: findSet takes a name ending in any set archive's
// extension for that archive; one found nowhere is said with that name,
// and its fetch advice names the set without the extension, as smolvmm
// fetch takes it. A name the builder cannot read by its extension
// (bzip2's) is told what it reads.
func TestFindSetSuffixes(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	os.Mkdir("sets", 0o755)
	os.WriteFile("old.tbz", []byte("x"), 0o644)
	os.WriteFile(filepath.Join("sets", "new.tar.bz2"), []byte("x"), 0o644)
	os.WriteFile("comp.tgz", []byte("x"), 0o644)
	for _, tc := range []struct {
		name, want string
		err        []string
	}{
		{name: "old.tbz", want: "old.tbz"},
		{name: "new.tar.bz2", want: filepath.Join("sets", "new.tar.bz2")},
		{name: "games.tbz", err: []string{`set "games.tbz": no games.tbz in the current directory`, "(smolvmm fetch games)", "mkimg reads sets compressed with gzip or xz, or plain tar (.tgz, .tar.gz, .tar.xz, .txz, .tar), not games.tbz's bzip2 (.tar.bz2, .tbz): name the set games (sets=games) and fetch it (smolvmm fetch games), or pass -x PATH"}},
		{name: "games.tar.bz2", err: []string{"no games.tar.bz2 in", "(smolvmm fetch games)"}},
		{name: "comp.tbz", err: []string{"sets=comp would read comp.tgz: name the set comp"}},
	} {
		got, err := findSet(tc.name, "")
		if tc.err == nil {
			if err != nil || got != tc.want {
				t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: got %q, want an error", tc.name, got)
			continue
		}
		for _, want := range tc.err {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, want)
			}
		}
	}
}
