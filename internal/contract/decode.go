package contract

// MaxDecodedPixels bounds the pixels (width x height) that decoding one image may
// produce: 4096 x 4096, 48 MiB of RGB bytes. Training's decoder and the export graph's
// both decode JPEGs above it at 1/2, 1/4 or 1/8 scale (the first that fits), so an
// exported model sees the pixels training saw.
const MaxDecodedPixels = 4096 * 4096
