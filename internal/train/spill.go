package train

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/tfflowers/tfflowers/tfops"
)

// spillStore keeps the features this run has read from the feature cache or computed,
// by content id, in one scratch file beside the cache, so that later epochs read each
// entry with one pread: no open, no path lookup, no checksum (the file is this process's
// own and is deleted as soon as it is created, so nothing else can write it and it never
// outlives the run). What the entries occupy is the kernel's page cache, which it can
// reclaim, not the process's memory: a run's RSS stays flat however large the set, where
// the entries held in Go's heap had cost about three times their size (README, Scaling).
type spillStore struct {
	f       *os.File
	name    string // still to remove at close where the OS refused while it was open
	rowLen  int    // floats per entry
	mu      sync.Mutex
	next    int64
	offsets sync.Map // content id -> int64 offset of its row
}

// openSpill creates the scratch file in dir (the feature cache's folder, which has room
// for the entries by construction) for entries of rowLen floats.
func openSpill(dir string, rowLen int) (*spillStore, error) {
	f, err := os.CreateTemp(dir, ".run-*.spill")
	if err != nil {
		return nil, fmt.Errorf("feature spill file: %w", err)
	}
	s := &spillStore{f: f, rowLen: rowLen}
	if err := os.Remove(f.Name()); err != nil { // Unix: gone from the folder, open until close
		s.name = f.Name()
	}
	return s, nil
}

// put stores feats (rowLen floats) for id, once; safe for concurrent use.
func (s *spillStore) put(id string, feats []float32) error {
	if len(feats) != s.rowLen {
		return fmt.Errorf("feature spill file: %d floats for a row of %d", len(feats), s.rowLen)
	}
	if _, ok := s.offsets.Load(id); ok {
		return nil
	}
	s.mu.Lock()
	off := s.next
	s.next += int64(4 * s.rowLen)
	s.mu.Unlock()
	if _, err := s.f.WriteAt(tfops.Float32Bytes(feats), off); err != nil {
		return fmt.Errorf("feature spill file: %w", err)
	}
	s.offsets.LoadOrStore(id, off) // only once the row is written, so get never reads a partial one
	return nil
}

// get reads id's row into dst (rowLen floats); false when it was never put. The file
// holds the bytes in the host's order (tfops.Float32Bytes): only this process reads it.
func (s *spillStore) get(id string, dst []float32) (bool, error) {
	if len(dst) != s.rowLen {
		return false, fmt.Errorf("feature spill file: room for %d floats in a row of %d", len(dst), s.rowLen)
	}
	v, ok := s.offsets.Load(id)
	if !ok {
		return false, nil
	}
	if _, err := s.f.ReadAt(tfops.Float32Bytes(dst), v.(int64)); err != nil {
		return false, fmt.Errorf("feature spill file: %w", err)
	}
	return true, nil
}

// close closes (and so frees) the scratch file.
func (s *spillStore) close() error {
	err := s.f.Close()
	if s.name != "" {
		if rmErr := os.Remove(s.name); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			err = errors.Join(err, rmErr)
		}
	}
	return err
}
