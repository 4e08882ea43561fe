package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var testKey = CacheKey{BaseModel: "sha256:abc", ImageSize: 192, Preprocessing: "x/127.5-1;bilinear", FeatureShape: []int{2, 3, 4}}

func testFeatures(seed int) []float32 {
	f := make([]float32, 24)
	for i := range f {
		f[i] = float32(seed)*100 + float32(i) - 0.5
	}
	f[0] = float32(math.Inf(-1)) // special values must round-trip bit for bit
	f[1] = float32(math.Copysign(0, -1))
	return f
}

func openTestCache(t *testing.T, dir string) *FeatureCache {
	t.Helper()
	c, err := OpenFeatureCache(dir, testKey)
	if err != nil {
		t.Fatalf("OpenFeatureCache: %v", err)
	}
	return c
}

func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

func TestFeatureCacheRoundTrip(t *testing.T) {
	dir := t.TempDir()
	c := openTestCache(t, dir)
	id := ContentID([]byte("image one"))

	if got, ok, err := c.Get(id); err != nil || ok || got != nil {
		t.Fatalf("Get on empty cache = %v, %v, %v; want miss", got, ok, err)
	}
	want := testFeatures(1)
	if err := c.Put(id, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get(id)
	if err != nil || !ok {
		t.Fatalf("Get after Put = %v, %v", ok, err)
	}
	if !sameBits(got, want) {
		t.Errorf("Get = %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(c.Dir(), id[:2], id+".tffc")); err != nil {
		t.Errorf("entry not sharded by first two hex digits: %v", err)
	}
	if !strings.HasPrefix(c.Dir(), dir) || len(filepath.Base(c.Dir())) != 64 {
		t.Errorf("Dir() = %s, want %s/<64 hex digits>", c.Dir(), dir)
	}
	if s := c.Stats(); s != (CacheStats{Hits: 1, Misses: 1, Writes: 1}) {
		t.Errorf("Stats = %+v, want 1 hit, 1 miss, 1 write", s)
	}
	// A second cache on the same folder (a later run) sees the entry.
	got, ok, err = openTestCache(t, dir).Get(id)
	if err != nil || !ok || !sameBits(got, want) {
		t.Errorf("reopened cache Get = %v, %v, %v", got, ok, err)
	}
}

func TestFeatureCacheCorruptEntries(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
	}{
		{"flipped data byte", func(b []byte) []byte { b[40] ^= 0x01; return b }},
		{"flipped crc byte", func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"other version", func(b []byte) []byte { le.PutUint32(b[4:], 2); return b }},
		{"wrong ndims", func(b []byte) []byte { le.PutUint32(b[8:], 2); return b }},
		{"wrong dim", func(b []byte) []byte { le.PutUint32(b[12:], 3); return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-5] }},
		{"header only", func(b []byte) []byte { return b[:12] }},
		{"empty", func(b []byte) []byte { return nil }},
		{"trailing garbage", func(b []byte) []byte { return append(b, 0) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := openTestCache(t, t.TempDir())
			id := ContentID([]byte(tc.name))
			if err := c.Put(id, testFeatures(2)); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(c.Dir(), id[:2], id+".tffc")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.mutate(b), 0o644); err != nil {
				t.Fatal(err)
			}
			got, ok, err := c.Get(id)
			if err != nil || ok || got != nil {
				t.Fatalf("Get of corrupt entry = %v, %v, %v; want a plain miss", got, ok, err)
			}
			if s := c.Stats(); s.Corrupt != 1 || s.Misses != 1 || s.Hits != 0 {
				t.Errorf("Stats = %+v, want Corrupt 1, Misses 1, Hits 0", s)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("corrupt entry not deleted: %v", err)
			}
			// The slot is usable again.
			if err := c.Put(id, testFeatures(3)); err != nil {
				t.Fatal(err)
			}
			if got, ok, _ := c.Get(id); !ok || !sameBits(got, testFeatures(3)) {
				t.Error("Put after corruption did not restore the entry")
			}
		})
	}
}

func TestOpenFeatureCacheKeyFile(t *testing.T) {
	tests := []struct {
		name      string
		keyJSON   func(orig []byte) []byte // nil: delete key.json
		wantWiped bool
	}{
		{name: "unchanged", keyJSON: func(b []byte) []byte { return b }},
		{name: "reformatted but equal", keyJSON: func(b []byte) []byte { return []byte(strings.Join(strings.Fields(string(b)), "")) }},
		{name: "hand-edited", keyJSON: func(b []byte) []byte { return []byte(strings.Replace(string(b), "192", "224", 1)) }, wantWiped: true},
		{name: "corrupt", keyJSON: func(b []byte) []byte { return b[:len(b)/2] }, wantWiped: true},
		{name: "missing", keyJSON: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := openTestCache(t, dir)
			id := ContentID([]byte("x"))
			if err := c.Put(id, testFeatures(1)); err != nil {
				t.Fatal(err)
			}
			keyPath := filepath.Join(c.Dir(), "key.json")
			orig, err := os.ReadFile(keyPath)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(orig), `"feature_shape"`) || !strings.Contains(string(orig), "sha256:abc") {
				t.Errorf("key.json does not describe the key: %s", orig)
			}
			if tc.keyJSON == nil {
				err = os.Remove(keyPath)
			} else {
				err = os.WriteFile(keyPath, tc.keyJSON(orig), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}

			c2 := openTestCache(t, dir)
			_, ok, err := c2.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			if ok == tc.wantWiped {
				t.Errorf("entry present = %v after reopening, want wiped = %v", ok, tc.wantWiped)
			}
			if now, err := os.ReadFile(keyPath); err != nil || (tc.wantWiped || tc.keyJSON == nil) && string(now) != string(orig) {
				t.Errorf("key.json not rewritten: %q, %v", now, err)
			}
		})
	}
}

func TestOpenFeatureCacheKeysSeparate(t *testing.T) {
	dir := t.TempDir()
	variants := []func(k *CacheKey){
		func(k *CacheKey) {},
		func(k *CacheKey) { k.BaseModel = "sha256:def" },
		func(k *CacheKey) { k.ImageSize = 224 },
		func(k *CacheKey) { k.Preprocessing = "x/255" },
		func(k *CacheKey) { k.FeatureShape = []int{4, 3, 2} },
	}
	seen := map[string]int{}
	for i, v := range variants {
		k := testKey
		k.FeatureShape = slices.Clone(testKey.FeatureShape)
		v(&k)
		c, err := OpenFeatureCache(dir, k)
		if err != nil {
			t.Fatal(err)
		}
		if j, dup := seen[c.Dir()]; dup {
			t.Errorf("key variants %d and %d share folder %s", j, i, c.Dir())
		}
		seen[c.Dir()] = i
	}
}

func TestOpenFeatureCacheBadKey(t *testing.T) {
	tests := []struct {
		name string
		edit func(k *CacheKey)
		want string
	}{
		{"no base model", func(k *CacheKey) { k.BaseModel = "" }, "BaseModel"},
		{"zero image size", func(k *CacheKey) { k.ImageSize = 0 }, "ImageSize"},
		{"no shape", func(k *CacheKey) { k.FeatureShape = nil }, "FeatureShape is empty"},
		{"zero dim", func(k *CacheKey) { k.FeatureShape = []int{6, 0, 1280} }, "dimension 1"},
		{"huge", func(k *CacheKey) { k.FeatureShape = []int{1 << 20, 1 << 20} }, "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := testKey
			tc.edit(&k)
			_, err := OpenFeatureCache(t.TempDir(), k)
			if !errors.Is(err, ErrCacheKey) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want ErrCacheKey containing %q", err, tc.want)
			}
		})
	}
}

func TestFeatureCacheBadArguments(t *testing.T) {
	c := openTestCache(t, t.TempDir())
	good := ContentID([]byte("x"))
	tests := []struct {
		name   string
		id     string
		feats  []float32
		wantIs error
	}{
		{"short id", "abc", testFeatures(1), ErrCacheID},
		{"upper-case id", strings.ToUpper(good), testFeatures(1), ErrCacheID},
		{"path traversal", "../" + good[3:], testFeatures(1), ErrCacheID},
		{"wrong length", good, make([]float32, 23), ErrFeatureShape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Put(tc.id, tc.feats); !errors.Is(err, tc.wantIs) {
				t.Errorf("Put error = %v, want %v", err, tc.wantIs)
			}
			if tc.wantIs == ErrCacheID {
				if _, _, err := c.Get(tc.id); !errors.Is(err, ErrCacheID) {
					t.Errorf("Get error = %v, want ErrCacheID", err)
				}
			}
			if hit, err := c.GetInto(tc.id, tc.feats); hit || !errors.Is(err, tc.wantIs) {
				t.Errorf("GetInto = %v, %v; want %v", hit, err, tc.wantIs)
			}
		})
	}
	if s := c.Stats(); s != (CacheStats{}) {
		t.Errorf("rejected calls changed Stats: %+v", s)
	}
}

func TestFeatureCacheConcurrent(t *testing.T) {
	c := openTestCache(t, t.TempDir())
	const ids, workers = 20, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 3 {
				for i := range ids {
					id := ContentID(fmt.Appendf(nil, "img%d", i))
					got, ok, err := c.Get(id)
					if err != nil {
						errs <- err
						return
					}
					if ok && !sameBits(got, testFeatures(i)) {
						errs <- fmt.Errorf("worker %d round %d: entry %d has wrong contents", w, round, i)
						return
					}
					if err := c.Put(id, testFeatures(i)); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := c.Stats()
	if s.Corrupt != 0 || s.Hits+s.Misses != workers*ids*3 || s.Writes != workers*ids*3 {
		t.Errorf("Stats = %+v, want no corruption and %d gets/puts", s, workers*ids*3)
	}
}

func TestContentID(t *testing.T) {
	// sha256("abc"), from FIPS 180-2.
	if got, want := ContentID([]byte("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("ContentID(abc) = %s, want %s", got, want)
	}
}

func BenchmarkFeatureCache(b *testing.B) {
	key := testKey
	key.FeatureShape = []int{6, 6, 1280}
	c, err := OpenFeatureCache(b.TempDir(), key)
	if err != nil {
		b.Fatal(err)
	}
	feats := make([]float32, 6*6*1280)
	id := ContentID([]byte("bench"))
	b.Run("Put", func(b *testing.B) {
		b.SetBytes(int64(4 * len(feats)))
		for b.Loop() {
			if err := c.Put(id, feats); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		b.SetBytes(int64(4 * len(feats)))
		for b.Loop() {
			if _, ok, err := c.Get(id); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}
