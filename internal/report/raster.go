package report

import (
	"image"
	"image/color"
	"image/draw"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// canvas wraps an RGBA image with the few drawing primitives the plots need.
// Lines are drawn without anti-aliasing on purpose: every series pixel then
// has exactly its series colour, which keeps the PNG small and lets tests
// locate series by colour.
type canvas struct {
	img  *image.RGBA
	face font.Face
}

func newCanvas(w, h int, bg color.RGBA) *canvas {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(bg), image.Point{}, draw.Src)
	return &canvas{img: img, face: basicfont.Face7x13}
}

// set ignores points outside the image so callers need not clip.
func (c *canvas) set(x, y int, col color.RGBA) {
	if image.Pt(x, y).In(c.img.Rect) {
		c.img.SetRGBA(x, y, col)
	}
}

func (c *canvas) fillRect(r image.Rectangle, col color.RGBA) {
	draw.Draw(c.img, r.Intersect(c.img.Rect), image.NewUniform(col), image.Point{}, draw.Src)
}

// line draws a Bresenham line with a square pen of the given width.
func (c *canvas) line(x0, y0, x1, y1, width int, col color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		c.pen(x0, y0, width, col)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

// pen stamps a width×width square whose top-left corner is (x, y).
func (c *canvas) pen(x, y, width int, col color.RGBA) {
	for py := y; py < y+width; py++ {
		for px := x; px < x+width; px++ {
			c.set(px, py, col)
		}
	}
}

// dashedVLine draws a vertical dashed line from y0 down to y1.
func (c *canvas) dashedVLine(x, y0, y1, dash, gap int, col color.RGBA) {
	for y := y0; y <= y1; y += dash + gap {
		end := min(y+dash-1, y1)
		c.line(x, y, x, end, 1, col)
	}
}

// marker draws a filled square centred on (x, y); it is what makes a series
// with a single finite value visible at all.
func (c *canvas) marker(x, y, radius int, col color.RGBA) {
	c.fillRect(image.Rect(x-radius, y-radius, x+radius+1, y+radius+1), col)
}

// textWidth is the rendered width of s in pixels.
func (c *canvas) textWidth(s string) int {
	return font.MeasureString(c.face, s).Ceil()
}

// text draws s with its left end at x and its baseline at y.
func (c *canvas) text(x, y int, s string, col color.RGBA) {
	d := font.Drawer{
		Dst:  c.img,
		Src:  image.NewUniform(col),
		Face: c.face,
		Dot:  fixed.P(x, y),
	}
	d.DrawString(s)
}

// textCentered draws s horizontally centred on x.
func (c *canvas) textCentered(x, y int, s string, col color.RGBA) {
	c.text(x-c.textWidth(s)/2, y, s, col)
}

// textRight draws s so that it ends at x.
func (c *canvas) textRight(x, y int, s string, col color.RGBA) {
	c.text(x-c.textWidth(s), y, s, col)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}
