// Package reliability holds tfflowers' end-to-end reliability tests (there is no
// non-test code besides this comment and the fixtures sub-package): hostile inputs
// (corrupt, truncated, empty, mislabelled, huge, CMYK, 16-bit, EXIF-rotated images,
// symlink loops, unreadable files, non-UTF-8 names, broken TFRecords), broken base
// models, unwritable and full output disks, signals and kill -9 during training, a
// damaged feature cache, and the memory of long predict and serve loads (RSS flat). Each
// test runs the whole path (scan, decode, train, write, predict, serve) through
// internal/train or the real tfflowers binary, which TestMain builds.
//
// Several tests need root (mount a 2 MB tmpfs, bind-mount read-only, run the CLI as
// nobody); without it they skip and say why.
package reliability
