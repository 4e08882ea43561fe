package pipeline

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// fakeJPEG returns bytes that sniff as JPEG and differ per tag. The
// pipeline never decodes pixels, so a real JPEG is not needed.
func fakeJPEG(tag string) []byte {
	return append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), tag...)
}

// writeFiles creates files (path relative to root → contents), making
// parent folders as needed.
func writeFiles(t *testing.T, root string, files map[string][]byte) {
	t.Helper()
	for rel, data := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tfrecordBytes frames each payload as a TFRecord.
func tfrecordBytes(t *testing.T, payloads ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, p := range payloads {
		if err := WriteRecord(&buf, p); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func names(samples []Sample) []string {
	out := make([]string, len(samples))
	for i, s := range samples {
		out[i] = s.Name
	}
	return out
}
