package report

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"slices"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
)

// EpochPoint is the summary of one finished training epoch.
type EpochPoint struct {
	Epoch     int     `json:"epoch"`
	TrainLoss float64 `json:"train_loss"`
	TrainAcc  float64 `json:"train_acc"`
	ValLoss   float64 `json:"val_loss"`
	ValAcc    float64 `json:"val_acc"`
	// Phase is "frozen" or "fine-tune"; it may be empty when the run has a
	// single phase.
	Phase string `json:"phase,omitempty"`
}

// Plot geometry. The two panels split the width evenly; margins leave room
// for the title and legend above and tick labels below/left of each plot.
const (
	plotWidth    = 1000
	plotHeight   = 420
	marginLeft   = 58
	marginRight  = 16
	marginTop    = 44
	marginBottom = 44
	lineWidth    = 2
	markerRadius = 3
	maxYTicks    = 6
	maxXTicks    = 10
)

// Each series has its own colour, distinct across both panels, so a reader
// comparing panels (and the tests) never confuse train loss with train accuracy.
var (
	colBackground = color.RGBA{255, 255, 255, 255}
	colAxis       = color.RGBA{0, 0, 0, 255}
	colGrid       = color.RGBA{232, 232, 232, 255}
	colText       = color.RGBA{0, 0, 0, 255}
	colPhase      = color.RGBA{120, 120, 120, 255}
	colTrainLoss  = color.RGBA{31, 119, 180, 255}
	colValLoss    = color.RGBA{255, 127, 14, 255}
	colTrainAcc   = color.RGBA{44, 160, 44, 255}
	colValAcc     = color.RGBA{214, 39, 40, 255}
)

// series is one curve: y values indexed like the epochs they belong to.
type series struct {
	name string
	col  color.RGBA
	ys   []float64
}

// phaseMark is a boundary between two training phases, at a fractional epoch.
type phaseMark struct {
	epoch float64
	label string
}

// PlotCurves renders learning curves to a PNG at path: a loss panel and an
// accuracy panel, each with train and validation series, axes, tick labels,
// a title and a legend. A dashed vertical line marks every change of Phase.
// Non-finite values are skipped, leaving a gap in the curve. The file is
// replaced atomically so a viewer polling it during training never sees a
// half-written image.
func PlotCurves(path string, points []EpochPoint) error {
	if len(points) == 0 {
		return errors.New("plot curves: no epochs to plot")
	}
	img := renderCurves(points)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("plot curves: encode png: %w", err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("plot curves: %w", err)
	}
	return nil
}

// renderCurves draws both panels; points must not be empty.
func renderCurves(points []EpochPoint) *image.RGBA {
	// Callers may append epochs out of order (e.g. after a resume); sorting a
	// copy keeps the curves monotone in x without mutating their slice.
	pts := slices.Clone(points)
	slices.SortStableFunc(pts, func(a, b EpochPoint) int { return a.Epoch - b.Epoch })

	epochs := make([]float64, len(pts))
	var trainLoss, valLoss, trainAcc, valAcc []float64
	var marks []phaseMark
	for i, p := range pts {
		epochs[i] = float64(p.Epoch)
		trainLoss = append(trainLoss, p.TrainLoss)
		valLoss = append(valLoss, p.ValLoss)
		trainAcc = append(trainAcc, p.TrainAcc)
		valAcc = append(valAcc, p.ValAcc)
		// Only a change between two named phases is a real boundary; an
		// empty phase means "unknown", not a phase of its own.
		if i > 0 && p.Phase != "" && pts[i-1].Phase != "" && p.Phase != pts[i-1].Phase {
			marks = append(marks, phaseMark{
				epoch: (float64(pts[i-1].Epoch) + float64(p.Epoch)) / 2,
				label: p.Phase,
			})
		}
	}
	xAxis := epochAxis(pts[0].Epoch, pts[len(pts)-1].Epoch, maxXTicks)

	c := newCanvas(plotWidth, plotHeight, colBackground)
	half := plotWidth / 2
	drawPanel(c, image.Rect(0, 0, half, plotHeight), "Loss", epochs, xAxis, marks, []series{
		{name: "train", col: colTrainLoss, ys: trainLoss},
		{name: "val", col: colValLoss, ys: valLoss},
	})
	drawPanel(c, image.Rect(half, 0, plotWidth, plotHeight), "Accuracy", epochs, xAxis, marks, []series{
		{name: "train", col: colTrainAcc, ys: trainAcc},
		{name: "val", col: colValAcc, ys: valAcc},
	})
	return c.img
}

// drawPanel draws one titled chart inside panel.
func drawPanel(c *canvas, panel image.Rectangle, title string, xs []float64, xAxis axisRange, marks []phaseMark, ss []series) {
	plot := image.Rect(panel.Min.X+marginLeft, panel.Min.Y+marginTop, panel.Max.X-marginRight, panel.Max.Y-marginBottom)
	lo, hi := finiteRange(ss)
	yAxis := valueAxis(lo, hi, maxYTicks)

	px := func(x float64) int { return plot.Min.X + int(math.Round(xAxis.fraction(x)*float64(plot.Dx()-1))) }
	py := func(y float64) int { return plot.Max.Y - 1 - int(math.Round(yAxis.fraction(y)*float64(plot.Dy()-1))) }

	// Grid and tick labels first so that curves are drawn on top of them.
	for _, v := range yAxis.ticks {
		y := py(v)
		c.line(plot.Min.X, y, plot.Max.X-1, y, 1, colGrid)
		c.line(plot.Min.X-4, y, plot.Min.X-1, y, 1, colAxis)
		c.textRight(plot.Min.X-7, y+4, yAxis.label(v), colText)
	}
	for _, v := range xAxis.ticks {
		x := px(v)
		c.line(x, plot.Max.Y, x, plot.Max.Y+3, 1, colAxis)
		c.textCentered(x, plot.Max.Y+16, xAxis.label(v), colText)
	}
	c.line(plot.Min.X, plot.Min.Y, plot.Min.X, plot.Max.Y, 1, colAxis)
	c.line(plot.Min.X, plot.Max.Y, plot.Max.X-1, plot.Max.Y, 1, colAxis)
	c.textCentered((plot.Min.X+plot.Max.X)/2, plot.Max.Y+34, "epoch", colText)

	for _, m := range marks {
		x := px(m.epoch)
		c.dashedVLine(x, plot.Min.Y, plot.Max.Y-1, 5, 4, colPhase)
		c.text(x+4, plot.Min.Y+12, m.label, colPhase)
	}

	for _, s := range ss {
		drawSeries(c, s, xs, px, py)
	}

	// Title and legend live above the plot area so they can never hide data.
	mid := (panel.Min.X + panel.Max.X) / 2
	c.textCentered(mid, panel.Min.Y+16, title, colText)
	drawLegend(c, mid, panel.Min.Y+34, ss)
}

// drawSeries connects consecutive finite points; a point with no finite
// neighbour gets a marker, since a line needs two ends to be visible.
func drawSeries(c *canvas, s series, xs []float64, px, py func(float64) int) {
	// The pen extends right/down from its anchor; offsetting by half its
	// width centres the stroke on the true data position.
	const off = lineWidth / 2
	for i, y := range s.ys {
		if !finite(y) {
			continue
		}
		prevOK := i > 0 && finite(s.ys[i-1])
		nextOK := i+1 < len(s.ys) && finite(s.ys[i+1])
		if nextOK {
			c.line(px(xs[i])-off, py(y)-off, px(xs[i+1])-off, py(s.ys[i+1])-off, lineWidth, s.col)
		}
		if !prevOK && !nextOK {
			c.marker(px(xs[i]), py(y), markerRadius, s.col)
		}
	}
}

// drawLegend draws "── name" entries centred on x with baseline y.
func drawLegend(c *canvas, x, y int, ss []series) {
	const swatch, gap, spacing = 18, 4, 16
	total := 0
	for i, s := range ss {
		total += swatch + gap + c.textWidth(s.name)
		if i > 0 {
			total += spacing
		}
	}
	left := x - total/2
	for _, s := range ss {
		c.fillRect(image.Rect(left, y-5, left+swatch, y-5+lineWidth), s.col)
		left += swatch + gap
		c.text(left, y, s.name, colText)
		left += c.textWidth(s.name) + spacing
	}
}

// finiteRange is the smallest interval holding every finite value of ss; it
// returns NaNs when there is none.
func finiteRange(ss []series) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, v := range s.ys {
			if finite(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if lo > hi {
		return math.NaN(), math.NaN()
	}
	return lo, hi
}

func finite(v float64) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0)
}
