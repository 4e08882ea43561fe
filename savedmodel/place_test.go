package savedmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tfflowers/tfflowers/internal/contract"
)

// built makes a finished export folder in base as Export does before placing it.
func built(t *testing.T, o ExportOptions, version int64, mark string) string {
	t.Helper()
	tmp, err := os.MkdirTemp(o.ModelBasePath, ".tmp-export-")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAsset(tmp, contract.SavedModelFile, []byte(mark)); err != nil {
		t.Fatal(err)
	}
	if err := writeInfo(tmp, o, version); err != nil {
		t.Fatal(err)
	}
	return tmp
}

func readInfo(t *testing.T, dir string) ExportInfo {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, contract.ExportMetaPath))
	if err != nil {
		t.Fatal(err)
	}
	var info ExportInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// TestPlaceVersionRace starts exports together that all picked the same number, as two
// `tfflowers export` processes started at once do. Without --version each must end up in
// its own version folder, recording its own number; with --version exactly one wins.
func TestPlaceVersionRace(t *testing.T) {
	for _, explicit := range []bool{false, true} {
		t.Run(fmt.Sprintf("explicit version %v", explicit), func(t *testing.T) {
			o := ExportOptions{ModelBasePath: t.TempDir(), Labels: []string{"a", "b"}, ImageSize: 8, Head: "gap"}
			if explicit {
				o.Version = 1
			}
			const n = 4
			tmps := make([]string, n)
			for i := range tmps {
				tmps[i] = built(t, o, 1, fmt.Sprint(i))
			}
			type placed struct {
				dir     string
				version int64
				err     error
			}
			got := make([]placed, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					d, v, err := placeVersion(tmps[i], o, 1)
					got[i] = placed{d, v, err}
				}()
			}
			close(start)
			wg.Wait()
			seen := map[int64]int{}
			for i, p := range got {
				if p.err != nil {
					if !explicit || !errors.Is(p.err, ErrVersionExists) {
						t.Errorf("writer %d: %v", i, p.err)
					}
					continue
				}
				if w, dup := seen[p.version]; dup {
					t.Fatalf("writers %d and %d both got version %d", w, i, p.version)
				}
				seen[p.version] = i
				mark, err := os.ReadFile(filepath.Join(p.dir, contract.SavedModelFile))
				if err != nil || string(mark) != fmt.Sprint(i) {
					t.Errorf("version %d holds %q (%v), want writer %d's model", p.version, mark, err, i)
				}
				if info := readInfo(t, p.dir); info.Version != p.version {
					t.Errorf("version folder %d records version %d", p.version, info.Version)
				}
			}
			want := n
			if explicit {
				want = 1
			}
			if len(seen) != want {
				t.Fatalf("%d writers placed a version, want %d: %v", len(seen), want, got)
			}
		})
	}
}

// TestPlaceVersionForce: --force over an existing version replaces it, and the
// new model is what the folder holds.
func TestPlaceVersionForce(t *testing.T) {
	o := ExportOptions{ModelBasePath: t.TempDir(), Version: 1, Force: true}
	first := built(t, o, 1, "old")
	if _, _, err := placeVersion(first, ExportOptions{ModelBasePath: o.ModelBasePath, Version: 1}, 1); err != nil {
		t.Fatal(err)
	}
	second := built(t, o, 1, "new")
	dir, _, err := placeVersion(second, o, 1)
	if err != nil {
		t.Fatal(err)
	}
	if mark, _ := os.ReadFile(filepath.Join(dir, contract.SavedModelFile)); string(mark) != "new" {
		t.Fatalf("forced version holds %q", mark)
	}
}

func TestPickVersion(t *testing.T) {
	base := t.TempDir()
	for _, name := range []string{"1", "3", "7.tmp", ".9", "05"} {
		os.Mkdir(filepath.Join(base, name), 0o755)
	}
	os.Mkdir(filepath.Join(base, "4"), 0o755) // claimed, no saved_model.pb yet: still taken
	for _, tc := range []struct {
		want    int64
		force   bool
		got     int64
		errIs   error
		anyFail bool
	}{
		{want: 0, got: 5}, {want: 2, got: 2}, {want: 3, errIs: ErrVersionExists}, {want: 3, force: true, got: 3}, {want: -1, anyFail: true},
	} {
		v, err := pickVersion(base, tc.want, tc.force)
		switch {
		case tc.errIs != nil && !errors.Is(err, tc.errIs), tc.anyFail && err == nil:
			t.Errorf("pickVersion(%d, force %v) = %d, %v; want an error", tc.want, tc.force, v, err)
		case tc.errIs == nil && !tc.anyFail && (err != nil || v != tc.got):
			t.Errorf("pickVersion(%d, force %v) = %d, %v; want %d", tc.want, tc.force, v, err, tc.got)
		}
	}
}

// An info value JSON cannot hold is an error, not an empty tfflowers_export.json.
func TestWriteInfoMarshalError(t *testing.T) {
	err := writeInfo(t.TempDir(), ExportOptions{Info: map[string]any{"final_val_accuracy": math.NaN()}}, 1)
	if err == nil || !strings.Contains(err.Error(), contract.ExportMetaPath) {
		t.Fatalf("writeInfo with NaN = %v, want an encode error naming %s", err, contract.ExportMetaPath)
	}
}
