//go:build !unix

package atomicfile

import "errors"

// Directory fsync is a Unix notion; elsewhere os.File.Sync on a directory
// either works or fails for real, so these never match.
var (
	errSyncInvalid      = errors.New("atomicfile: unused")
	errSyncNotSupported = errors.New("atomicfile: unused")
)
