package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadLabelsFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string
		wantErr string
	}{
		{name: "plain", content: "daisy\nroses\n", want: []string{"daisy", "roses"}},
		{name: "no trailing newline", content: "daisy\nroses", want: []string{"daisy", "roses"}},
		{name: "crlf, spaces, bom, trailing blank lines", content: "\ufeff daisy \r\nroses\t\r\n\r\n\n", want: []string{"daisy", "roses"}},
		{name: "names with inner spaces", content: "sun flowers\nx", want: []string{"sun flowers", "x"}},
		{name: "empty file", content: "", wantErr: "file is empty"},
		{name: "only blank lines", content: "\n\n  \n", wantErr: "file is empty"},
		{name: "blank line in the middle", content: "a\n\nb\n", wantErr: "line 2 is empty"},
		{name: "leading blank line", content: "\na\nb\n", wantErr: "line 1 is empty"},
		{name: "duplicate", content: "a\nb\n a\n", wantErr: `"a" appears twice (lines 1 and 3)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "labels.txt")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadLabelsFile(path)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrLabelsFile) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error = %v, want ErrLabelsFile naming %s and containing %q", err, path, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ReadLabelsFile = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		if _, err := ReadLabelsFile(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error = %v, want ErrNotExist", err)
		}
	})
}

func TestWriteLabelsFile(t *testing.T) {
	tests := []struct {
		name    string
		classes []string
		wantErr string
	}{
		{name: "round trip", classes: []string{"daisy", "dandelion", "sun flowers"}},
		{name: "empty list", classes: nil, wantErr: "no class names"},
		{name: "empty name", classes: []string{"a", ""}, wantErr: "label 1 is empty"},
		{name: "duplicate", classes: []string{"a", "b", "a"}, wantErr: `"a" appears twice`},
		{name: "newline in name", classes: []string{"a", "b\nc"}, wantErr: "would not read back unchanged"},
		{name: "surrounding space", classes: []string{"a ", "b"}, wantErr: "would not read back unchanged"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "labels.txt")
			err := WriteLabelsFile(path, tc.classes)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrLabelsFile) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want ErrLabelsFile containing %q", err, tc.wantErr)
				}
				if _, statErr := os.Stat(path); !errors.Is(statErr, os.ErrNotExist) {
					t.Errorf("file written despite error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := ReadLabelsFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.classes) {
				t.Errorf("read back %q, want %q", got, tc.classes)
			}
		})
	}
}
