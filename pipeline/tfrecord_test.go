package pipeline

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestWriteRecordKnownBytes pins the framing to bytes produced by
// TensorFlow's tf.io.TFRecordWriter for the payload "hello".
func TestWriteRecordKnownBytes(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteRecord(&buf, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 8)
	binary.LittleEndian.PutUint64(hdr, 5)
	want := cat(hdr, []byte{0xea, 0xb2, 0x04, 0x3e}, []byte("hello"), []byte{0xbb, 0x1f, 0x1c, 0x19})
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("WriteRecord(\"hello\") =\n% x\nwant\n% x", buf.Bytes(), want)
	}
}

func TestRecordScanner(t *testing.T) {
	good := tfrecordBytes(t, []byte("one"), []byte(""), []byte("three"))
	badData := slices.Clone(good)
	badData[12+3] ^= 0x01 // stored data CRC of record 0 (after "one")
	badLen := slices.Clone(good)
	badLen[19] ^= 0x01 // length of record 1 (record 0 is 12+3+4 bytes)
	hugeLen := tfrecordBytes(t, []byte("x"))
	binary.LittleEndian.PutUint64(hugeLen, 1<<62)
	binary.LittleEndian.PutUint32(hugeLen[8:], maskedCRC(hugeLen[:8]))

	tests := []struct {
		name      string
		in        []byte
		wantData  []string
		wantBad   []int // indexes of records with a data checksum error
		wantFrame string
	}{
		{name: "good", in: good, wantData: []string{"one", "", "three"}},
		{name: "empty stream", in: nil},
		{name: "bad data crc continues", in: badData, wantData: []string{"one", "", "three"}, wantBad: []int{0}},
		{name: "bad length crc stops", in: badLen, wantData: []string{"one"}, wantFrame: "record 1 at offset 19: length checksum mismatch"},
		{name: "huge length does not allocate", in: hugeLen, wantFrame: "truncated"},
		{name: "partial header", in: good[:len(good)-len("three")-16+5], wantData: []string{"one", ""}, wantFrame: "only 5 of 12 header bytes"},
		{name: "missing footer", in: good[:len(good)-2], wantData: []string{"one", ""}, wantFrame: "record 2 at offset 35: file ends inside a record"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := newRecordScanner(bytes.NewReader(tc.in), int64(len(tc.in)))
			var data []string
			var bad []int
			for {
				rec, ok := sc.next()
				if !ok {
					break
				}
				data = append(data, string(rec.data))
				if rec.err != nil {
					bad = append(bad, rec.index)
				}
			}
			if !slices.Equal(data, tc.wantData) {
				t.Errorf("records = %q, want %q", data, tc.wantData)
			}
			if !slices.Equal(bad, tc.wantBad) {
				t.Errorf("bad records = %v, want %v", bad, tc.wantBad)
			}
			err := sc.Err()
			if (err != nil) != (tc.wantFrame != "") || (err != nil && !strings.Contains(err.Error(), tc.wantFrame)) {
				t.Errorf("Err() = %v, want %q", err, tc.wantFrame)
			}
		})
	}
}

// TestRecordScannerEveryTruncation cuts a valid file at every length and
// checks that the scan ends, keeps every whole record before the cut, and
// reports the cut unless it falls on a record boundary.
func TestRecordScannerEveryTruncation(t *testing.T) {
	payloads := [][]byte{EncodeExample(fakeJPEG("a"), 0), EncodeExample(fakeJPEG("bb"), 1), []byte("c")}
	full := tfrecordBytes(t, payloads...)
	var ends []int
	off := 0
	for _, p := range payloads {
		off += 16 + len(p)
		ends = append(ends, off)
	}
	for cut := 0; cut <= len(full); cut++ {
		in := full[:cut]
		sc := newRecordScanner(bytes.NewReader(in), int64(cut))
		n := 0
		for {
			rec, ok := sc.next()
			if !ok {
				break
			}
			if rec.err != nil {
				t.Fatalf("cut %d: record %d has data error %v", cut, rec.index, rec.err)
			}
			n++
		}
		wantN := 0
		for _, e := range ends {
			if e <= cut {
				wantN++
			}
		}
		onBoundary := cut == 0 || slices.Contains(ends, cut)
		if n != wantN || (sc.Err() == nil) != onBoundary {
			t.Errorf("cut %d: %d records, Err %v; want %d records, error %t", cut, n, sc.Err(), wantN, !onBoundary)
		}
	}
}

func writeTFRecordFile(t *testing.T, path string, payloads ...[]byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, tfrecordBytes(t, payloads...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadTFRecords(t *testing.T) {
	dir := t.TempDir()
	classes := []string{"daisy", "roses", "tulips"}
	f1 := writeTFRecordFile(t, filepath.Join(dir, "recs", "b.tfrec"),
		EncodeExample(fakeJPEG("b0"), 2), EncodeExample(fakeJPEG("b1"), 0))
	f0 := writeTFRecordFile(t, filepath.Join(dir, "recs", "a.tfrecord"),
		EncodeExample(fakeJPEG("a0"), 1), EncodeExample(fakeJPEG("a1"), 0))
	writeFiles(t, filepath.Join(dir, "recs"), map[string][]byte{"notes.txt": []byte("ignored"), ".hidden.tfrec": []byte("ignored")})
	f2 := writeTFRecordFile(t, filepath.Join(dir, "extra.data"), EncodeExample(fakeJPEG("x0"), 1))

	d, err := ReadTFRecords([]string{filepath.Join(dir, "recs"), f2}, classes, ScanOptions{Strict: true})
	if err != nil {
		t.Fatalf("ReadTFRecords: %v", err)
	}
	if !slices.Equal(d.Classes, classes) {
		t.Errorf("Classes = %v, want %v", d.Classes, classes)
	}
	want := []struct {
		name  string
		label int
		image string
	}{
		{f0 + "#1", 0, "a1"}, {f1 + "#1", 0, "b1"},
		{f0 + "#0", 1, "a0"}, {f2 + "#0", 1, "x0"},
		{f1 + "#0", 2, "b0"},
	}
	if len(d.Samples) != len(want) {
		t.Fatalf("samples = %v, want %d", names(d.Samples), len(want))
	}
	for i, w := range want {
		s := d.Samples[i]
		if s.Name != w.name || s.Label != w.label {
			t.Errorf("sample %d = %s label %d, want %s label %d", i, s.Name, s.Label, w.name, w.label)
			continue
		}
		b, err := s.ReadBytes()
		if err != nil {
			t.Fatalf("ReadBytes %s: %v", s.Name, err)
		}
		if !bytes.Equal(b, fakeJPEG(w.image)) {
			t.Errorf("ReadBytes %s = %q, want %q", s.Name, b, fakeJPEG(w.image))
		}
	}
}

// TestReadTFRecordsWrittenByTF reads a file made by tf.io.TFRecordWriter
// from tf.train.Example protos that also carry a float_list and an extra
// bytes feature, as the codelab files do.
func TestReadTFRecordsWrittenByTF(t *testing.T) {
	const path = "testdata/tf_written.tfrec"
	d, err := ReadTFRecords([]string{path}, []string{"a", "b", "c"}, ScanOptions{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{path + "#1", path + "#2", path + "#0"}
	if got := names(d.Samples); !slices.Equal(got, wantNames) {
		t.Fatalf("samples = %v, want %v", got, wantNames)
	}
	for i, s := range d.Samples {
		b, err := s.ReadBytes()
		if err != nil {
			t.Fatal(err)
		}
		rec := strings.TrimPrefix(s.Name, path+"#")
		if want := fakeJPEG("tf" + rec); !bytes.Equal(b, want) || s.Label != i {
			t.Errorf("%s: label %d image %q, want label %d image %q", s.Name, s.Label, b, i, want)
		}
	}
}

func TestReadTFRecordsBadRecords(t *testing.T) {
	classes := []string{"a", "b"}
	ok0, ok1 := EncodeExample(fakeJPEG("0"), 0), EncodeExample(fakeJPEG("1"), 1)
	flipDataCRC := func(b []byte) []byte { b[12+5] ^= 0x40; return b }
	tests := []struct {
		name       string
		file       func(t *testing.T) []byte
		wantGood   int
		wantReason string
		strictIs   error
	}{
		{
			name:     "bad data crc",
			file:     func(t *testing.T) []byte { return cat(flipDataCRC(tfrecordBytes(t, ok0)), tfrecordBytes(t, ok1, ok0)) },
			wantGood: 2, wantReason: "data checksum mismatch", strictIs: ErrCorruptRecord,
		},
		{
			name:     "truncated tail",
			file:     func(t *testing.T) []byte { b := tfrecordBytes(t, ok0, ok1, ok0); return b[:len(b)-7] },
			wantGood: 2, wantReason: "truncated", strictIs: ErrCorruptRecord,
		},
		{
			name:     "label out of range",
			file:     func(t *testing.T) []byte { return tfrecordBytes(t, ok0, ok1, EncodeExample(fakeJPEG("x"), 2)) },
			wantGood: 2, wantReason: "label 2 is outside [0,2)", strictIs: ErrLabelRange,
		},
		{
			name:     "negative label",
			file:     func(t *testing.T) []byte { return tfrecordBytes(t, ok0, ok1, EncodeExample(fakeJPEG("x"), -1)) },
			wantGood: 2, wantReason: "label -1 is outside [0,2)", strictIs: ErrLabelRange,
		},
		{
			name: "missing image",
			file: func(t *testing.T) []byte {
				return tfrecordBytes(t, ok0, ok1, exampleOf(entry("class", pbBytes(fieldInt64List, pbVarint(fieldListValue, 1)))))
			},
			wantGood: 2, wantReason: `no "image" feature`, strictIs: ErrCorruptRecord,
		},
		{
			name: "missing class",
			file: func(t *testing.T) []byte {
				return tfrecordBytes(t, ok0, ok1, exampleOf(entry("image", pbBytes(fieldBytesList, pbBytes(fieldListValue, fakeJPEG("x"))))))
			},
			wantGood: 2, wantReason: `no "class" feature`, strictIs: ErrCorruptRecord,
		},
		{
			name:     "not an example",
			file:     func(t *testing.T) []byte { return tfrecordBytes(t, ok0, ok1, []byte{0xff, 0xff}) },
			wantGood: 2, wantReason: "parse tf.train.Example", strictIs: ErrCorruptRecord,
		},
		{
			name: "image not decodable",
			file: func(t *testing.T) []byte {
				return tfrecordBytes(t, ok0, ok1, EncodeExample([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), 1))
			},
			wantGood: 2, wantReason: "WebP", strictIs: ErrCorruptRecord,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.tfrec")
			if err := os.WriteFile(path, tc.file(t), 0o644); err != nil {
				t.Fatal(err)
			}
			d, err := ReadTFRecords([]string{path}, classes, ScanOptions{})
			if err != nil {
				t.Fatalf("ReadTFRecords: %v", err)
			}
			if len(d.Samples) != tc.wantGood {
				t.Errorf("got %d samples %v, want %d", len(d.Samples), names(d.Samples), tc.wantGood)
			}
			if len(d.Skipped) != 1 || !strings.HasPrefix(d.Skipped[0].Name, path+"#") || !strings.Contains(d.Skipped[0].Reason, tc.wantReason) {
				t.Errorf("Skipped = %+v, want one entry for %s with reason containing %q", d.Skipped, path, tc.wantReason)
			}
			for _, s := range d.Samples {
				if _, err := s.ReadBytes(); err != nil {
					t.Errorf("ReadBytes of a good sample: %v", err)
				}
			}
			_, err = ReadTFRecords([]string{path}, classes, ScanOptions{Strict: true})
			if !errors.Is(err, tc.strictIs) || !strings.Contains(err.Error(), path+"#") {
				t.Errorf("strict error = %v, want %v naming the record", err, tc.strictIs)
			}
		})
	}
}

func TestReadTFRecordsErrors(t *testing.T) {
	dir := t.TempDir()
	good := writeTFRecordFile(t, filepath.Join(dir, "good.tfrec"), EncodeExample(fakeJPEG("0"), 0), EncodeExample(fakeJPEG("1"), 1))
	onlyZero := writeTFRecordFile(t, filepath.Join(dir, "zero.tfrec"), EncodeExample(fakeJPEG("0"), 0))
	emptyFile := writeTFRecordFile(t, filepath.Join(dir, "empty.tfrec"))
	noRecs := filepath.Join(dir, "norecs")
	writeFiles(t, noRecs, map[string][]byte{"a.txt": []byte("x")})
	tests := []struct {
		name    string
		paths   []string
		classes []string
		wantIs  error
		want    string
	}{
		{name: "no classes", paths: []string{good}, wantIs: ErrLabelsFile},
		{name: "one class", paths: []string{good}, classes: []string{"a"}, wantIs: ErrSingleClass},
		{name: "duplicate class", paths: []string{good}, classes: []string{"a", "a"}, wantIs: ErrLabelsFile, want: `"a" appears twice`},
		{name: "no paths", classes: []string{"a", "b"}, wantIs: ErrNoImages},
		{name: "missing file", paths: []string{filepath.Join(dir, "nope.tfrec")}, classes: []string{"a", "b"}, wantIs: os.ErrNotExist},
		{name: "folder without tfrecords", paths: []string{noRecs}, classes: []string{"a", "b"}, wantIs: ErrNoImages, want: noRecs},
		{name: "empty file", paths: []string{emptyFile}, classes: []string{"a", "b"}, wantIs: ErrNoImages},
		{name: "class without records", paths: []string{onlyZero}, classes: []string{"a", "b"}, wantIs: ErrEmptyClass, want: `"b" (label 1)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadTFRecords(tc.paths, tc.classes, ScanOptions{})
			if !errors.Is(err, tc.wantIs) {
				t.Fatalf("error = %v, want %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestSampleReadBytesRechecks makes sure ReadBytes notices that a record
// changed after indexing instead of returning corrupt image bytes.
func TestSampleReadBytesRechecks(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
		want   string
	}{
		{name: "data byte flipped", mutate: func(b []byte) []byte { b[12+3] ^= 1; return b }, want: "data checksum mismatch"},
		{name: "length changed", mutate: func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b, 3)
			binary.LittleEndian.PutUint32(b[8:], maskedCRC(b[:8]))
			return b
		}, want: "length is now 3"},
		{name: "file truncated", mutate: func(b []byte) []byte { return b[:20] }, want: "EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTFRecordFile(t, filepath.Join(t.TempDir(), "r.tfrec"), EncodeExample(fakeJPEG("0"), 0), EncodeExample(fakeJPEG("1"), 1))
			d, err := ReadTFRecords([]string{path}, []string{"a", "b"}, ScanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.mutate(b), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = d.Samples[0].ReadBytes()
			if !errors.Is(err, ErrCorruptRecord) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path+"#0") {
				t.Errorf("ReadBytes error = %v, want ErrCorruptRecord naming %s#0 and containing %q", err, path, tc.want)
			}
		})
	}
}

func TestZeroSampleReadBytes(t *testing.T) {
	if _, err := (Sample{}).ReadBytes(); err == nil {
		t.Error("ReadBytes on a zero Sample succeeded, want error")
	}
}
