package report

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	stddraw "image/draw"
	"image/png"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

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

// Image size in pixels; the two panels split the width evenly.
const (
	plotWidth  = 1000
	plotHeight = 420
	plotDPI    = 96
)

// Each series has its own colour, distinct across both panels, so a reader
// comparing panels (and the tests) never confuse train loss with train accuracy.
var (
	colPhase     = color.RGBA{148, 103, 189, 255}
	colTrainLoss = color.RGBA{31, 119, 180, 255}
	colValLoss   = color.RGBA{255, 127, 14, 255}
	colTrainAcc  = color.RGBA{44, 160, 44, 255}
	colValAcc    = color.RGBA{214, 39, 40, 255}
)

// series is one curve: y values indexed like the epochs they belong to.
type series struct {
	name string
	col  color.RGBA
	ys   []float64
}

// PlotCurves renders learning curves to a PNG at path with gonum.org/v1/plot: a loss
// panel and an accuracy panel, each with train and validation series, axes, a title and
// a legend. A dashed vertical line marks every change of Phase. Non-finite values are
// skipped, leaving a gap in the curve. The file is replaced atomically so a viewer
// polling it during training never sees a half-written image.
func PlotCurves(path string, points []EpochPoint) error {
	if len(points) == 0 {
		return errors.New("plot curves: no epochs to plot")
	}
	// Callers may append epochs out of order (e.g. after a resume); sorting a
	// copy keeps the curves monotone in x without mutating their slice.
	pts := slices.Clone(points)
	slices.SortStableFunc(pts, func(a, b EpochPoint) int { return a.Epoch - b.Epoch })
	epochs := make([]float64, len(pts))
	var trainLoss, valLoss, trainAcc, valAcc, marks []float64
	for i, p := range pts {
		epochs[i] = float64(p.Epoch)
		trainLoss, valLoss = append(trainLoss, p.TrainLoss), append(valLoss, p.ValLoss)
		trainAcc, valAcc = append(trainAcc, p.TrainAcc), append(valAcc, p.ValAcc)
		// Only a change between two named phases is a real boundary; an
		// empty phase means "unknown", not a phase of its own.
		if i > 0 && p.Phase != "" && pts[i-1].Phase != "" && p.Phase != pts[i-1].Phase {
			marks = append(marks, (float64(pts[i-1].Epoch)+float64(p.Epoch))/2)
		}
	}
	loss, err := panel("Loss", epochs, marks, []series{{"train", colTrainLoss, trainLoss}, {"val", colValLoss, valLoss}})
	if err != nil {
		return err
	}
	acc, err := panel("Accuracy", epochs, marks, []series{{"train", colTrainAcc, trainAcc}, {"val", colValAcc, valAcc}})
	if err != nil {
		return err
	}
	// Each panel gets its own canvas: a plot's clipping would hide a second one drawn on
	// the same canvas.
	out := image.NewRGBA(image.Rect(0, 0, plotWidth, plotHeight))
	for i, p := range []*plot.Plot{loss, acc} {
		c := vgimg.NewWith(vgimg.UseWH(plotWidth/2*vg.Inch/plotDPI, plotHeight*vg.Inch/plotDPI), vgimg.UseDPI(plotDPI))
		p.Draw(draw.New(c))
		stddraw.Draw(out, image.Rect(i*plotWidth/2, 0, (i+1)*plotWidth/2, plotHeight), c.Image(), image.Point{}, stddraw.Src)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		return fmt.Errorf("plot curves: encode png: %w", err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("plot curves: %w", err)
	}
	return nil
}

// panel is one titled chart: each series as lines between consecutive finite points (a
// lone finite point gets a marker), phase boundaries as dashed vertical lines.
func panel(title string, xs, marks []float64, ss []series) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		var legend plot.Thumbnailer
		for _, seg := range finiteRuns(xs, s.ys) {
			for _, pt := range seg {
				lo, hi = math.Min(lo, pt.Y), math.Max(hi, pt.Y)
			}
			if len(seg) == 1 {
				sc, err := plotter.NewScatter(seg)
				if err != nil {
					return nil, fmt.Errorf("plot curves: %w", err)
				}
				sc.Color, sc.Shape, sc.Radius = s.col, draw.CircleGlyph{}, vg.Points(3)
				p.Add(sc)
				legend = sc
				continue
			}
			l, err := plotter.NewLine(seg)
			if err != nil {
				return nil, fmt.Errorf("plot curves: %w", err)
			}
			l.Color, l.Width = s.col, vg.Points(2)
			p.Add(l)
			legend = l
		}
		if legend != nil {
			p.Legend.Add(s.name, legend)
		}
	}
	if lo > hi { // nothing finite: an empty 0..1 panel
		lo, hi = 0, 1
	}
	for _, x := range marks {
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: lo}, {X: x, Y: hi}})
		if err != nil {
			return nil, fmt.Errorf("plot curves: %w", err)
		}
		l.Color, l.Width, l.Dashes = colPhase, vg.Points(1.5), []vg.Length{vg.Points(5), vg.Points(4)}
		p.Add(l)
	}
	p.X.Min, p.X.Max = xs[0]-0.5, xs[len(xs)-1]+0.5
	p.X.Tick.Marker = plot.TickerFunc(epochTicks)
	return p, nil
}

// finiteRuns splits (xs, ys) into runs of consecutive finite points.
func finiteRuns(xs, ys []float64) []plotter.XYs {
	var runs []plotter.XYs
	var cur plotter.XYs
	for i, y := range ys {
		if math.IsNaN(y) || math.IsInf(y, 0) {
			if len(cur) > 0 {
				runs, cur = append(runs, cur), nil
			}
			continue
		}
		cur = append(cur, plotter.XY{X: xs[i], Y: y})
	}
	if len(cur) > 0 {
		runs = append(runs, cur)
	}
	return runs
}

// epochTicks labels whole epochs only, at most about ten of them.
func epochTicks(lo, hi float64) []plot.Tick {
	first, last := int(math.Ceil(lo)), int(math.Floor(hi))
	step := max(1, (last-first+9)/10)
	var ticks []plot.Tick
	for e := first; e <= last; e++ {
		t := plot.Tick{Value: float64(e)}
		if (e-first)%step == 0 {
			t.Label = fmt.Sprint(e)
		}
		ticks = append(ticks, t)
	}
	return ticks
}
