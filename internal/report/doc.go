// Package report turns training results into artefacts a person reads:
// learning-curve plots (PNG), per-class classification metrics with a
// confusion matrix, and a live progress line for each training epoch.
//
// The package is deliberately pure Go (no cgo, no TensorFlow) so that it can
// be tested and reused without the TensorFlow C library being installed;
// callers convert tensors to plain Go values before handing them over.
package report
