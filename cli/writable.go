package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/tfflowers/tfflowers/internal/contract"
)

// printError writes a failed command's error line (contract.CLIErrorPrefix: one line, which
// tfflowers batch reports as a job's error), with what to do about it where tfflowers knows.
func printError(w io.Writer, err error) {
	msg := err.Error()
	if hint := writeHint(err); hint != "" {
		msg += "; " + hint
	}
	fmt.Fprintf(w, "%s%s\n", contract.CLIErrorPrefix, msg)
}

// writeHint says how to fix an output folder that tfflowers may not create or write in, or ""
// for any other error. In the Docker image tfflowers runs as uid 10001, and a bind-mounted
// host folder owned by another user (or mounted :ro) fails at the first mkdir with EACCES or
// EROFS; the bare "permission denied" does not say that the fix is on the host.
func writeHint(err error) string {
	var pe *fs.PathError
	if !errors.As(err, &pe) || (pe.Op != "mkdir" && pe.Op != "createtemp") {
		return ""
	}
	dir := filepath.Dir(pe.Path) // the folder that refused the new entry
	switch {
	case errors.Is(pe.Err, syscall.EROFS):
		return fmt.Sprintf("%s is on a read-only file system; if it is a mounted folder, mount it writable "+
			"(docker run -v HOST_DIR:%s, without :ro)", dir, dir)
	case errors.Is(pe.Err, syscall.EACCES):
		uid, gid := os.Getuid(), os.Getgid()
		return fmt.Sprintf("uid %d may not create files in %s; if it is a mounted folder, make the host folder "+
			"writable for that user (chown %d:%d DIR) or run the container as the folder's owner "+
			"(docker run --user UID:GID ...)", uid, dir, uid, gid)
	}
	return ""
}
