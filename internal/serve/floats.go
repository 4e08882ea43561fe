package serve

import (
	"math"
	"strconv"
	"strings"
)

// tfFloats is a float32 list that encodes as TF Serving's JSON writer does
// (json_tensor.cc WriteDecimal): %g (six digits) when that reads back as the
// same float32, else %.9g; whole numbers get ".0" so that every value in a
// list reads as a float. Non-finite values, which TF Serving writes as the
// non-JSON NaN/Infinity, are written as null (softmax scores are finite).
type tfFloats []float32

func (f tfFloats) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(f)*12)
	b = append(b, '[')
	for i, v := range f {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTFFloat(b, v)
	}
	return append(b, ']'), nil
}

func appendTFFloat(b []byte, v float32) []byte {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return append(b, "null"...)
	}
	s := strconv.FormatFloat(float64(v), 'g', 6, 64)
	if back, err := strconv.ParseFloat(s, 32); err != nil || float32(back) != v {
		s = strconv.FormatFloat(float64(v), 'g', 9, 64)
	}
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return append(b, s...)
}
