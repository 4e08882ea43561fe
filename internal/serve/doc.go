// Package serve answers TensorFlow Serving's REST predict API for the models
// tfflowers exports, so that clients written for TF Serving work unchanged
// against `tfflowers serve`.
//
// The package is pure Go: the model itself is behind the Model interface,
// which the TensorFlow-backed implementation satisfies elsewhere, so the
// HTTP, batching and version-management logic can be built and tested
// without the TensorFlow C library.
//
// # Endpoints
//
//	POST /v1/models/{name}[/versions/{N}]:predict
//	GET  /v1/models/{name}[/versions/{N}]
//	GET  /v1/models/{name}[/versions/{N}]/metadata
//
// Predict accepts the row ("instances") and columnar ("inputs") formats for
// the serving_default signature (input image_bytes, base64 as {"b64": ...})
// and the predict_images signature (input images, [h][w][3] numbers in
// 0..255), and answers with "predictions" or "outputs" respectively, each
// naming the scores, classes and class_ids outputs.
//
// # Versions
//
// BaseDir holds one directory per version, named by a non-negative integer
// and containing saved_model.pb; anything else (notably dot-prefixed
// temporary directories of an export in progress) is ignored. New loads the
// newest; a watcher rescans every PollInterval and loads any newer version,
// which then becomes the default. As in TF Serving's default "latest: 1"
// policy the previous version stops taking new requests (a request naming
// it gets 404) and is closed once the requests already using it finish, so
// at most the newest two are loaded while a switch drains. A version that
// fails to load is logged and retried only after its directory changes.
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
// does); 404 for an unknown model, version or path; 405 for a wrong method;
// 413 for a body over MaxBodyBytes; 503 when overloaded or shutting down;
// 500 when the model fails or panics. Panics in handlers, in Model.Predict
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
// requests before calling Close.
package serve
