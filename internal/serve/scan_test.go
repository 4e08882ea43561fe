package serve

import (
	"os"
	"path/filepath"
	"testing"
)

func TestScanVersions(t *testing.T) {
	base := t.TempDir()
	for _, v := range []int64{3, 10, 0} {
		writeVersion(t, base, v)
	}
	for _, name := range []string{".5", "abc", "07", "+8", "-1", "12"} {
		dir := filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if name != "12" { // 12 has no saved_model.pb yet: not loadable
			os.WriteFile(filepath.Join(dir, savedModelFile), nil, 0o644)
		}
	}
	os.WriteFile(filepath.Join(base, "20"), nil, 0o644) // a file, not a dir
	got, err := scanVersions(base)
	if err != nil {
		t.Fatal(err)
	}
	var nums []int64
	for _, dv := range got {
		nums = append(nums, dv.version)
		if dv.stamp == "" || dv.dir == "" {
			t.Errorf("version %d: empty stamp or dir", dv.version)
		}
	}
	if want := []int64{10, 3, 0}; len(nums) != len(want) || nums[0] != 10 || nums[1] != 3 || nums[2] != 0 {
		t.Errorf("versions %v, want %v", nums, want)
	}
	if _, err := scanVersions(filepath.Join(base, "missing")); err == nil {
		t.Error("missing base dir: no error")
	}
}
