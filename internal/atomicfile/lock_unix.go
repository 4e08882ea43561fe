//go:build unix

package atomicfile

import (
	"errors"
	"os"
	"syscall"
)

// TryLock takes an exclusive flock on f without waiting; busy is true when another
// open file (another process) holds it.
func TryLock(f *os.File) (busy bool, err error) {
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}

// renameOverEmpty is rename(2), which replaces an empty folder.
func renameOverEmpty(from, to string) error { return syscall.Rename(from, to) }
