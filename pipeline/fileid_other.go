//go:build !unix

package pipeline

import (
	"io/fs"
	"path/filepath"
)

// dirID identifies a directory by its fully resolved path where there is
// no device+inode pair to use.
type dirID struct{ path string }

func dirIDOf(path string, _ fs.FileInfo) (dirID, bool) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return dirID{}, false
	}
	abs, err := filepath.Abs(real)
	if err != nil {
		return dirID{}, false
	}
	return dirID{path: abs}, true
}
