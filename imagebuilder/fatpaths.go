package imagebuilder

import (
	"fmt"
	"path"
	"strings"

	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
)

// fatDirPaths are the paths go-diskfs finds the directories made so far in
// a FAT32 image by, keyed by their path in the data directory ("" the
// root). go-diskfs does not find a directory by a long name it stored with
// entries of padding only (see fixLongNames: it reads the padding back as
// part of the name), and would fail on everything put in it ("path ... not
// found"); it matches short names too, so such a directory is reached by
// its short name, which go-diskfs keeps while it builds.
type fatDirPaths map[string]string

// newFATDirPaths is the map for fsys, nil (every path as it is) unless
// fsys is FAT32.
func newFATDirPaths(fsys filesystem.FileSystem) fatDirPaths {
	if _, ok := fsys.(*fat32.FileSystem); !ok {
		return nil
	}
	return fatDirPaths{"": "/"}
}

// path is the path to give go-diskfs for the entry rel of the data
// directory.
func (m fatDirPaths) path(rel string) string {
	parent, name := path.Split(rel)
	if p, ok := m[strings.TrimSuffix(parent, "/")]; ok {
		return path.Join(p, name)
	}
	return "/" + rel
}

// made records the directory rel of the data directory, just made in fsys
// at m.path(rel).
func (m fatDirPaths) made(fsys filesystem.FileSystem, rel string) error {
	if m == nil {
		return nil
	}
	p := m.path(rel)
	if _, err := fsys.ReadDir(fsPath(p)); err == nil {
		m[rel] = p // found by its long name
		return nil
	}
	parent, name := path.Dir(p), path.Base(p)
	es, err := fsys.ReadDir(fsPath(parent))
	if err != nil {
		return fmt.Errorf("reading directory %s of the data image: %w", parent, err)
	}
	for _, e := range es {
		if !strings.EqualFold(strings.TrimRight(e.Name(), "\uffff"), name) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("reading the entry of %s in the data image: %w", p, err)
		}
		short, ok := info.(interface{ ShortName() string })
		if !ok {
			return fmt.Errorf("data image: the entry of %s is a %T, which has no short name", p, info)
		}
		m[rel] = path.Join(parent, short.ShortName())
		return nil
	}
	return fmt.Errorf("data image: directory %s, just made, is found neither by its long name nor by its short name", p)
}

// fsPath is p as go-diskfs's ReadDir takes it: an io/fs path, without
// the leading slash, "." the root.
func fsPath(p string) string {
	return strings.TrimPrefix(path.Join(".", p), "/")
}
