//go:build unix

package atomicfile

import "syscall"

// Errors some file systems (e.g. certain FUSE and network mounts) return
// for fsync on a directory.
var (
	errSyncInvalid      error = syscall.EINVAL
	errSyncNotSupported error = syscall.ENOTSUP
)
