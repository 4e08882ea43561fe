//go:build !unix

package atomicfile

import "os"

// TryLock: no cross-process locks off Unix.
func TryLock(*os.File) (bool, error) { return false, nil }

// renameOverEmpty: elsewhere the empty claim is removed first (not atomic).
func renameOverEmpty(from, to string) error {
	if err := os.Remove(to); err != nil {
		return err
	}
	return os.Rename(from, to)
}
