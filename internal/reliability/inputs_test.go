package reliability_test

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tfflowers/tfflowers/internal/reliability/fixtures"
	"github.com/tfflowers/tfflowers/internal/train"
	"github.com/tfflowers/tfflowers/pipeline"
)

// TestTrainWithHostileFiles trains on real photos mixed with every kind of hostile file
// in the class folders. Files the scan can judge are skipped with a reason before
// training; files only the decoder can judge (truncated or corrupt JPEG data) are dropped
// from their batch; odd but valid images (grey, 16-bit, palette, BMP, CMYK, progressive,
// EXIF-rotated, a 10000x10000 JPEG, a non-UTF-8 name) are trained on. metrics.json counts
// the skipped files; --strict turns the first one into an error before training.
func TestTrainWithHostileFiles(t *testing.T) {
	pil, _ := pillowFixtures(t)
	data := t.TempDir()
	flowerSet(t, data, 6, "daisy", "roses")
	real := readFile(t, photos(t, "daisy", 7)[6])
	quads := fixtures.Quadrants(64, 48)
	usable := map[string][]byte{
		"daisy/gray.png":                fixtures.PNG(fixtures.Gray(50, 40)),
		"daisy/gray.jpg":                fixtures.JPEG(fixtures.Gray(50, 40)),
		"daisy/16bit.png":               fixtures.PNG(fixtures.RGB64(40, 30, color.RGBA64{0x8000, 0x4000, 0xC000, 0xFFFF})),
		"daisy/16bit-gray.png":          fixtures.PNG(fixtures.Gray16(40, 30, 0x6000)),
		"daisy/palette.gif":             fixtures.GIF(quads),
		"daisy/image.bmp":               fixtures.BMP(quads),
		"roses/cmyk.jpg":                readFile(t, filepath.Join(pil, "cmyk.jpg")),
		"roses/progressive.jpg":         readFile(t, filepath.Join(pil, "progressive.jpg")),
		"roses/exif6.jpg":               fixtures.OrientedJPEG(quads, 6, false),
		"roses/huge-10000x10000.jpg":    fixtures.HugeGrayJPEG(10000, 10000),
		"roses/png-named.jpg":           fixtures.PNG(quads),
		"roses/caf\xe9-latin1-name.jpg": fixtures.JPEG(quads), // not UTF-8
		"roses/sub/dir/nested.jpg":      fixtures.JPEG(quads),
		"roses/UPPER.JPEG":              fixtures.JPEG(quads),
		"roses/photo.webp":              readFile(t, filepath.Join(pil, "photo.webp")), // not an image extension: ignored
		"roses/notes.txt":               []byte("ignored"),
	}
	skippedAtScan := map[string]string{
		"daisy/empty.jpg":            "empty file (0 bytes)",
		"daisy/text.jpg":             `not a JPEG, PNG, GIF or BMP image (starts with "this is ")`,
		"daisy/webp-named.jpg":       "WebP image",
		"roses/huge-10000x10000.png": "image too large: PNG 10000x10000",
		"roses/self-loop.jpg":        "symlink loop",
		"roses/sub/up":               "symlink loop",
		"roses/broken.jpg":           "broken symlink",
		"daisy/fifo.jpg":             "not a regular file",
	}
	skippedAtDecode := map[string][]byte{
		"daisy/truncated.jpg":      fixtures.Truncated(real),
		"roses/corrupt-header.jpg": fixtures.CorruptJPEGHeader(real),
	}
	for name, b := range usable {
		write(t, filepath.Join(data, name), b)
	}
	for name, b := range skippedAtDecode {
		write(t, filepath.Join(data, name), b)
	}
	write(t, filepath.Join(data, "daisy/empty.jpg"), nil)
	write(t, filepath.Join(data, "daisy/text.jpg"), []byte("this is a text file named .jpg\n"))
	write(t, filepath.Join(data, "daisy/webp-named.jpg"), readFile(t, filepath.Join(pil, "webp_named.jpg")))
	write(t, filepath.Join(data, "roses/huge-10000x10000.png"), fixtures.HugePNG(10000, 10000))
	os.Symlink("self-loop.jpg", filepath.Join(data, "roses/self-loop.jpg"))
	os.Symlink("..", filepath.Join(data, "roses/sub/up"))
	os.Symlink("gone.jpg", filepath.Join(data, "roses/broken.jpg"))
	if err := syscall.Mkfifo(filepath.Join(data, "daisy/fifo.jpg"), 0o644); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}

	var logs logBuffer
	cfg := smallConfig(t, data, &logs)
	cfg.Epochs = 2
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf("training on the hostile folder failed: %v\nlogs:\n%s", err, logs.String())
	}
	m := res.Metrics
	wantImages := 12 + len(usable) - 2 + len(skippedAtDecode) // .webp and .txt are not images
	if got := m.TrainImages + m.ValImages; got != wantImages {
		t.Errorf("train+val = %d images, want %d", got, wantImages)
	}
	if want := len(skippedAtScan) + len(skippedAtDecode); m.Skipped != want || readMetrics(t, cfg.Out).Skipped != want {
		t.Errorf("metrics skipped_files = %d, want %d\nlogs:\n%s", m.Skipped, want, logs.String())
	}
	ds, err := pipeline.ScanFolders(data, pipeline.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ds.Skipped {
		rel, _ := filepath.Rel(data, s.Name)
		want, ok := skippedAtScan[rel]
		if !ok || !strings.Contains(s.Reason, want) {
			t.Errorf("skipped %s (%s), want reason %q", rel, s.Reason, want)
		}
		t.Logf("skipped at scan: %s: %s", rel, s.Reason)
	}
	if len(ds.Skipped) != len(skippedAtScan) {
		t.Errorf("%d files skipped at scan, want %d", len(ds.Skipped), len(skippedAtScan))
	}
	contains(t, "training log", logs.String(), "skipped unusable files", "count=8",
		"images that could not be decoded were skipped", "count=2")
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "skipped") {
			t.Logf("log: %s", line)
		}
	}

	strict := cfg
	strict.Strict, strict.Out = true, filepath.Join(t.TempDir(), "strict")
	_, err = run(t, strict)
	if !errors.Is(err, pipeline.ErrUnreadable) {
		t.Fatalf("--strict run = %v, want ErrUnreadable", err)
	}
	t.Logf("--strict: %v", err)
	if _, statErr := os.Stat(filepath.Join(strict.Out, "checkpoints")); statErr == nil {
		t.Error("--strict run wrote a checkpoint")
	}
}

// exampleWith encodes a tf.train.Example with only the given features, to make records
// that lack "image" or "class".
func exampleWith(image []byte, class *int64) []byte {
	entry := func(key string, feature []byte) []byte {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, key)
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendBytes(e, feature)
		var m []byte
		m = protowire.AppendTag(m, 1, protowire.BytesType)
		return protowire.AppendBytes(m, e)
	}
	var feats []byte
	if image != nil {
		var list []byte
		list = protowire.AppendTag(list, 1, protowire.BytesType)
		list = protowire.AppendBytes(list, image)
		var f []byte
		f = protowire.AppendTag(f, 1, protowire.BytesType) // bytes_list
		f = protowire.AppendBytes(f, list)
		feats = append(feats, entry("image", f)...)
	}
	if class != nil {
		var list []byte
		list = protowire.AppendTag(list, 1, protowire.VarintType)
		list = protowire.AppendVarint(list, uint64(*class))
		var f []byte
		f = protowire.AppendTag(f, 3, protowire.BytesType) // int64_list
		f = protowire.AppendBytes(f, list)
		feats = append(feats, entry("class", f)...)
	}
	var ex []byte
	ex = protowire.AppendTag(ex, 1, protowire.BytesType)
	return protowire.AppendBytes(ex, feats)
}

// TestTrainWithHostileTFRecords trains from TFRecords holding good records and broken
// ones: a bad data CRC, a record without "image", one without "class", a label out of
// range, a text "image", a truncated JPEG (only the decoder notices) and a file cut in
// the middle of its last record. Training goes on; metrics.json counts them; --strict
// stops before training naming the first.
func TestTrainWithHostileTFRecords(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "a.tfrec"))
	if err != nil {
		t.Fatal(err)
	}
	rec := func(payload []byte) {
		if err := pipeline.WriteRecord(f, payload); err != nil {
			t.Fatal(err)
		}
	}
	for c, class := range []string{"daisy", "roses"} {
		for _, p := range photos(t, class, 6) {
			rec(pipeline.EncodeExample(readFile(t, p), int64(c)))
		}
	}
	one, seven := int64(1), int64(7)
	img := readFile(t, photos(t, "daisy", 1)[0])
	rec(exampleWith(nil, &one))                                // no image
	rec(exampleWith(img, nil))                                 // no class
	rec(pipeline.EncodeExample(img, seven))                    // label out of range
	rec(pipeline.EncodeExample([]byte("just some text"), one)) // not an image
	rec(pipeline.EncodeExample(fixtures.Truncated(img), one))  // decoder's problem
	pos, _ := f.Seek(0, 1)
	rec(pipeline.EncodeExample(img, 0)) // bad CRC: flipped byte below
	f.Close()
	raw := readFile(t, f.Name())
	raw[pos+12+100] ^= 0xFF
	var tail []byte
	{
		var buf strings.Builder
		pipeline.WriteRecord(&buf, pipeline.EncodeExample(img, 0))
		tail = []byte(buf.String())[:200] // a record cut short: the file was truncated
	}
	write(t, f.Name(), append(raw, tail...))

	var logs logBuffer
	cfg := smallConfig(t, "", &logs)
	cfg.Data, cfg.TFRecords, cfg.Classes = "", []string{dir}, []string{"daisy", "roses"}
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf("training from broken TFRecords: %v\n%s", err, logs.String())
	}
	m := res.Metrics
	if m.TrainImages+m.ValImages != 13 || m.Skipped != 7 {
		t.Errorf("%d+%d records used, %d skipped; want 13 used (12 good + the truncated JPEG) and 7 skipped\n%s", m.TrainImages, m.ValImages, m.Skipped, logs.String())
	}
	ds, err := pipeline.ReadTFRecords([]string{dir}, cfg.Classes, pipeline.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ds.Skipped {
		t.Logf("skipped: %s: %s", filepath.Base(s.Name), s.Reason)
	}
	contains(t, "training log", logs.String(), "skipped unusable files", "count=6", "images that could not be decoded were skipped", "count=1")

	cfg.Strict, cfg.Out = true, filepath.Join(t.TempDir(), "strict")
	_, err = run(t, cfg)
	if !errors.Is(err, pipeline.ErrCorruptRecord) {
		t.Fatalf("--strict = %v, want ErrCorruptRecord", err)
	}
	t.Logf("--strict: %v", err)

	// Every label out of range: the class list is too short for the data.
	cfg.Strict, cfg.Out = false, filepath.Join(t.TempDir(), "short")
	cfg.Classes = []string{"daisy", "roses"}
	only := filepath.Join(t.TempDir(), "labels7.tfrec")
	var buf strings.Builder
	for i := 0; i < 4; i++ {
		pipeline.WriteRecord(&buf, pipeline.EncodeExample(img, seven))
	}
	write(t, only, []byte(buf.String()))
	cfg.TFRecords = []string{only}
	_, err = run(t, cfg)
	if !errors.Is(err, pipeline.ErrNoImages) {
		t.Fatalf("all labels out of range: %v, want ErrNoImages", err)
	}
	t.Logf("all labels out of range: %v", err)
}

// TestTrainDatasetShapeErrors: empty class folders, one class, no images, a single
// class name for TFRecords: each a clear error before anything is trained or written.
func TestTrainDatasetShapeErrors(t *testing.T) {
	jpg := fixtures.JPEG(fixtures.Quadrants(40, 40))
	mk := func(files ...string) string {
		d := t.TempDir()
		for _, f := range files {
			if strings.HasSuffix(f, "/") {
				os.MkdirAll(filepath.Join(d, f), 0o755)
			} else {
				write(t, filepath.Join(d, f), jpg)
			}
		}
		return d
	}
	cases := []struct {
		name string
		cfg  func(c *train.Config)
		want error
	}{
		{"empty class folder", func(c *train.Config) { c.Data = mk("a/1.jpg", "a/2.jpg", "b/1.jpg", "b/2.jpg", "empty/") }, pipeline.ErrEmptyClass},
		{"class of only broken files", func(c *train.Config) {
			c.Data = mk("a/1.jpg", "a/2.jpg", "b/1.jpg", "b/2.jpg")
			write(t, filepath.Join(c.Data, "c", "x.jpg"), nil)
		}, pipeline.ErrEmptyClass},
		{"one class", func(c *train.Config) { c.Data = mk("a/1.jpg", "a/2.jpg", "a/3.jpg") }, pipeline.ErrSingleClass},
		{"no images", func(c *train.Config) { c.Data = mk("a/", "b/") }, pipeline.ErrNoImages},
		{"images in root", func(c *train.Config) { c.Data = mk("1.jpg", "a/1.jpg") }, pipeline.ErrImagesInRoot},
		{"one class name for tfrecords", func(c *train.Config) {
			c.Data, c.TFRecords, c.Classes = "", []string{"x.tfrec"}, []string{"a"}
		}, pipeline.ErrSingleClass},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig(t, "", nil)
			tc.cfg(&cfg)
			_, err := run(t, cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Run = %v, want %v", err, tc.want)
			}
			if _, statErr := os.Stat(cfg.Out); statErr == nil {
				t.Errorf("--out %s was created for a run that must not start", cfg.Out)
			}
			t.Logf("%v", err)
		})
	}
}

// TestTrainThousandClasses: 1000 classes of 2 tiny images each, one epoch at 32x32.
func TestTrainThousandClasses(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 2000 images; skipped with -short")
	}
	data := t.TempDir()
	for c := 0; c < 1000; c++ {
		for i := 0; i < 2; i++ {
			img := image.NewRGBA(image.Rect(0, 0, 8, 8))
			for p := 0; p < len(img.Pix); p += 4 {
				img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = byte(c), byte(c>>8*40+i*9), byte(c*7), 255
			}
			write(t, filepath.Join(data, fmt.Sprintf("class-%04d", c), fmt.Sprintf("%d.png", i)), fixtures.PNG(img))
		}
	}
	cfg := smallConfig(t, data, nil)
	cfg.ValSplit, cfg.BatchSize, cfg.CacheDir = 0.5, 128, "" // no cache: 2000 fsynced entries would dominate
	res, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	if len(m.Classes) != 1000 || m.TrainImages != 1000 || m.ValImages != 1000 || len(m.Epochs) != 1 {
		t.Fatalf("classes %d, train %d, val %d, epochs %d", len(m.Classes), m.TrainImages, m.ValImages, len(m.Epochs))
	}
	labels, err := pipeline.ReadLabelsFile(filepath.Join(cfg.Out, "labels.txt"))
	if err != nil || len(labels) != 1000 || labels[999] != "class-0999" {
		t.Fatalf("labels.txt: %d labels, %v", len(labels), err)
	}
	t.Logf("1000 classes: val loss %.3f (chance %.3f)", m.FinalValLoss, 6.908)
}
