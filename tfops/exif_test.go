package tfops_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/tfflowers/tfflowers/internal/reliability/fixtures"
	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/tfops"
)

// segment is a JPEG marker segment with body.
func segment(marker byte, body []byte) []byte {
	s := []byte{0xFF, marker}
	s = binary.BigEndian.AppendUint16(s, uint16(len(body)+2))
	return append(s, body...)
}

// insertAfterSOI puts segments right after a JPEG's SOI marker.
func insertAfterSOI(jpg []byte, segs ...[]byte) []byte {
	out := append([]byte{}, jpg[:2]...)
	for _, s := range segs {
		out = append(out, s...)
	}
	return append(out, jpg[2:]...)
}

// exifWith builds an APP1 EXIF segment whose IFD0 holds entries (tag, type, count, value)
// in the given byte order.
func exifWith(bigEndian bool, entries [][4]uint32) []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	tiff := []byte("II*\x00")
	if bigEndian {
		bo, tiff = binary.BigEndian, []byte("MM\x00*")
	}
	tiff = bo.AppendUint32(tiff, 8)
	tiff = bo.AppendUint16(tiff, uint16(len(entries)))
	for _, e := range entries {
		tiff = bo.AppendUint16(tiff, uint16(e[0]))
		tiff = bo.AppendUint16(tiff, uint16(e[1]))
		tiff = bo.AppendUint32(tiff, e[2])
		if e[1] == 3 {
			tiff = bo.AppendUint16(tiff, uint16(e[3]))
			tiff = bo.AppendUint16(tiff, 0)
		} else {
			tiff = bo.AppendUint32(tiff, e[3])
		}
	}
	tiff = bo.AppendUint32(tiff, 0)
	return segment(0xE1, append([]byte("Exif\x00\x00"), tiff...))
}

// TestExifOrientationMatchesGo: the export graph's EXIF reader gives the orientation the
// training pipeline's Go reader gives, on what cameras write and on damaged variants.
func TestExifOrientationMatchesGo(t *testing.T) {
	s := op.NewScope()
	in := op.Placeholder(s.SubScope("in"), tf.String, op.PlaceholderShape(tf.ScalarShape()))
	g, err := s.Finalize()
	if err != nil {
		t.Fatal(err)
	}
	out, err := tfops.ImportExifOrientation(g, "exif", in)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := tfops.NewSession(g, tfops.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	graphOrientation := func(data []byte) int {
		t.Helper()
		tt, err := tf.NewTensor(string(data))
		if err != nil {
			t.Fatal(err)
		}
		res, err := sess.Run("exif", map[tf.Output]*tf.Tensor{in: tt}, []tf.Output{out}, nil)
		if err != nil {
			t.Fatalf("graph failed on %d bytes: %v", len(data), err)
		}
		return int(res[0].Value().(int32))
	}
	// What the training pipeline reads, where it can parse the header (elsewhere it leaves
	// the file to the decoder, which fails on most such files).
	goOrientation := func(data []byte) (int, bool) {
		h, err := pipeline.InspectImage(data)
		return h.Orientation, err == nil
	}

	jpg := fixtures.JPEG(fixtures.Quadrants(16, 12))
	jfif := segment(0xE0, []byte("JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"))
	icc := segment(0xE2, append([]byte("ICC_PROFILE\x00\x01\x01"), make([]byte, 300)...))
	xmp := segment(0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>"))
	corpus := map[string][]byte{
		"plain":                jpg,
		"png":                  fixtures.PNG(fixtures.Quadrants(4, 3)),
		"text":                 []byte("not an image"),
		"empty":                {},
		"soi only":             {0xFF, 0xD8},
		"tag as LONG":          insertAfterSOI(jpg, exifWith(false, [][4]uint32{{0x010F, 2, 4, 0}, {0x0112, 4, 1, 6}})),
		"LONG tag, big endian": insertAfterSOI(jpg, exifWith(true, [][4]uint32{{0x0112, 4, 1, 8}})),
		"LONG tag over 255":    insertAfterSOI(jpg, exifWith(false, [][4]uint32{{0x0112, 4, 1, 0x106}})),
		"tag out of range":     insertAfterSOI(jpg, exifWith(true, [][4]uint32{{0x0112, 3, 1, 9}})),
		"tag count 0":          insertAfterSOI(jpg, exifWith(true, [][4]uint32{{0x0112, 3, 0, 6}})),
		"tag as BYTE":          insertAfterSOI(jpg, exifWith(false, [][4]uint32{{0x0112, 1, 1, 6}})),
		"tag after 12 others":  insertAfterSOI(jpg, exifWith(true, append(make([][4]uint32, 12), [4]uint32{0x0112, 3, 1, 8}))),
		"two exif, first wins": insertAfterSOI(jpg, fixtures.ExifAPP1(3, false), fixtures.ExifAPP1(6, false)),
		"exif cut short":       insertAfterSOI(jpg, fixtures.ExifAPP1(6, false)[:20]),
		"truncated file":       insertAfterSOI(jpg, fixtures.ExifAPP1(6, true))[:30],
	}
	for o := 1; o <= 8; o++ {
		for _, be := range []bool{false, true} {
			app1 := fixtures.ExifAPP1(o, be)
			corpus["after SOI "+string(rune('0'+o))+map[bool]string{false: " II", true: " MM"}[be]] = insertAfterSOI(jpg, app1)
			corpus["after JFIF "+string(rune('0'+o))+map[bool]string{false: " II", true: " MM"}[be]] = insertAfterSOI(jpg, jfif, app1)
			corpus["after JFIF+ICC+XMP "+string(rune('0'+o))+map[bool]string{false: " II", true: " MM"}[be]] = insertAfterSOI(jpg, jfif, icc, xmp, app1)
		}
	}
	png := fixtures.PNG(fixtures.Quadrants(4, 3))
	text := fixtures.PNGChunk("tEXt", []byte("Comment\x00made by a test"))
	for o := 1; o <= 8; o++ {
		for _, be := range []bool{false, true} {
			name := string(rune('0'+o)) + map[bool]string{false: " II", true: " MM"}[be]
			corpus["PNG eXIf "+name] = fixtures.PNGWithChunks(png, fixtures.PNGChunk("eXIf", fixtures.ExifTIFF(o, be)))
			corpus["PNG eXIf after tEXt "+name] = fixtures.PNGWithChunks(png, text, text, fixtures.PNGChunk("eXIf", fixtures.ExifTIFF(o, be)))
		}
	}
	afterIDAT := append([]byte{}, png[:len(png)-12]...) // an eXIf after the image data is not read
	afterIDAT = append(append(afterIDAT, fixtures.PNGChunk("eXIf", fixtures.ExifTIFF(6, true))...), png[len(png)-12:]...)
	corpus["PNG eXIf after IDAT"] = afterIDAT
	corpus["PNG eXIf cut short"] = fixtures.PNGWithChunks(png, fixtures.PNGChunk("eXIf", fixtures.ExifTIFF(6, true)))[:60]
	corpus["PNG without IHDR"] = append(append([]byte{}, png[:12]...), append([]byte("IHDX"), fixtures.PNGWithChunks(png, fixtures.PNGChunk("eXIf", fixtures.ExifTIFF(6, true)))[16:]...)...)
	corpus["PNG eXIf over 1 MiB"] = fixtures.PNGWithChunks(png, fixtures.PNGChunk("eXIf", append(fixtures.ExifTIFF(6, true), make([]byte, 1<<20)...)))
	corpus["PNG eXIf after 1000 chunks"] = fixtures.PNGWithChunks(png, append(bytes.Repeat(text, 1000), fixtures.PNGChunk("eXIf", fixtures.ExifTIFF(6, true))...))
	corpus["PNG eXIf after 998 chunks"] = fixtures.PNGWithChunks(png, append(bytes.Repeat(text, 998), fixtures.PNGChunk("eXIf", fixtures.ExifTIFF(6, true))...))
	// JPEG segments Go walks however far they go: fill bytes, garbage, no-length markers,
	// many small segments, an orientation tag deep in IFD0, APP1 behind a large profile.
	exif6 := fixtures.ExifAPP1(6, false)
	corpus["fill bytes before APP1"] = insertAfterSOI(jpg, []byte{0xFF, 0xFF, 0xFF}, exif6)
	corpus["garbage before APP1"] = insertAfterSOI(jpg, jfif, []byte("garbage\x00\xff\x00"), exif6)
	corpus["RST markers before APP1"] = insertAfterSOI(jpg, []byte{0xFF, 0xD0, 0xFF, 0x01, 0xFF, 0xD8}, exif6)
	corpus["3000 COM segments before APP1"] = insertAfterSOI(jpg, bytes.Repeat(segment(0xFE, nil), 3000), exif6)
	corpus["tag after 40 others"] = insertAfterSOI(jpg, exifWith(false, append(make([][4]uint32, 40), [4]uint32{0x0112, 3, 1, 7})))
	corpus["tag after 5000 others"] = insertAfterSOI(jpg, exifWith(true, append(make([][4]uint32, 5000), [4]uint32{0x0112, 3, 1, 5})))
	corpus["EOI before APP1"] = insertAfterSOI(jpg, []byte{0xFF, 0xD9}, exif6)
	corpus["segment length 1 after APP1"] = insertAfterSOI(jpg, exif6, []byte{0xFF, 0xE3, 0x00, 0x01})
	corpus["frame height 0"] = zeroFrameHeight(t, insertAfterSOI(jpg, exif6))
	corpus["APP1 then no frame"] = append(insertAfterSOI(jpg[:2], exif6), 0xFF, 0xD9)
	noWidth := segment(0xC0, []byte{8, 0, 1, 0, 0, 1, 1, 0x11, 0})
	corpus["two frames, the first without width"] = insertAfterSOI(jpg, exif6, noWidth)
	withExif := insertAfterSOI(jpg, exif6)
	sos := bytes.Index(withExif, []byte{0xFF, 0xDA})
	corpus["two frames, the last without width"] = append(append(append([]byte{}, withExif[:sos]...), noWidth...), withExif[sos:]...)
	// What Go reads on the new cases, so that a change on either side shows.
	expect := map[string]int{
		"PNG eXIf 6 II": 6, "PNG eXIf 7 MM": 7, "PNG eXIf after tEXt 8 MM": 8, "PNG eXIf after IDAT": 1,
		"PNG eXIf cut short": 1, "PNG without IHDR": 1, "PNG eXIf over 1 MiB": 1, "PNG eXIf after 1000 chunks": 1,
		"PNG eXIf after 998 chunks": 6, "fill bytes before APP1": 6, "garbage before APP1": 6,
		"RST markers before APP1": 6, "3000 COM segments before APP1": 6, "tag after 40 others": 7,
		"tag after 5000 others": 5, "EOI before APP1": 1, "segment length 1 after APP1": 1, "frame height 0": 1,
		"APP1 then no frame": 1, "two frames, the first without width": 6, "two frames, the last without width": 1,
	}
	for name, o := range expect {
		if got, ok := goOrientation(corpus[name]); (ok && got != o) || (!ok && o != 1) {
			t.Errorf("%s: Go reads %d (parsed: %v), the test expects %d", name, got, ok, o)
		}
	}
	for name, data := range corpus {
		want, ok := goOrientation(data)
		if !ok {
			want = 1 // the Go reader refuses it; the graph must not fail and reads it as stored
		}
		if got := graphOrientation(data); got != want {
			t.Errorf("%s: graph orientation %d, Go %d", name, got, want)
		}
	}
	if got := graphOrientation(insertAfterSOI(jpg, jfif, icc, xmp, fixtures.ExifAPP1(6, false))); got != 6 {
		t.Fatalf("orientation 6 behind three segments read as %d", got)
	}
	// Cameras put a thumbnail of tens of KB in APP1, often behind an ICC profile: the
	// whole segment must be within the graph's window for the tag to count, as in Go.
	bigExif := append(append([]byte{}, fixtures.ExifAPP1(8, true)...), make([]byte, 60000)...)
	binary.BigEndian.PutUint16(bigExif[2:], uint16(len(bigExif)-2))
	bigICC := segment(0xE2, append([]byte("ICC_PROFILE\x00\x01\x01"), make([]byte, 50000)...))
	// A 600 KB ICC profile in 10 APP2 segments (as print workflows embed them) puts APP1
	// far beyond any fixed window.
	var hugeICC []byte
	for k := 0; k < 10; k++ {
		hugeICC = append(hugeICC, segment(0xE2, append([]byte("ICC_PROFILE\x00"), append([]byte{byte(k + 1), 10}, make([]byte, 60000)...)...))...)
	}
	for name, data := range map[string][]byte{
		"60 KB APP1":                  insertAfterSOI(jpg, jfif, bigExif),
		"60 KB APP1 after 50 KB ICC":  insertAfterSOI(jpg, jfif, bigICC, bigExif),
		"60 KB APP1 after 600 KB ICC": insertAfterSOI(jpg, jfif, hugeICC, bigExif),
	} {
		if want, ok := goOrientation(data); !ok || want != 8 {
			t.Fatalf("%s: Go reads %d (%v)", name, want, ok)
		}
		if got := graphOrientation(data); got != 8 {
			t.Errorf("%s: graph orientation %d, Go 8", name, got)
		}
	}

	// Damaged variants of a JPEG with EXIF: the graph never fails, gives 1..8, and agrees
	// with Go wherever Go reads the file (the segments it walks are the graph's).
	base := insertAfterSOI(jpg, jfif, fixtures.ExifAPP1(6, true))
	rng := rand.New(rand.NewPCG(1, 2))
	agree := 0
	for i := 0; i < 300; i++ {
		data := append([]byte{}, base...)
		for k := 0; k < 1+rng.IntN(3); k++ {
			data[rng.IntN(60)] = byte(rng.IntN(256)) // the headers: JFIF and APP1
		}
		got := graphOrientation(data)
		if got < 1 || got > 8 {
			t.Fatalf("damaged file %x: orientation %d", data[:60], got)
		}
		if want, ok := goOrientation(data); ok {
			if got != want {
				t.Fatalf("damaged file %x: graph %d, Go %d", data[:60], got, want)
			}
			agree++
		}
	}
	t.Logf("%d corpus files and %d of 300 damaged files that Go reads: the graph agrees", len(corpus), agree)
}

// zeroFrameHeight sets the height in a JPEG's first frame header to 0 (a DNL file).
func zeroFrameHeight(t *testing.T, jpg []byte) []byte {
	out := append([]byte{}, jpg...)
	for i := 2; i+8 < len(out); i++ {
		if out[i] == 0xFF && out[i+1] == 0xC0 {
			out[i+5], out[i+6] = 0, 0
			return out
		}
	}
	t.Fatal("no SOF0 in the fixture")
	return nil
}
