package pipeline

import "testing"

func TestSniffFormat(t *testing.T) {
	tests := []struct {
		name      string
		in        []byte
		want      Format
		decodable bool
	}{
		{"jpeg", []byte("\xff\xd8\xff\xe0\x00\x10JFIF"), FormatJPEG, true},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), FormatPNG, true},
		{"gif87a", []byte("GIF87a\x01\x00"), FormatGIF, true},
		{"gif89a", []byte("GIF89a"), FormatGIF, true},
		{"bmp", []byte("BM6\x00\x00\x00"), FormatBMP, true},
		{"webp", []byte("RIFF\x24\x00\x00\x00WEBPVP8 "), FormatWebP, false},
		{"riff but not webp", []byte("RIFF\x24\x00\x00\x00WAVEfmt "), FormatUnknown, false},
		{"truncated webp", []byte("RIFF\x24\x00\x00\x00WEB"), FormatUnknown, false},
		{"truncated jpeg", []byte("\xff\xd8"), FormatUnknown, false},
		{"truncated png", []byte("\x89PNG\r\n"), FormatUnknown, false},
		{"text", []byte("hello, this is not an image"), FormatUnknown, false},
		{"html", []byte("<!DOCTYPE html>"), FormatUnknown, false},
		{"empty", nil, FormatUnknown, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := SniffFormat(tc.in)
			if got != tc.want {
				t.Fatalf("SniffFormat = %v, want %v", got, tc.want)
			}
			if got.DecodableByTF() != tc.decodable {
				t.Errorf("%v.DecodableByTF() = %v, want %v", got, got.DecodableByTF(), tc.decodable)
			}
		})
	}
}

func TestFormatString(t *testing.T) {
	tests := []struct {
		f    Format
		want string
	}{
		{FormatUnknown, "unknown"}, {FormatJPEG, "JPEG"}, {FormatPNG, "PNG"},
		{FormatGIF, "GIF"}, {FormatBMP, "BMP"}, {FormatWebP, "WebP"}, {Format(99), "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.f.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUndecodableReason(t *testing.T) {
	tests := []struct {
		name string
		head []byte
		want string
	}{
		{"jpeg ok", fakeJPEG("x"), ""},
		{"text shows as text", []byte("hello wo"), `not a JPEG, PNG, GIF or BMP image (starts with "hello wo")`},
		{"binary shows as hex", []byte{0, 1, 0xfe}, "not a JPEG, PNG, GIF or BMP image (starts with bytes 00 01 fe)"},
		{"empty", nil, "empty image data"},
		{"webp", []byte("RIFF\x00\x00\x00\x00WEBP"), "WebP image: not supported (TensorFlow 2.18's DecodeImage cannot read it); convert it to JPEG or PNG"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := undecodableReason(tc.head); got != tc.want {
				t.Errorf("undecodableReason = %q, want %q", got, tc.want)
			}
		})
	}
}
