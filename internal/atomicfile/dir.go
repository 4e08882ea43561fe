package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// rename is os.Rename; tests replace it to make the swap fail halfway.
var rename = os.Rename

// ReplaceDir puts the fully written folder tmp at final, replacing what is
// there. tmp must be fsynced (SyncTree) and on final's file system. A reader
// sees the old folder or the new one: the old one is renamed aside, the new one
// renamed in, and only then is the old one removed. When the second rename
// fails the old folder is put back, so a failed replace never loses the
// previous export or checkpoint; if even that fails, the error says where it is.
func ReplaceDir(tmp, final string) error {
	parent := filepath.Dir(final)
	aside := ""
	if _, err := os.Lstat(final); err == nil {
		aside = filepath.Join(parent, "."+filepath.Base(final)+".old-"+strconv.FormatInt(time.Now().UnixNano(), 36))
		if err := rename(final, aside); err != nil {
			return fmt.Errorf("replace %s: move the old folder aside: %w", final, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", final, err)
	}
	if err := rename(tmp, final); err != nil {
		if aside == "" {
			return fmt.Errorf("replace %s: %w", final, err)
		}
		if rerr := rename(aside, final); rerr != nil {
			return fmt.Errorf("replace %s: %w; the previous folder could not be put back and is kept as %s: %v", final, err, aside, rerr)
		}
		return fmt.Errorf("replace %s: %w (the previous folder is unchanged)", final, err)
	}
	if err := SyncDir(parent); err != nil {
		return fmt.Errorf("replace %s: %w", final, err)
	}
	if aside != "" {
		if err := os.RemoveAll(aside); err != nil {
			return fmt.Errorf("replace %s: the new folder is in place, but removing the old one (%s) failed: %w", final, aside, err)
		}
	}
	return nil
}

// RenameDirNoReplace renames the folder tmp to final only if final does not
// exist, atomically: of two processes racing for one name exactly one wins and
// the other gets an error wrapping fs.ErrExist. This is how an export claims a
// version number. On Linux it is renameat2(RENAME_NOREPLACE); on file systems
// without it (and elsewhere) final is claimed with mkdir, which fails for the
// loser, and tmp then replaces that empty folder in one rename.
func RenameDirNoReplace(tmp, final string) error {
	err := renameNoReplace(tmp, final)
	if errors.Is(err, errNoReplaceUnsupported) {
		err = mkdirRename(tmp, final)
	}
	if err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, final, err)
	}
	if err := SyncDir(filepath.Dir(final)); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, final, err)
	}
	return nil
}

// mkdirRename claims final with mkdir (atomic, fails if it exists), then
// renames tmp over the empty claim, which POSIX rename allows for folders.
func mkdirRename(tmp, final string) error {
	if err := os.Mkdir(final, 0o755); err != nil {
		return err
	}
	// os.Rename refuses an existing folder as the target; the system call does not.
	if err := renameOverEmpty(tmp, final); err != nil {
		_ = os.Remove(final)
		return err
	}
	return nil
}

// ErrLocked means another process holds a lock taken with Lock.
var ErrLocked = errors.New("held by another process")

// Lock takes an exclusive advisory lock (flock) on path, creating the file,
// without waiting: ErrLocked when another process holds it. The lock lasts
// until the returned file is closed or the process ends (even by SIGKILL, so
// a crash never leaves a stale claim). Off Unix it locks nothing.
func Lock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	busy, err := TryLock(f)
	if err != nil || busy {
		f.Close()
		if busy {
			err = ErrLocked
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
