package pipeline

import "errors"

// Sentinel errors. Functions wrap them with %w and add the path or name
// involved plus a hint on how to fix the problem.
var (
	// ErrNotDir: the dataset root is missing or is not a directory.
	ErrNotDir = errors.New("not a dataset folder")
	// ErrNoImages: nothing usable was found at all.
	ErrNoImages = errors.New("no usable images")
	// ErrEmptyClass: a class folder (or a class in a class list) has no
	// usable image.
	ErrEmptyClass = errors.New("class has no usable images")
	// ErrSingleClass: classification needs at least two classes.
	ErrSingleClass = errors.New("need at least 2 class folders")
	// ErrImagesInRoot: image files sit directly in the root instead of in
	// per-class sub-folders.
	ErrImagesInRoot = errors.New("images outside class folders")
	// ErrUnreadable: in strict mode, a file that would have been skipped.
	ErrUnreadable = errors.New("unusable image file")
	// ErrCorruptRecord: a TFRecord whose framing, checksum or
	// tf.train.Example payload is broken.
	ErrCorruptRecord = errors.New("corrupt tfrecord")
	// ErrLabelRange: a TFRecord label outside [0, number of classes).
	ErrLabelRange = errors.New("label out of range")
	// ErrLabelsFile: a labels file (or class list) with empty or
	// duplicate names.
	ErrLabelsFile = errors.New("invalid class names")
	// ErrBadSplit: invalid validation fraction, or a split that would
	// leave a class without training samples.
	ErrBadSplit = errors.New("invalid train/validation split")
	// ErrClassMismatch: training and validation data have different
	// class lists.
	ErrClassMismatch = errors.New("class lists differ")
	// ErrCacheKey: a feature-cache key that cannot describe real features.
	ErrCacheKey = errors.New("invalid feature cache key")
	// ErrCacheID: a feature-cache entry id that is not a ContentID.
	ErrCacheID = errors.New("invalid feature cache entry id")
	// ErrFeatureShape: features whose length does not match the cache
	// key's FeatureShape.
	ErrFeatureShape = errors.New("feature length does not match cache shape")
	// ErrImageHeader: InspectImage could not read an image's header.
	// Decoders usually fail on such files too, but the header parser is not
	// the judge of that: callers fall back to decoding with default settings.
	ErrImageHeader = errors.New("unreadable image header")
	// ErrImageTooLarge: an image whose decoded pixels would exceed
	// MaxDecodedPixels even at the smallest decode scale available for it.
	ErrImageTooLarge = errors.New("image too large")
)
