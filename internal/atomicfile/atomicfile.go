package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile atomically replaces path with data. The file ends up with
// exactly the permission bits perm (the umask is not applied, because the
// temporary file is chmod-ed explicitly before the rename).
func WriteFile(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if base == "" {
		return fmt.Errorf("atomic write %q: path names a directory, want a file", path)
	}
	if dir == "" {
		dir = "."
	}
	// A dot-prefixed name keeps half-written files out of directory
	// listings that ignore hidden entries (as the dataset scanner does).
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	closed := false
	defer func() {
		if err == nil {
			return
		}
		if !closed {
			_ = tmp.Close() // the write error is the one worth reporting
		}
		_ = os.Remove(tmpName)
	}()

	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	// Without this fsync a crash after the rename can leave a
	// zero-length or partially written file under the final name.
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	closed = true
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	if err = os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	if err = SyncDir(dir); err != nil {
		// The new contents are in place; only durability of the rename
		// is in doubt. Report it, but the temp file is already gone.
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs a directory so that entries created, renamed or removed in
// it survive a crash. File systems that cannot fsync a directory (they
// answer EINVAL or ENOTSUP) are treated as success: there is nothing more
// the caller could do there.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	syncErr := d.Sync()
	closeErr := d.Close()
	if syncErr != nil && !unsupportedSync(syncErr) {
		return fmt.Errorf("sync directory %s: %w", dir, syncErr)
	}
	if closeErr != nil {
		return fmt.Errorf("sync directory %s: %w", dir, closeErr)
	}
	return nil
}

// SyncTree fsyncs every file and directory under root (root included), for a folder
// built in a temporary place and about to be renamed into view.
func SyncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return SyncDir(p)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", p, err)
		}
		return nil
	})
}

// unsupportedSync reports whether err means "this file system does not
// support fsync on directories" rather than a real I/O failure.
func unsupportedSync(err error) bool {
	return errors.Is(err, errSyncInvalid) || errors.Is(err, errSyncNotSupported)
}
