package train

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
)

// TestSpillStore: rows come back as they were put, from concurrent writers and readers;
// an id never put is a miss; the file leaves no name in the cache folder, even while open.
func TestSpillStore(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpill(dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 && s.name == "" {
		t.Fatalf("the spill file is still listed in its folder: %v", left)
	}
	row := func(i int) []float32 { return []float32{float32(i), -1, 0.5, float32(i) * 1e-3, 7} }
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < 400; i += 4 {
				if err := s.put(fmt.Sprint(i), row(i)); err != nil {
					t.Error(err)
				}
				if err := s.put(fmt.Sprint(i), row(i+1)); err != nil { // a second put keeps the first row
					t.Error(err)
				}
				got := make([]float32, 5)
				if hit, err := s.get(fmt.Sprint(i), got); !hit || err != nil || !slices.Equal(got, row(i)) {
					t.Errorf("get %d = %v, %v, %v; want %v", i, got, hit, err, row(i))
				}
			}
		}(w)
	}
	wg.Wait()
	if hit, err := s.get("never", make([]float32, 5)); hit || err != nil {
		t.Fatalf("get of an id never put: %v, %v", hit, err)
	}
	if err := s.put("short", []float32{1}); err == nil {
		t.Fatal("put of a short row was accepted")
	}
	if hit, err := s.get("0", make([]float32, 4)); hit || err == nil {
		t.Fatalf("get into a short row: %v, %v; want an error", hit, err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("the spill file outlived close: %v", left)
	}
}
