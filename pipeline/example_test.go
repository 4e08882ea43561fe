package pipeline

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// Hand-built wire data for the cases EncodeExample never produces.
func pbBytes(num protowire.Number, v []byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func pbVarint(num protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// exampleOf wraps map entries (key → Feature bytes) into an Example.
func exampleOf(entries ...[2][]byte) []byte {
	var feats []byte
	for _, e := range entries {
		feats = append(feats, pbBytes(fieldFeaturesMap, cat(pbBytes(fieldMapKey, e[0]), pbBytes(fieldMapValue, e[1])))...)
	}
	return pbBytes(fieldExampleFeatures, feats)
}

func entry(key string, feature []byte) [2][]byte { return [2][]byte{[]byte(key), feature} }

func TestParseExample(t *testing.T) {
	img := fakeJPEG("img")
	imgFeat := pbBytes(fieldBytesList, pbBytes(fieldListValue, img))
	clsFeat := func(v uint64) []byte { return pbBytes(fieldInt64List, pbVarint(fieldListValue, v)) }
	packed := func(vs ...uint64) []byte {
		var p []byte
		for _, v := range vs {
			p = protowire.AppendVarint(p, v)
		}
		return pbBytes(fieldInt64List, pbBytes(fieldListValue, p))
	}
	tests := []struct {
		name      string
		in        []byte
		wantImage []byte // nil: absent
		wantLabel int64
		hasLabel  bool
		wantErr   string
	}{
		{name: "EncodeExample", in: EncodeExample(img, 3), wantImage: img, wantLabel: 3, hasLabel: true},
		{name: "negative label", in: EncodeExample(img, -2), wantImage: img, wantLabel: -2, hasLabel: true},
		{name: "empty image present", in: EncodeExample(nil, 1), wantImage: []byte{}, wantLabel: 1, hasLabel: true},
		{name: "packed int64", in: exampleOf(entry("image", imgFeat), entry("class", packed(4))), wantImage: img, wantLabel: 4, hasLabel: true},
		{
			name:      "extra features and float list ignored",
			in:        exampleOf(entry("id", pbBytes(fieldBytesList, pbBytes(fieldListValue, []byte("x")))), entry("w", pbBytes(fieldFloatList, pbBytes(fieldListValue, make([]byte, 8)))), entry("image", imgFeat), entry("class", clsFeat(1))),
			wantImage: img, wantLabel: 1, hasLabel: true,
		},
		{name: "duplicate key: last wins", in: exampleOf(entry("class", clsFeat(1)), entry("image", imgFeat), entry("class", clsFeat(2))), wantImage: img, wantLabel: 2, hasLabel: true},
		{name: "unknown top-level field skipped", in: cat(pbVarint(7, 1), EncodeExample(img, 0)), wantImage: img, wantLabel: 0, hasLabel: true},
		{name: "no image", in: exampleOf(entry("class", clsFeat(1))), wantLabel: 1, hasLabel: true},
		{name: "no class", in: exampleOf(entry("image", imgFeat)), wantImage: img},
		{name: "empty example", in: nil},
		{name: "two labels", in: exampleOf(entry("image", imgFeat), entry("class", packed(1, 2))), wantErr: "int64_list with 1 value, got an int64_list with 2 values"},
		{name: "image as int64", in: exampleOf(entry("image", clsFeat(1)), entry("class", clsFeat(1))), wantErr: `feature "image": want a bytes_list`},
		{name: "class as float", in: exampleOf(entry("image", imgFeat), entry("class", pbBytes(fieldFloatList, pbBytes(fieldListValue, make([]byte, 4))))), wantErr: "got a float_list with 1 values"},
		{name: "bad packed float", in: exampleOf(entry("class", pbBytes(fieldFloatList, pbBytes(fieldListValue, make([]byte, 3))))), wantErr: "not a multiple of 4"},
		{name: "truncated", in: EncodeExample(img, 1)[:10], wantErr: "parse tf.train.Example"},
		{name: "garbage", in: []byte{0xff, 0xff, 0xff}, wantErr: "parse tf.train.Example"},
		{name: "group", in: protowire.AppendTag(nil, 1, protowire.StartGroupType), wantErr: "unexpected group"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := parseExample(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseExample error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseExample: %v", err)
			}
			if (ex.image == nil) != (tc.wantImage == nil) || !bytes.Equal(ex.image, tc.wantImage) {
				t.Errorf("image = %q, want %q", ex.image, tc.wantImage)
			}
			if ex.hasLabel != tc.hasLabel || ex.label != tc.wantLabel {
				t.Errorf("label = %d (present %t), want %d (present %t)", ex.label, ex.hasLabel, tc.wantLabel, tc.hasLabel)
			}
		})
	}
}
