package report

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPlotCurves(t *testing.T) {
	twelve := make([]EpochPoint, 12)
	for i := range twelve {
		e := float64(i)
		phase := "frozen"
		if i >= 6 {
			phase = "fine-tune"
		}
		twelve[i] = EpochPoint{
			Epoch:     i + 1,
			TrainLoss: 1.5 * math.Exp(-e/4),
			ValLoss:   1.6*math.Exp(-e/5) + 0.05,
			TrainAcc:  0.5 + 0.45*(1-math.Exp(-e/3)),
			ValAcc:    0.48 + 0.4*(1-math.Exp(-e/4)),
			Phase:     phase,
		}
	}
	withGaps := []EpochPoint{
		{Epoch: 1, TrainLoss: 1.0, TrainAcc: 0.5, ValLoss: math.NaN(), ValAcc: math.Inf(1)},
		{Epoch: 2, TrainLoss: 0.8, TrainAcc: 0.6, ValLoss: 0.9, ValAcc: 0.55},
		{Epoch: 3, TrainLoss: math.NaN(), TrainAcc: 0.7, ValLoss: 0.85, ValAcc: math.NaN()},
		{Epoch: 4, TrainLoss: 0.5, TrainAcc: 0.75, ValLoss: 0.8, ValAcc: 0.62},
	}

	tests := []struct {
		name      string
		points    []EpochPoint
		wantPhase bool // whether a phase boundary line must be drawn
		minCurve  int  // train loss pixels at least: the curve, not only its legend swatch
		leftCols  []color.RGBA
		rightCols []color.RGBA
	}{
		{
			name:      "single epoch draws markers",
			minCurve:  40,
			points:    []EpochPoint{{Epoch: 1, TrainLoss: 0.9, TrainAcc: 0.7, ValLoss: 1.1, ValAcc: 0.65}},
			leftCols:  []color.RGBA{colTrainLoss, colValLoss},
			rightCols: []color.RGBA{colTrainAcc, colValAcc},
		},
		{
			name:      "twelve epochs with phase change",
			points:    twelve,
			minCurve:  600,
			wantPhase: true,
			leftCols:  []color.RGBA{colTrainLoss, colValLoss},
			rightCols: []color.RGBA{colTrainAcc, colValAcc},
		},
		{
			name:      "non-finite values are skipped",
			points:    withGaps,
			minCurve:  300,
			leftCols:  []color.RGBA{colTrainLoss, colValLoss},
			rightCols: []color.RGBA{colTrainAcc, colValAcc},
		},
		{
			name: "all validation values missing",
			points: []EpochPoint{
				{Epoch: 1, TrainLoss: 1, TrainAcc: 0.5, ValLoss: math.NaN(), ValAcc: math.NaN()},
				{Epoch: 2, TrainLoss: 0.7, TrainAcc: 0.6, ValLoss: math.NaN(), ValAcc: math.NaN()},
			},
			leftCols:  []color.RGBA{colTrainLoss},
			rightCols: []color.RGBA{colTrainAcc},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "curves.png")
			if err := PlotCurves(path, tt.points); err != nil {
				t.Fatalf("PlotCurves: %v", err)
			}
			img := decodePNG(t, path)
			if got := img.Bounds().Size(); got != image.Pt(plotWidth, plotHeight) {
				t.Fatalf("size = %v, want %dx%d", got, plotWidth, plotHeight)
			}
			half := plotWidth / 2
			left := image.Rect(0, 0, half, plotHeight)
			right := image.Rect(half, 0, plotWidth, plotHeight)
			for _, c := range tt.leftCols {
				if n := countColour(img, left, c); n == 0 {
					t.Errorf("colour %v: no pixels in left panel", c)
				}
				if n := countColour(img, right, c); n != 0 {
					t.Errorf("colour %v: %d pixels in right panel, want 0", c, n)
				}
			}
			for _, c := range tt.rightCols {
				if n := countColour(img, right, c); n == 0 {
					t.Errorf("colour %v: no pixels in right panel", c)
				}
				if n := countColour(img, left, c); n != 0 {
					t.Errorf("colour %v: %d pixels in left panel, want 0", c, n)
				}
			}
			// The curves themselves, not only the legend's swatches, must be drawn:
			// a swatch is a few dozen pixels.
			for _, c := range append(slices.Clone(tt.leftCols), tt.rightCols...) {
				t.Logf("colour %v: %d pixels", c, countColour(img, image.Rect(0, 0, plotWidth, plotHeight), c))
			}
			if n := countColour(img, left, colTrainLoss); n < tt.minCurve {
				t.Errorf("train loss: %d pixels, want at least %d", n, tt.minCurve)
			}
			gotPhase := countColour(img, image.Rect(0, 0, plotWidth, plotHeight), colPhase) > 0
			if gotPhase != tt.wantPhase {
				t.Errorf("phase line drawn = %v, want %v", gotPhase, tt.wantPhase)
			}
		})
	}
}

func TestPlotCurvesErrors(t *testing.T) {
	pts := []EpochPoint{{Epoch: 1, TrainLoss: 1, TrainAcc: 0.5, ValLoss: 1, ValAcc: 0.5}}
	tests := []struct {
		name    string
		path    string
		points  []EpochPoint
		wantErr string
	}{
		{"empty slice", filepath.Join(t.TempDir(), "x.png"), nil, "no epochs"},
		{"missing directory", filepath.Join(t.TempDir(), "missing", "x.png"), pts, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := PlotCurves(tt.path, tt.points)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("PlotCurves error = %v, want containing %q", err, tt.wantErr)
			}
			if _, statErr := os.Stat(tt.path); !os.IsNotExist(statErr) {
				t.Errorf("output file exists after error (stat: %v)", statErr)
			}
		})
	}
}

func TestPlotCurvesReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "curves.png")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	pts := []EpochPoint{{Epoch: 1, TrainLoss: 1, TrainAcc: 0.5, ValLoss: 1, ValAcc: 0.5}}
	if err := PlotCurves(path, pts); err != nil {
		t.Fatalf("PlotCurves: %v", err)
	}
	decodePNG(t, path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the plot (temp file left behind?)", len(entries))
	}
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return img
}

func countColour(img image.Image, r image.Rectangle, want color.RGBA) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)).(color.RGBA) == want {
				n++
			}
		}
	}
	return n
}
