package serve

import (
	"fmt"
	"strconv"
)

// parseImage reads one [size][size][3] JSON array of numbers in 0..255 and
// returns it flattened in HWC order, which is what PredictPixels takes.
//
// It scans the bytes itself rather than using encoding/json because
// decoding into [][][]float32 allocates a slice header per pixel: for a
// body at the 64 MiB limit that is several hundred MiB per request. raw
// must already be valid JSON (the request as a whole was validated), so
// the scanner only has to check structure and types.
func parseImage(raw []byte, size int) ([]float32, error) {
	p := pixelScanner{b: raw, size: size}
	out := make([]float32, 0, size*size*3)
	shape := fmt.Sprintf("%s must have shape [%d][%d][3]", inputPixels, size, size)
	rows, err := p.list(func(y int) error {
		if y >= size {
			return fmt.Errorf("%s, got more than %d rows", shape, size)
		}
		cols, err := p.list(func(x int) error {
			if x >= size {
				return fmt.Errorf("%s, row %d has more than %d pixels", shape, y, size)
			}
			chans, err := p.list(func(c int) error {
				if c >= 3 {
					return fmt.Errorf("%s, pixel [%d][%d] has more than 3 channels", shape, y, x)
				}
				v, err := p.number()
				if err != nil {
					return err
				}
				// Negative or larger values mean the client already
				// preprocessed (e.g. to -1..1), which the signature does
				// itself; failing beats a silently wrong class.
				if v < 0 || v > 255 {
					return fmt.Errorf("%s pixel [%d][%d] has value %v; want 0..255", inputPixels, y, x, v)
				}
				out = append(out, v)
				return nil
			})
			if err == nil && chans != 3 {
				err = fmt.Errorf("%s, pixel [%d][%d] has %d channels", shape, y, x, chans)
			}
			return err
		})
		if err == nil && cols != size {
			err = fmt.Errorf("%s, row %d has %d pixels", shape, y, cols)
		}
		return err
	})
	if err == nil && rows != size {
		err = fmt.Errorf("%s, got %d rows", shape, rows)
	}
	if err == nil {
		p.space()
		if p.i != len(p.b) {
			err = p.typeError()
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// pixelScanner walks valid JSON expecting nested arrays of numbers.
type pixelScanner struct {
	b    []byte
	i    int
	size int // for messages only
}

func (p *pixelScanner) typeError() error {
	found := "end of input"
	if p.i < len(p.b) {
		found = fmt.Sprintf("%q", p.b[p.i])
	}
	// Valid JSON that is not an array of numbers: a string, object,
	// literal or a nesting level too few.
	return fmt.Errorf("%s must be a [%d][%d][3] array of numbers, found %s at offset %d", inputPixels, p.size, p.size, found, p.i)
}

func (p *pixelScanner) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// list reads "[e, e, ...]", calling elem for each element (which must
// consume it), and returns the element count.
func (p *pixelScanner) list(elem func(i int) error) (int, error) {
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '[' {
		return 0, p.typeError()
	}
	p.i++
	for n := 0; ; n++ {
		p.space()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			return n, nil
		}
		if n > 0 {
			if p.i >= len(p.b) || p.b[p.i] != ',' {
				return n, p.typeError()
			}
			p.i++
		}
		if err := elem(n); err != nil {
			return n, err
		}
	}
}

func (p *pixelScanner) number() (float32, error) {
	p.space()
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.i++
			continue
		}
		break
	}
	if start == p.i {
		return 0, p.typeError()
	}
	v, err := strconv.ParseFloat(string(p.b[start:p.i]), 32)
	if err != nil {
		// Valid JSON numbers fail here only when out of float32 range.
		return 0, fmt.Errorf("%s value %s: %w", inputPixels, p.b[start:p.i], err)
	}
	return float32(v), nil
}
