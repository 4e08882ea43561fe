package pipeline

import "bytes"

// Format of an encoded image, sniffed from its first bytes rather than its
// file extension, because photo collections routinely contain PNGs named
// .jpg and the like; what matters is what TensorFlow will see.
type Format int

// Known formats. FormatUnknown is the zero value.
const (
	FormatUnknown Format = iota
	FormatJPEG
	FormatPNG
	FormatGIF
	FormatBMP
	FormatWebP
)

// sniffLen is how many leading bytes SniffFormat needs at most (the WebP
// RIFF header is the longest signature).
const sniffLen = 12

// String returns a short upper-case name such as "JPEG".
func (f Format) String() string {
	switch f {
	case FormatJPEG:
		return "JPEG"
	case FormatPNG:
		return "PNG"
	case FormatGIF:
		return "GIF"
	case FormatBMP:
		return "BMP"
	case FormatWebP:
		return "WebP"
	default:
		return "unknown"
	}
}

// SniffFormat identifies an encoded image from its first bytes. The JPEG,
// PNG, GIF and BMP signatures are the ones TensorFlow's DecodeImage op
// checks, so a file sniffed as one of them is dispatched to the matching
// decoder there too.
func SniffFormat(b []byte) Format {
	switch {
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		return FormatJPEG
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return FormatPNG
	case bytes.HasPrefix(b, []byte("GIF8")):
		return FormatGIF
	case bytes.HasPrefix(b, []byte("BM")):
		return FormatBMP
	case len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")):
		return FormatWebP
	default:
		return FormatUnknown
	}
}

// DecodableByTF reports whether TensorFlow's DecodeImage can read the
// format in every TensorFlow version tfflowers supports. WebP is recognised only
// so that the skip reason can say what the file is and how to fix it.
func (f Format) DecodableByTF() bool {
	switch f {
	case FormatJPEG, FormatPNG, FormatGIF, FormatBMP:
		return true
	default:
		return false
	}
}

// undecodableReason explains why an image with these leading bytes cannot
// be used, or returns "" when it can.
func undecodableReason(head []byte) string {
	f := SniffFormat(head)
	switch {
	case f.DecodableByTF():
		return ""
	case len(head) == 0:
		return "empty image data"
	case f == FormatWebP:
		return "WebP image: not supported (TensorFlow 2.18's DecodeImage cannot read it); convert it to JPEG or PNG"
	default:
		n := min(len(head), 8)
		return "not a JPEG, PNG, GIF or BMP image (starts with " + quoteHead(head[:n]) + ")"
	}
}

// quoteHead renders leading bytes readably: text files show as text, binary
// as hex, which is what a user needs to recognise the file.
func quoteHead(b []byte) string {
	const hex = "0123456789abcdef"
	printable := len(b) > 0
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			printable = false
			break
		}
	}
	if printable {
		return "\"" + string(b) + "\""
	}
	out := make([]byte, 0, 3*len(b)+5)
	out = append(out, "bytes"...)
	for _, c := range b {
		out = append(out, ' ', hex[c>>4], hex[c&15])
	}
	return string(out)
}
