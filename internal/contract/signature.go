package contract

// The exported model's signatures, as TF Serving clients call them.
const (
	SignatureDefault = "serving_default" // input InputBytes: encoded images
	SignatureImages  = "predict_images"  // input InputImages: float32 [n][size][size][3] in 0..255
	PredictMethod    = "tensorflow/serving/predict"
	ServeTag         = "serve"
)

// Tensor keys of the signatures' inputs and outputs. Both signatures have the same outputs.
const (
	InputBytes     = "image_bytes"
	InputImages    = "images"
	OutputScores   = "scores"    // float32 [n][classes]
	OutputClasses  = "classes"   // string [n]: the predicted label
	OutputClassIDs = "class_ids" // int64 [n]: the predicted class id
)

// Files inside a version folder besides saved_model.pb.
const (
	ExportMetaPath = "assets.extra/tfflowers_export.json"
	WarmupPath     = "assets.extra/tf_serving_warmup_requests" // TF Serving replays these at load
	LabelsAsset    = "assets/labels.txt"
)
