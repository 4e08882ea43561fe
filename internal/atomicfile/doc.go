// Package atomicfile writes files so that readers (and a crash) see either
// the old contents or the new contents, never a torn mix.
//
// The recipe is the usual one: write a temporary file in the destination's
// own directory (so the final rename never crosses a file system), fsync it,
// close it, rename it over the destination, then fsync the directory so the
// rename itself is durable.
//
// Folders (exports, checkpoints) are built in a hidden temporary sibling, fsynced
// with SyncTree and put in place with ReplaceDir (which puts the old folder back
// if the swap fails) or RenameDirNoReplace (which fails with fs.ErrExist for
// the loser of two writers racing for one name). Lock takes a process-lifetime
// flock, so a folder has one writer at a time.
//
// # Error handling
//
// Every function returns an error that names the path involved and wraps the
// underlying *os.PathError or similar, so callers can still test it with
// errors.Is (for example against fs.ErrPermission). On any failure the
// temporary file is removed; the destination is left untouched.
//
// # Ownership
//
// WriteFile does not retain data after it returns; the caller may reuse the
// slice.
//
// # Concurrency
//
// Concurrent WriteFile calls for the same path are safe: each uses its own
// uniquely named temporary file, and the last rename wins. Readers never see
// a partially written file. Concurrent ReplaceDir calls for one folder are not
// coordinated (the last one wins); callers that need one writer take Lock.
package atomicfile
