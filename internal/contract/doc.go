// Package contract is the one definition of what tfflowers' packages and tools
// agree on across their boundaries: TF Serving's rule for model version folders,
// the names of the exported signatures and their tensors, and the layout of a
// training run's output folder. savedmodel writes by it, internal/serve and
// predict read by it, internal/train and internal/batch read and write run
// folders by it, and metrics.json (Metrics) is the typed run record they share. It is
// pure Go; of tfflowers it imports only internal/report, for the confusion matrix.
//
// # Error handling
//
// Functions that touch the file system return errors that name the path and
// wrap the *fs.PathError, so errors.Is(err, fs.ErrNotExist) works.
//
// # Concurrency
//
// Everything here is stateless and safe for concurrent use.
package contract
