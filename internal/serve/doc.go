// Package serve answers TensorFlow Serving's REST and gRPC APIs for the
// models tfflowers exports, so that clients written for TF Serving work
// unchanged against `tfflowers serve`.
//
// The package is pure Go: the model itself is behind the Model interface,
// which the TensorFlow-backed implementation satisfies elsewhere, so the
// HTTP, gRPC, batching and version-management logic can be built and tested
// without the TensorFlow C library.
//
// # Endpoints
//
//	POST /v1/models/{name}[/versions/{N}|/labels/{L}]:predict (:classify, :regress)
//	GET  /v1/models/{name}[/versions/{N}|/labels/{L}]
//	GET  /v1/models/{name}[/versions/{N}|/labels/{L}]/metadata
//	gRPC tensorflow.serving.PredictionService, tensorflow.serving.ModelService/GetModelStatus
//
// Paths match case-insensitively, as TF Serving's regular expressions do.
// Predict accepts the row ("instances") and columnar ("inputs") formats for
// the serving_default signature (input image_bytes, base64 as {"b64": ...})
// and the predict_images signature (input images, [h][w][3] numbers in
// 0..255), and answers with "predictions" or "outputs" respectively, each
// naming the scores, classes and class_ids outputs. Over gRPC the same
// inputs are TensorProtos (DT_STRING [n], DT_FLOAT [n,h,w,3]). Metadata is
// the SignatureDefs stored in the export. Classify and regress answer as TF
// Serving does for a model without such signatures.
//
// # Versions
//
// Each model's base folder holds one directory per version, named by a
// non-negative integer and containing saved_model.pb; anything else
// (notably dot-prefixed temporary directories of an export in progress) is
// ignored. Config.Models (TF Serving's --model_config_file, see
// ReadModelConfigFile) serves several models, each with a version policy
// (latest N, specific versions, all) and version labels; Config.BaseDir and
// Name serve one model's newest version. A watcher rescans every
// PollInterval and loads what the policy asks for. Under "latest N" a
// version pushed out of the newest N stops taking new requests (a request
// naming it gets 404) and is closed once the requests already using it
// finish. A version that fails to load is logged and retried only after
// its directory changes.
//
// # Guarded input
//
// Every encoded image is inspected (Config.Inspect, by default InspectImage:
// training's header reader and pixel budget) before it is queued: a
// decompression bomb or a non-image is refused with 400 / INVALID_ARGUMENT
// at once, without decoding, and never joins another client's batch.
//
// # Batching
//
// Concurrent requests for the same version and signature share a batcher:
// their images join one queue, and a goroutine per batcher takes up to
// MaxBatch images (waiting at most BatchTimeout for the batch to fill) into
// one Model.Predict call, then hands each request its rows. A request's
// images may span batches. QueueSize bounds the images waiting across all
// batchers; a request that does not fit gets 503 at once.
//
// # Error handling
//
// Every failure a client can cause is answered TF Serving style as
// {"error": "..."}: 400 for malformed JSON, unknown signatures or inputs,
// bad base64, wrong shapes, too many instances, or an image the model cannot
// decode (the whole request fails, naming the instance, as TF Serving
// does), and "Malformed request" for a path or method TF Serving does not
// serve; 404 for an unknown model or version; 413 for a body over
// MaxBodyBytes; 503 when overloaded or shutting down; 500 when the model
// fails or panics. gRPC answers TF Serving's codes: INVALID_ARGUMENT,
// FAILED_PRECONDITION (unknown signature), NOT_FOUND, RESOURCE_EXHAUSTED
// (overloaded, or a message over MaxBodyBytes), UNAVAILABLE, INTERNAL. Panics in handlers, in Model.Predict
// and in the Loader are recovered and logged with their stack; the server
// keeps serving. New, Run and Close return errors prefixed "serve:" that
// wrap their causes.
//
// # Ownership
//
// The Server owns every Model its Loader returns and calls Close on each
// exactly once: when a newer version replaces it and no request holds it,
// or on Server.Close. Labels and ImageSize are read once at load time. The
// slices passed to Model.Predict and PredictPixels belong to the model for
// the duration of the call only; the slices it returns are kept until the
// response is written and never modified.
//
// # Concurrency
//
// All Server methods and the Handler are safe for concurrent use. Each
// loaded version has two batcher goroutines (one per signature), so a
// Model sees at most one Predict and one PredictPixels call at a time, and
// never a call after (or concurrent with) its Close. Loading happens on the
// watcher goroutine, so a slow Loader delays only the next version switch,
// never requests. Close waits for in-flight requests to release their
// versions; it cancels the context given to the model so that a model that
// honours it lets them finish quickly. Run's graceful shutdown drains HTTP
// requests on both APIs before calling Close.
package serve
