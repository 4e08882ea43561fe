package cli

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/savedmodel"
	"github.com/tfflowers/tfflowers/tfops"
)

// predictResult is one line of `predict --json`.
type predictResult struct {
	File  string       `json:"file"`
	Top   []labelScore `json:"top,omitempty"`
	Error string       `json:"error,omitempty"`
}

type labelScore struct {
	Label string  `json:"label"`
	Score float32 `json:"score"`
}

func predictCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "predict",
		Usage:     "classify image files with an exported model (no Python needed)",
		ArgsUsage: "FILES_OR_DIRS...",
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "model", Required: true, Usage: "BASE_DIR (newest version) or BASE_DIR/<version>"},
			&ucli.IntFlag{Name: "top-k", Value: 3, Usage: "labels to print per image"},
			&ucli.IntFlag{Name: "batch-size", Value: 32, Usage: "images per model run"},
			&ucli.BoolFlag{Name: "json", Usage: "one JSON object per line"},
		}, threadFlags()...),
		Action: func(c *ucli.Context) error {
			if c.NArg() == 0 {
				return usagef("predict: give image files or folders")
			}
			if c.Int("batch-size") < 1 || c.Int("top-k") < 1 {
				return usagef("--batch-size and --top-k must be at least 1")
			}
			files, err := collectImages(c.Args().Slice())
			if err != nil {
				return &UsageError{Err: err}
			}
			m, err := savedmodel.LoadExport(c.String("model"), tfops.SessionConfig{IntraOpThreads: c.Int("intra-op-threads"), InterOpThreads: c.Int("inter-op-threads")})
			if err != nil {
				return classify(err)
			}
			defer m.Close()
			start := time.Now()
			failed := 0
			enc := json.NewEncoder(c.App.Writer)
			bs := c.Int("batch-size")
			for i := 0; i < len(files); i += bs {
				batch := files[i:min(i+bs, len(files))]
				results := predictBatch(c, m, batch, c.Int("top-k"))
				for _, r := range results {
					if r.Error != "" {
						failed++
						fmt.Fprintf(c.App.ErrWriter, "tfflowers: %s: %s\n", r.File, r.Error)
					}
					if c.Bool("json") {
						if err := enc.Encode(r); err != nil {
							return err
						}
					} else if r.Error == "" {
						parts := make([]string, len(r.Top))
						for j, t := range r.Top {
							parts[j] = fmt.Sprintf("%s %.4f", t.Label, t.Score)
						}
						fmt.Fprintf(c.App.Writer, "%s\t%s\n", r.File, strings.Join(parts, "\t"))
					}
				}
			}
			secs := time.Since(start).Seconds()
			if c.Bool("json") {
				fmt.Fprintf(c.App.ErrWriter, "%d images in %.2fs (%.1f images/s), %d failed\n", len(files), secs, float64(len(files))/secs, failed)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d images could not be classified", failed, len(files))
			}
			return nil
		},
	}
}

func predictBatch(c *ucli.Context, m *savedmodel.Exported, files []string, k int) []predictResult {
	out := make([]predictResult, len(files))
	var data [][]byte
	var idx []int
	for i, f := range files {
		out[i].File = f
		b, err := os.ReadFile(f)
		if err != nil {
			out[i].Error = err.Error()
			continue
		}
		data = append(data, b)
		idx = append(idx, i)
	}
	if len(data) == 0 {
		return out
	}
	scores, _, _, errs, err := m.Predict(c.Context, data)
	for j, i := range idx {
		switch {
		case err != nil:
			out[i].Error = err.Error()
		case errs[j] != nil:
			out[i].Error = "cannot decode image: " + firstLine(errs[j].Error())
		default:
			out[i].Top = topK(scores[j], m.Labels(), k)
		}
	}
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func topK(scores []float32, labels []string, k int) []labelScore {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return scores[order[a]] > scores[order[b]] })
	res := make([]labelScore, 0, k)
	for _, i := range order[:min(k, len(order))] {
		res = append(res, labelScore{Label: labels[i], Score: scores[i]})
	}
	return res
}

// collectImages expands folders (recursively, image extensions only) and keeps files as given.
func collectImages(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("predict: %w", err)
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && pipeline.HasImageExt(p) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("predict: %w", err)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("predict: no image files in %v", args)
	}
	return files, nil
}
