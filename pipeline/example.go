package pipeline

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Feature names of the Keras flowers codelab TFRecords.
const (
	featureImage = "image"
	featureClass = "class"
)

// Field numbers of the tf.train.Example protos (tensorflow/core/example).
const (
	fieldExampleFeatures = 1 // Example.features: Features
	fieldFeaturesMap     = 1 // Features.feature: map<string, Feature>
	fieldMapKey          = 1
	fieldMapValue        = 2
	fieldBytesList       = 1 // Feature.kind oneof
	fieldFloatList       = 2
	fieldInt64List       = 3
	fieldListValue       = 1 // {Bytes,Float,Int64}List.value
)

// example is what the pipeline needs from a tf.train.Example.
type example struct {
	image    []byte // nil when the feature is absent; aliases the input
	label    int64
	hasLabel bool
}

// feature is one decoded tf.train.Feature; only the list kind that was set
// last is kept, as proto oneof semantics require.
type feature struct {
	kind   protowire.Number // 0 when no kind was set
	bytes  [][]byte
	int64s []int64
	floats int // count only: the pipeline never needs float features
}

// EncodeExample returns a serialized tf.train.Example in the Keras flowers
// codelab layout: "image" is a bytes_list holding the encoded image and
// "class" an int64_list holding the label. Together with WriteRecord it
// lets tests and tools produce TFRecord files without TensorFlow.
func EncodeExample(image []byte, class int64) []byte {
	var imgList, clsList []byte
	imgList = protowire.AppendTag(imgList, fieldListValue, protowire.BytesType)
	imgList = protowire.AppendBytes(imgList, image)
	clsList = protowire.AppendTag(clsList, fieldListValue, protowire.VarintType)
	clsList = protowire.AppendVarint(clsList, uint64(class))

	var features []byte
	// Map entries in key order, as TensorFlow's own serializer emits them.
	features = appendFeatureEntry(features, featureClass, fieldInt64List, clsList)
	features = appendFeatureEntry(features, featureImage, fieldBytesList, imgList)

	var ex []byte
	ex = protowire.AppendTag(ex, fieldExampleFeatures, protowire.BytesType)
	return protowire.AppendBytes(ex, features)
}

func appendFeatureEntry(b []byte, key string, kind protowire.Number, list []byte) []byte {
	var feat []byte
	feat = protowire.AppendTag(feat, kind, protowire.BytesType)
	feat = protowire.AppendBytes(feat, list)

	var entry []byte
	entry = protowire.AppendTag(entry, fieldMapKey, protowire.BytesType)
	entry = protowire.AppendString(entry, key)
	entry = protowire.AppendTag(entry, fieldMapValue, protowire.BytesType)
	entry = protowire.AppendBytes(entry, feat)

	b = protowire.AppendTag(b, fieldFeaturesMap, protowire.BytesType)
	return protowire.AppendBytes(b, entry)
}

// parseExample decodes a serialized tf.train.Example and extracts the
// image and class features. A missing feature is not a parse error (the
// caller decides what to report); malformed wire data or a feature of the
// wrong kind is.
func parseExample(b []byte) (example, error) {
	var ex example
	var img, cls *feature
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != fieldExampleFeatures || typ != protowire.BytesType {
			return nil // unknown fields are allowed by proto3
		}
		// Repeated occurrences of a message field merge, so each Features
		// submessage is simply walked in turn.
		return forEachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
			if num != fieldFeaturesMap || typ != protowire.BytesType {
				return nil
			}
			key, val, err := parseMapEntry(v)
			if err != nil {
				return err
			}
			if key != featureImage && key != featureClass {
				return nil
			}
			f, err := parseFeature(val)
			if err != nil {
				return fmt.Errorf("feature %q: %w", key, err)
			}
			// Duplicate map keys: the last one wins.
			if key == featureImage {
				img = &f
			} else {
				cls = &f
			}
			return nil
		})
	})
	if err != nil {
		return example{}, fmt.Errorf("parse tf.train.Example: %w", err)
	}
	if img != nil {
		if img.kind != fieldBytesList || len(img.bytes) != 1 {
			return example{}, fmt.Errorf("parse tf.train.Example: feature %q: want a bytes_list with 1 value, got %s", featureImage, img.describe())
		}
		ex.image = img.bytes[0]
		if ex.image == nil {
			ex.image = []byte{} // present but empty is not the same as missing
		}
	}
	if cls != nil {
		if cls.kind != fieldInt64List || len(cls.int64s) != 1 {
			return example{}, fmt.Errorf("parse tf.train.Example: feature %q: want an int64_list with 1 value, got %s", featureClass, cls.describe())
		}
		ex.label, ex.hasLabel = cls.int64s[0], true
	}
	return ex, nil
}

func (f *feature) describe() string {
	switch f.kind {
	case fieldBytesList:
		return fmt.Sprintf("a bytes_list with %d values", len(f.bytes))
	case fieldInt64List:
		return fmt.Sprintf("an int64_list with %d values", len(f.int64s))
	case fieldFloatList:
		return fmt.Sprintf("a float_list with %d values", f.floats)
	default:
		return "an empty feature"
	}
}

// parseMapEntry decodes one map<string, Feature> entry.
func parseMapEntry(b []byte) (key string, val []byte, err error) {
	err = forEachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fieldMapKey:
			key = string(v)
		case fieldMapValue:
			val = v
		}
		return nil
	})
	return key, val, err
}

// parseFeature decodes a tf.train.Feature.
func parseFeature(b []byte) (feature, error) {
	var f feature
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fieldBytesList, fieldFloatList, fieldInt64List:
		default:
			return nil
		}
		if f.kind != num {
			// A different oneof member replaces the previous one; the
			// same member appearing again merges (lists concatenate).
			f = feature{kind: num}
		}
		return forEachField(v, func(n protowire.Number, t protowire.Type, v []byte) error {
			if n != fieldListValue {
				return nil
			}
			return f.addValue(t, v)
		})
	})
	return f, err
}

// addValue appends one list element (or a packed run of them). v is the
// raw field value as returned by forEachField.
func (f *feature) addValue(t protowire.Type, v []byte) error {
	switch f.kind {
	case fieldBytesList:
		if t != protowire.BytesType {
			return errors.New("bytes_list value has wrong wire type")
		}
		f.bytes = append(f.bytes, v)
	case fieldInt64List:
		switch t {
		case protowire.VarintType:
			x, _ := protowire.ConsumeVarint(v) // already validated by forEachField
			f.int64s = append(f.int64s, int64(x))
		case protowire.BytesType: // packed
			for len(v) > 0 {
				x, n := protowire.ConsumeVarint(v)
				if n < 0 {
					return fmt.Errorf("packed int64_list: %w", protowire.ParseError(n))
				}
				f.int64s = append(f.int64s, int64(x))
				v = v[n:]
			}
		default:
			return errors.New("int64_list value has wrong wire type")
		}
	case fieldFloatList:
		switch t {
		case protowire.Fixed32Type:
			f.floats++
		case protowire.BytesType: // packed
			if len(v)%4 != 0 {
				return fmt.Errorf("packed float_list is %d bytes, not a multiple of 4", len(v))
			}
			f.floats += len(v) / 4
		default:
			return errors.New("float_list value has wrong wire type")
		}
	}
	return nil
}

// forEachField walks the fields of a serialized message. For varint and
// fixed fields v is the raw encoded value; for length-delimited fields it
// is the payload. Groups are rejected: no tf.train proto uses them.
func forEachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		switch typ {
		case protowire.BytesType:
			payload, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return fmt.Errorf("field %d: %w", num, protowire.ParseError(m))
			}
			v, n = payload, m
		case protowire.StartGroupType, protowire.EndGroupType:
			return fmt.Errorf("field %d: unexpected group", num)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			v = b[:n]
		}
		if err := fn(num, typ, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
