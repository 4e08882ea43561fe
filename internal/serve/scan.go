package serve

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// savedModelFile marks a version directory as a complete SavedModel.
const savedModelFile = "saved_model.pb"

// diskVersion is one BASE_DIR/<version> directory that looks servable.
type diskVersion struct {
	version int64
	dir     string
	// stamp changes whenever the export is rewritten, so that a version that
	// failed to load is retried only once something on disk changed.
	stamp string
}

// scanVersions lists the version directories of base, newest first. Entries
// whose names start with "." or are not non-negative integers are skipped:
// exporters write into such temporary directories and rename them into place,
// and TF Serving ignores them the same way. Directories without
// saved_model.pb are skipped too, since they are not (yet) loadable.
func scanVersions(base string) ([]diskVersion, error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, fmt.Errorf("scan model versions in %s: %w", base, err)
	}
	var out []diskVersion
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		v, err := strconv.ParseInt(name, 10, 64)
		// "+3" and "03" parse but are not canonical version names; accepting
		// them would allow two directories for one version.
		if err != nil || v < 0 || strconv.FormatInt(v, 10) != name {
			continue
		}
		dir := filepath.Join(base, name)
		st, err := os.Stat(dir) // follows symlinks, as TF Serving does
		if err != nil || !st.IsDir() {
			continue
		}
		pb, err := os.Stat(filepath.Join(dir, savedModelFile))
		if err != nil || !pb.Mode().IsRegular() {
			continue
		}
		stamp := fmt.Sprintf("%d/%d/%d", st.ModTime().UnixNano(), pb.ModTime().UnixNano(), pb.Size())
		if vars, err := os.Stat(filepath.Join(dir, "variables")); err == nil {
			stamp += fmt.Sprintf("/%d", vars.ModTime().UnixNano())
		}
		out = append(out, diskVersion{version: v, dir: dir, stamp: stamp})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version > out[j].version })
	return out, nil
}
