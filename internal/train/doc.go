// Package train runs tfflowers' transfer learning: it joins the data pipeline, the base
// model and the training graph into epochs, with the bottleneck cache, validation,
// checkpoints, --resume, early stopping and the run's outputs (metrics.json, curves.png,
// labels.txt).
//
// # Error handling
//
// Run returns an error for anything that stops training; bad inputs are reported before
// any training starts and match the pipeline's and savedmodel's sentinels. When the
// context is cancelled (SIGINT/SIGTERM), Run finishes the step in flight, saves a
// checkpoint and returns ErrInterrupted.
//
// # Ownership
//
// Run owns every TensorFlow session it opens and closes them before returning.
//
// # Concurrency
//
// One Run at a time per output directory: Run locks OUT/.lock and a second Run on the same
// folder fails at once with ErrRunBusy. Inside, a producer goroutine prepares batches
// (decoding with a worker pool, the feature cache, the backbone) while the caller's
// goroutine runs training steps.
package train
