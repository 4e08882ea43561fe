package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
)

// CacheKey describes everything the cached features depend on. Changing
// any field must invalidate the cache, so all of them go into the cache
// folder's name.
type CacheKey struct {
	// BaseModel fingerprints the base model, e.g. the sha256 of
	// saved_model.pb and the variables; the caller computes it.
	BaseModel string `json:"base_model"`
	// ImageSize is the side of the square model input, in pixels.
	ImageSize int `json:"image_size"`
	// Preprocessing names the pixel transform, e.g. "x/127.5-1;bilinear".
	Preprocessing string `json:"preprocessing"`
	// FeatureShape is the shape of one image's features, e.g. [6,6,1280].
	FeatureShape []int `json:"feature_shape"`
}

// cacheKeyFile is the JSON written to key.json; Format ties the folder to
// the entry layout so a layout change also starts a fresh folder.
type cacheKeyFile struct {
	Format int `json:"format"`
	CacheKey
}

// CacheStats counts cache activity since OpenFeatureCache.
type CacheStats struct {
	Hits    int64 // Get found a valid entry
	Misses  int64 // Get found no valid entry (includes Corrupt)
	Corrupt int64 // Get found an entry that failed validation and deleted it
	Writes  int64 // Put stored an entry
}

// FeatureCache is an on-disk cache of per-image float32 feature arrays
// (the "bottleneck cache"), keyed by ContentID. It is safe for concurrent
// use.
type FeatureCache struct {
	dir   string
	shape []int
	n     int // number of floats per entry

	hits, misses, corrupt, writes atomic.Int64
	bufs                          sync.Pool // *[]byte of EntryBytes()+1, for GetInto
}

// OpenFeatureCache opens (creating it if needed) the cache for key under
// dir, in the folder dir/<hex sha256 of the key>/. That folder's key.json
// records the key in readable form; if it exists but does not match (it
// was hand-edited or damaged), the folder is wiped and started afresh,
// since nothing in it can then be trusted.
func OpenFeatureCache(dir string, key CacheKey) (*FeatureCache, error) {
	n, err := validateCacheKey(key)
	if err != nil {
		return nil, fmt.Errorf("open feature cache: %w", err)
	}
	kf := cacheKeyFile{Format: entryVersion, CacheKey: key}
	kf.FeatureShape = slices.Clone(key.FeatureShape)
	canon, err := json.Marshal(kf)
	if err != nil {
		return nil, fmt.Errorf("open feature cache: encode key: %w", err)
	}
	sum := sha256.Sum256(canon)
	c := &FeatureCache{
		dir:   filepath.Join(dir, hex.EncodeToString(sum[:])),
		shape: kf.FeatureShape,
		n:     n,
	}
	c.bufs.New = func() any { b := make([]byte, 0, entrySize(c.shape, c.n)+1); return &b }
	keyPath := filepath.Join(c.dir, "key.json")

	existing, err := os.ReadFile(keyPath)
	switch {
	case err == nil:
		var got cacheKeyFile
		if json.Unmarshal(existing, &got) == nil && sameKeyFile(got, kf) {
			return c, nil
		}
		// Only the hash-named folder is removed, never dir itself.
		if err := os.RemoveAll(c.dir); err != nil {
			return nil, fmt.Errorf("open feature cache: wipe %s after key.json mismatch: %w", c.dir, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("open feature cache: %w", err)
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, fmt.Errorf("open feature cache: %w", err)
	}
	pretty, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("open feature cache: encode key: %w", err)
	}
	if err := atomicfile.WriteFile(keyPath, append(pretty, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("open feature cache: %w", err)
	}
	return c, nil
}

// maxEntryFloats caps an entry at 4 GiB of float32s.
const maxEntryFloats = 1 << 30

// validateCacheKey checks the key and returns the number of floats per
// entry.
func validateCacheKey(key CacheKey) (int, error) {
	if key.BaseModel == "" {
		return 0, fmt.Errorf("%w: BaseModel fingerprint is empty", ErrCacheKey)
	}
	if key.ImageSize <= 0 {
		return 0, fmt.Errorf("%w: ImageSize %d is not positive", ErrCacheKey, key.ImageSize)
	}
	if len(key.FeatureShape) == 0 {
		return 0, fmt.Errorf("%w: FeatureShape is empty", ErrCacheKey)
	}
	n := 1
	for i, d := range key.FeatureShape {
		// Entries must stay within what one os.ReadFile can sensibly
		// hold; the cap also keeps every dimension within uint32.
		if d <= 0 || d > maxEntryFloats/n {
			return 0, fmt.Errorf("%w: FeatureShape %v: dimension %d is not positive or the total is too large", ErrCacheKey, key.FeatureShape, i)
		}
		n *= d
	}
	return n, nil
}

func sameKeyFile(a, b cacheKeyFile) bool {
	return a.Format == b.Format && a.BaseModel == b.BaseModel && a.ImageSize == b.ImageSize &&
		a.Preprocessing == b.Preprocessing && slices.Equal(a.FeatureShape, b.FeatureShape)
}

// ContentID is the per-entry key: the hex sha256 of an image's bytes.
// Keying by content rather than file name means renamed or duplicated
// photos share one entry and an edited photo gets a new one.
func ContentID(imageBytes []byte) string {
	sum := sha256.Sum256(imageBytes)
	return hex.EncodeToString(sum[:])
}

// EntryBytes is the size on disk of one image's entry: the features plus a 20-byte
// header and checksum for a pooled [D] shape.
func (c *FeatureCache) EntryBytes() int { return entrySize(c.shape, c.n) }

// Dir returns the cache folder for this key (dir/<hex sha256>).
func (c *FeatureCache) Dir() string { return c.dir }

// Stats returns a snapshot of the counters.
func (c *FeatureCache) Stats() CacheStats {
	return CacheStats{
		Hits:    c.hits.Load(),
		Misses:  c.misses.Load(),
		Corrupt: c.corrupt.Load(),
		Writes:  c.writes.Load(),
	}
}

// entryPath maps an id to dir/<first 2 hex chars>/<id>.tffc. Sharding keeps
// directories small; validating the id keeps it from naming a path outside
// the cache.
func (c *FeatureCache) entryPath(id string) (string, error) {
	if len(id) != 2*sha256.Size {
		return "", fmt.Errorf("%w: %q is not 64 hex digits (use ContentID)", ErrCacheID, id)
	}
	for i := 0; i < len(id); i++ {
		if ch := id[i]; (ch < '0' || ch > '9') && (ch < 'a' || ch > 'f') {
			return "", fmt.Errorf("%w: %q is not lower-case hex (use ContentID)", ErrCacheID, id)
		}
	}
	return filepath.Join(c.dir, id[:2], id+".tffc"), nil
}

// Get returns the features stored for id, or (nil, false, nil) on a miss.
// An entry that fails validation (bad magic, wrong shape or length,
// checksum mismatch, truncation) is a miss: it is deleted, counted in
// Stats().Corrupt, and never returned. Errors are reserved for an invalid
// id or a file that exists but cannot be read.
func (c *FeatureCache) Get(id string) ([]float32, bool, error) {
	out := make([]float32, c.n)
	hit, err := c.GetInto(id, out)
	if !hit {
		return nil, hit, err
	}
	return out, true, nil
}

// GetInto is Get into dst (len(dst) must be the key's feature count), with no
// allocation per entry: training reads every entry of a large set each epoch.
// dst is unspecified on a miss.
func (c *FeatureCache) GetInto(id string, dst []float32) (bool, error) {
	if len(dst) != c.n {
		return false, fmt.Errorf("feature cache get %s: %w: room for %d floats, shape %v needs %d", id, ErrFeatureShape, len(dst), c.shape, c.n)
	}
	path, err := c.entryPath(id)
	if err != nil {
		return false, fmt.Errorf("feature cache get: %w", err)
	}
	buf := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(buf)
	b, err := readEntryFile(path, *buf)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			c.misses.Add(1)
			return false, nil
		}
		return false, fmt.Errorf("feature cache get: %w", err)
	}
	if err := decodeEntryInto(b, c.shape, dst); err != nil {
		c.corrupt.Add(1)
		c.misses.Add(1)
		// If a concurrent Put has just replaced the entry this removes a
		// good one; that only costs a recomputation later.
		if rmErr := os.Remove(path); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			return false, fmt.Errorf("feature cache get: remove %s: %w (entry was unusable: %w)", path, rmErr, err)
		}
		return false, nil
	}
	c.hits.Add(1)
	return true, nil
}

// readEntryFile reads path into buf, whose capacity is one byte more than an entry: a
// longer file comes back as that many bytes, which decoding rejects as the wrong size.
func readEntryFile(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := io.ReadFull(f, buf[:cap(buf)])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

// Put stores features for id atomically (temporary file in the same
// folder, fsync, rename), so concurrent readers see either no entry or a
// complete one. len(features) must match the key's FeatureShape.
func (c *FeatureCache) Put(id string, features []float32) error {
	path, err := c.entryPath(id)
	if err != nil {
		return fmt.Errorf("feature cache put: %w", err)
	}
	if len(features) != c.n {
		return fmt.Errorf("feature cache put %s: %w: got %d floats, shape %v needs %d", id, ErrFeatureShape, len(features), c.shape, c.n)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("feature cache put: %w", err)
	}
	if err := atomicfile.WriteFile(path, encodeEntry(c.shape, features), 0o644); err != nil {
		return fmt.Errorf("feature cache put: %w", err)
	}
	c.writes.Add(1)
	return nil
}
