package reliability_test

import (
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func cacheEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*.tffc"))
	sort.Strings(entries)
	return entries
}

// TestCorruptFeatureCacheIsRebuilt damages three feature-cache entries (a flipped byte,
// a truncated file, an entry made for another feature shape, as a cache from another base
// or size would hold) and trains again: the damage is detected, those entries are
// recomputed and rewritten, and the results equal the first run's.
func TestCorruptFeatureCacheIsRebuilt(t *testing.T) {
	data := t.TempDir()
	flowerSet(t, data, 6, "daisy", "roses")
	cfg := smallConfig(t, data, nil)
	cfg.Epochs = 2
	first, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	entries := cacheEntries(t, cfg.CacheDir)
	if len(entries) != 12 {
		t.Fatalf("%d cache entries after the first run, want 12", len(entries))
	}
	// An entry of another shape: train the same photos with the flatten head at 64x64
	// (2x2x1280 maps; the gap head's pooled entries are 1280 floats at any size) into
	// another cache.
	other := smallConfig(t, data, nil)
	other.Head, other.ImageSize, other.Epochs = "flatten", 64, 1
	if _, err := run(t, other); err != nil {
		t.Fatal(err)
	}
	foreign := cacheEntries(t, other.CacheDir)

	flip := readFile(t, entries[0])
	flip[len(flip)/2] ^= 0x40
	write(t, entries[0], flip)
	if err := os.Truncate(entries[1], 100); err != nil {
		t.Fatal(err)
	}
	write(t, entries[2], readFile(t, filepath.Join(filepath.Dir(foreign[0]), "..", filepath.Base(filepath.Dir(entries[2])), filepath.Base(entries[2]))))

	again := cfg
	again.Out = filepath.Join(t.TempDir(), "again")
	second, err := run(t, again)
	if err != nil {
		t.Fatal(err)
	}
	c := second.Metrics.Cache
	if c == nil || c.Corrupt != 3 || c.Writes != 3 || c.Misses != 3 {
		t.Errorf("cache stats %v; want 3 corrupt entries detected and rewritten", c)
	}
	for i := range first.Metrics.Epochs {
		a, b := first.Metrics.Epochs[i], second.Metrics.Epochs[i]
		if math.Abs(a.ValLoss-b.ValLoss) > 1e-5 || math.Abs(a.TrainLoss-b.TrainLoss) > 1e-5 || a.ValAcc != b.ValAcc {
			t.Errorf("epoch %d: %+v with a damaged cache, %+v before", i+1, b, a)
		}
	}
	if got := cacheEntries(t, cfg.CacheDir); len(got) != 12 {
		t.Errorf("%d cache entries after the rebuild, want 12", len(got))
	}
	t.Logf("damaged cache: stats %v; val loss %.6f vs %.6f", c, second.Metrics.FinalValLoss, first.Metrics.FinalValLoss)
}

// TestUnusableCacheDoesNotStopTraining: a cache folder that cannot be created, or a
// cache disk that fills up, costs speed, not the run: training finishes with a warning.
func TestUnusableCacheDoesNotStopTraining(t *testing.T) {
	data := t.TempDir()
	flowerSet(t, data, 4, "daisy", "roses")

	var logs logBuffer
	cfg := smallConfig(t, data, &logs)
	file := filepath.Join(t.TempDir(), "file")
	write(t, file, []byte("x"))
	cfg.CacheDir = filepath.Join(file, "cache")
	if _, err := run(t, cfg); err != nil {
		t.Fatalf("cache dir under a file: %v", err)
	}
	contains(t, "log", logs.String(), "feature cache unavailable; training without it", "not a directory")

	disk := mountTmpfs(t, "1m")
	logs = logBuffer{}
	cfg = smallConfig(t, data, &logs)
	cfg.CacheDir = filepath.Join(disk, "cache")
	if _, err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	fill(t, disk, 0)
	more := t.TempDir()
	flowerSet(t, more, 8, "daisy", "roses") // 4 new photos per class need new entries
	logs = logBuffer{}
	cfg = smallConfig(t, more, &logs)
	cfg.CacheDir = filepath.Join(disk, "cache")
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf("training with a full cache disk: %v", err)
	}
	contains(t, "log", logs.String(), "feature cache failed; training continues", "no space left on device")
	if res.Metrics.Cache == nil || res.Metrics.Cache.Errors == 0 {
		t.Errorf("cache stats %v; want errors counted", res.Metrics.Cache)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "feature cache") {
			t.Logf("log: %s", line)
		}
	}
}
