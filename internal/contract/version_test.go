package contract_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tfflowers/tfflowers/internal/contract"
)

func TestParseVersion(t *testing.T) {
	for name, want := range map[string]int64{
		"0": 0, "1": 1, "3": 3, "10": 10, "9223372036854775807": 9223372036854775807,
		"03": -1, "00": -1, "+3": -1, "-1": -1, "-0": -1, "3.0": -1, " 3": -1, "3 ": -1, "0x3": -1, "1e3": -1,
		"": -1, ".3": -1, ".tmp-export-1": -1, "abc": -1, "9223372036854775808": -1, "٣": -1,
	} {
		t.Run(name, func(t *testing.T) {
			v, ok := contract.ParseVersion(name)
			if want < 0 {
				if ok {
					t.Fatalf("ParseVersion(%q) = %d, want not a version", name, v)
				}
				return
			}
			if !ok || v != want {
				t.Fatalf("ParseVersion(%q) = %d, %v; want %d", name, v, ok, want)
			}
		})
	}
}

func TestVersions(t *testing.T) {
	base := t.TempDir()
	mk := func(name string, pb bool) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(base, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if pb {
			if err := os.WriteFile(filepath.Join(base, name, contract.SavedModelFile), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("0", true)
	mk("3", true)
	mk("10", true)
	mk("12", false) // claimed or half-copied: not servable, but taken
	mk("07", true)
	mk("+8", true)
	mk(".5", true)
	mk("abc", true)
	mk("20/"+contract.SavedModelFile, false)                                    // saved_model.pb is a folder: not servable
	if err := os.WriteFile(filepath.Join(base, "30"), nil, 0o644); err != nil { // a file named like a version
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "3"), filepath.Join(base, "40")); err != nil {
		t.Fatal(err)
	}
	got, err := contract.Versions(base)
	if err != nil {
		t.Fatal(err)
	}
	var nums []int64
	for _, v := range got {
		nums = append(nums, v.Num)
		if v.Dir != contract.VersionDir(base, v.Num) {
			t.Errorf("version %d: dir %q", v.Num, v.Dir)
		}
	}
	if want := []int64{0, 3, 10, 40}; !slices.Equal(nums, want) {
		t.Errorf("Versions = %v, want %v", nums, want)
	}
	names, err := contract.VersionNames(base)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{0, 3, 10, 12, 20, 30, 40}; !slices.Equal(names, want) {
		t.Errorf("VersionNames = %v, want %v", names, want)
	}
	if _, err := contract.Versions(filepath.Join(base, "missing")); err == nil {
		t.Error("missing base: no error")
	}
}
