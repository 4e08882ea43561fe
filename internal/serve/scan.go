package serve

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/tfflowers/tfflowers/internal/contract"
)

// savedModelFile marks a version directory as a complete SavedModel.
const savedModelFile = contract.SavedModelFile

// diskVersion is one BASE_DIR/<version> directory that looks servable.
type diskVersion struct {
	version int64
	dir     string
	// stamp changes whenever the export is rewritten, so that a version that
	// failed to load is retried only once something on disk changed.
	stamp string
}

// scanVersions lists the servable version directories of base, newest first,
// by contract.Versions, TF Serving's rule that the exporter and predict share:
// dot-prefixed temporaries, non-canonical names ("03", "+3") and folders
// without saved_model.pb (not yet loadable) are skipped.
func scanVersions(base string) ([]diskVersion, error) {
	found, err := contract.Versions(base)
	if err != nil {
		return nil, fmt.Errorf("scan %w", err)
	}
	out := make([]diskVersion, 0, len(found))
	for _, v := range found {
		st, err := os.Stat(v.Dir)
		pb, err2 := os.Stat(filepath.Join(v.Dir, savedModelFile))
		if err != nil || err2 != nil {
			continue // removed since the listing
		}
		stamp := fmt.Sprintf("%d/%d/%d", st.ModTime().UnixNano(), pb.ModTime().UnixNano(), pb.Size())
		if vars, err := os.Stat(filepath.Join(v.Dir, contract.VariablesDir)); err == nil {
			stamp += fmt.Sprintf("/%d", vars.ModTime().UnixNano())
		}
		out = append(out, diskVersion{version: v.Num, dir: v.Dir, stamp: stamp})
	}
	slices.Reverse(out)
	return out, nil
}
