package tfops

import (
	"bytes"
	"fmt"
	"io"
	"unsafe"

	tf "github.com/galeone/tensorflow/tensorflow/go"
)

// The bindings' NewTensor and Value walk Go values by reflection, which costs more than
// the model itself for 10 MB batches; these helpers copy raw bytes instead.

// Float32Bytes views v as its bytes in the host's order, without copying (nil for an
// empty v): for tensors here, and for files read back by the process that wrote them.
func Float32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*4)
}

func numElements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// Float32Tensor copies data into a new float32 tensor of the given shape.
func Float32Tensor(data []float32, shape ...int64) (*tf.Tensor, error) {
	if n := numElements(shape); n != int64(len(data)) {
		return nil, fmt.Errorf("%w: %d floats for shape %v (%d elements)", ErrShape, len(data), shape, n)
	}
	t, err := tf.ReadTensor(tf.Float, shape, bytes.NewReader(Float32Bytes(data)))
	if err != nil {
		return nil, fmt.Errorf("tfops: make float tensor %v: %w", shape, err)
	}
	return t, nil
}

// Int64Tensor copies data into a new int64 tensor of the given shape.
func Int64Tensor(data []int64, shape ...int64) (*tf.Tensor, error) {
	if n := numElements(shape); n != int64(len(data)) {
		return nil, fmt.Errorf("%w: %d ints for shape %v", ErrShape, len(data), shape)
	}
	var raw []byte
	if len(data) > 0 {
		raw = unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), len(data)*8)
	}
	t, err := tf.ReadTensor(tf.Int64, shape, bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("tfops: make int64 tensor %v: %w", shape, err)
	}
	return t, nil
}

type fixedWriter struct {
	buf []byte
	n   int
}

func (w *fixedWriter) Write(p []byte) (int, error) {
	if len(p) > len(w.buf)-w.n {
		return 0, io.ErrShortWrite
	}
	w.n += copy(w.buf[w.n:], p)
	return len(p), nil
}

// CopyFloat32 copies a float32 tensor's values into dst, which must have exactly its size.
func CopyFloat32(t *tf.Tensor, dst []float32) error {
	if t.DataType() != tf.Float {
		return fmt.Errorf("%w: tensor is %v, want float32", ErrShape, t.DataType())
	}
	if n := numElements(t.Shape()); n != int64(len(dst)) {
		return fmt.Errorf("%w: tensor %v has %d elements, buffer %d", ErrShape, t.Shape(), n, len(dst))
	}
	w := &fixedWriter{buf: Float32Bytes(dst)}
	if _, err := t.WriteContentsTo(w); err != nil {
		return fmt.Errorf("tfops: read tensor: %w", err)
	}
	return nil
}

// Float32s returns a float32 tensor's values as a new slice.
func Float32s(t *tf.Tensor) ([]float32, error) {
	dst := make([]float32, numElements(t.Shape()))
	return dst, CopyFloat32(t, dst)
}

// Scalar returns the value of a scalar float32 tensor.
func Scalar(t *tf.Tensor) (float32, error) {
	v, ok := t.Value().(float32)
	if !ok {
		return 0, fmt.Errorf("%w: want a float32 scalar, got %v %v", ErrShape, t.DataType(), t.Shape())
	}
	return v, nil
}
