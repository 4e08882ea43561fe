// Package pipeline turns flower photos on disk into labelled samples for
// transfer learning: it scans class folders or TFRecord files, makes a
// seeded, stratified train/validation split, orders each epoch
// deterministically, and caches per-image base-model features on disk.
//
// The package is pure Go: it never decodes pixels. It only sniffs each
// file's first bytes to make sure TensorFlow's DecodeImage will be able to
// read it, so that bad files are reported before training starts instead of
// failing a graph run halfway through an epoch, and reads image headers
// (InspectImage: size, EXIF orientation) so that images too large to
// decode are refused before any decoder allocates for them
// (MaxDecodedPixels; JPEGs get a reduced decode scale instead) and the
// decoder can turn rotated photos upright.
//
// # Error handling
//
// Problems with individual files (an empty file, a text file named .jpg, a
// WebP image, a PNG over MaxDecodedPixels, a broken symlink, a TFRecord with
// a bad checksum) are not
// errors by default: the file is recorded in Dataset.Skipped with a reason
// and the scan goes on. With ScanOptions.Strict set, the first such problem
// becomes an error wrapping ErrUnreadable, ErrCorruptRecord or ErrLabelRange.
//
// Problems with the dataset as a whole are errors wrapping a sentinel
// (ErrNotDir, ErrNoImages, ErrEmptyClass, ErrSingleClass, ErrImagesInRoot,
// ErrClassMismatch, ...), so callers can match them with errors.Is and
// still print a message that names the path and says what to do about it.
//
// A corrupt feature-cache entry is never an error: it is treated as a miss,
// deleted, and counted in CacheStats.Corrupt.
//
// # Ownership
//
// A Dataset and its slices belong to the caller once returned; the package
// keeps no reference to them. Samples hold no image bytes, only where to
// find them, so a Dataset of thousands of images is small. ReadBytes returns
// a fresh slice on each call. FeatureCache.Get returns a fresh slice the
// caller may modify; Put does not retain its argument.
//
// # Concurrency
//
// ScanFolders, ReadTFRecords, Split and EpochOrder share no state and may be
// called concurrently. Sample.ReadBytes may be called concurrently, including
// on the same Sample. A FeatureCache is safe for concurrent use by many
// goroutines, and by several processes sharing the same directory, because
// every entry is written to a temporary file and renamed into place.
//
// # Determinism
//
// Everything that orders or shuffles samples sorts names in byte order and
// draws random numbers from math/rand/v2's PCG with explicit seeds, using
// its own Fisher-Yates shuffle, so the same seed gives the same split and
// epoch order on every machine and every Go release.
package pipeline
