// Package savedmodel loads the MobileNetV2 base SavedModel that scripts/export_base_model.py
// writes, and (with the export issue) writes tfflowers models for TensorFlow Serving.
//
// # Error handling
//
// Every exported function returns an error; nothing panics across the package boundary.
// Problems with a model directory are reported with the directory, what was expected
// and what to do, and match ErrNotSavedModel, ErrNotBase or ErrImageSize with errors.Is.
//
// # Ownership
//
// A Base owns its TensorFlow session and graph: call Close when done.
//
// # Concurrency
//
// A Base's session may be run from several goroutines; adding ops to its graph may not
// happen concurrently with anything else.
package savedmodel
