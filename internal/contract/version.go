package contract

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// SavedModelFile marks a folder as a complete SavedModel; VariablesDir holds its weights.
const (
	SavedModelFile = "saved_model.pb"
	VariablesDir   = "variables"
)

// ParseVersion applies TF Serving's rule for a version folder's name: a
// non-negative decimal int64 written canonically. "+3", "03", "-1", "3.0",
// " 3" and hidden names (an export in progress) are not versions: accepting
// "03" beside "3" would give one version two folders.
func ParseVersion(name string) (int64, bool) {
	v, err := strconv.ParseInt(name, 10, 64)
	if err != nil || v < 0 || strconv.FormatInt(v, 10) != name {
		return 0, false
	}
	return v, true
}

// VersionDir is BASE/<version>.
func VersionDir(base string, version int64) string {
	return filepath.Join(base, strconv.FormatInt(version, 10))
}

// Version is one servable version folder.
type Version struct {
	Num int64
	Dir string
}

// Versions lists the servable versions of a model base path, ascending: the
// folders (symlinks followed, as TF Serving does) whose names ParseVersion
// accepts and that hold a regular saved_model.pb. The serving side and the
// exporter's "newest version" both use this list, so `predict --model BASE`
// and `serve` pick the same version.
func Versions(base string) ([]Version, error) {
	names, err := VersionNames(base)
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, v := range names {
		dir := VersionDir(base, v)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		if pb, err := os.Stat(filepath.Join(dir, SavedModelFile)); err != nil || !pb.Mode().IsRegular() {
			continue
		}
		out = append(out, Version{Num: v, Dir: dir})
	}
	return out, nil
}

// VersionNames lists every entry of base whose name is a version, complete or
// not, ascending. An exporter picking the next free number must count them all.
func VersionNames(base string) ([]int64, error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, fmt.Errorf("model versions in %s: %w", base, err)
	}
	var out []int64
	for _, e := range entries {
		if v, ok := ParseVersion(e.Name()); ok {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}
