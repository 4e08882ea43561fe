//go:build unix

package pipeline

import (
	"io/fs"
	"syscall"
)

// dirID identifies a directory independently of the path used to reach
// it, so that symlinks leading back to a directory already walked are
// recognised.
type dirID struct{ dev, ino uint64 }

func dirIDOf(_ string, fi fs.FileInfo) (dirID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return dirID{}, false
	}
	return dirID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true //nolint:unconvert // field widths differ by platform
}
