package tfops

import "os"

// CPUAllocatorEnv is TensorFlow's switch for its best-fit-with-coalescing (BFC) allocator
// on the CPU, the one it always uses on GPUs. It is read when TensorFlow creates its CPU
// allocator, at the first session or tensor, so setting it here (package init, before any
// of that) is in time.
const CPUAllocatorEnv = "TF_CPU_ALLOCATOR_USE_BFC"

// init turns the BFC allocator on unless the user chose. By default TensorFlow's CPU
// tensors come straight from malloc; a MobileNetV2 step frees and reallocates activations
// of tens of MB, which glibc hands out as fresh mmaps, so every step page-faults them in
// again: half of a cold feature extraction's CPU time was system time. BFC keeps freed
// memory and reuses it. Measured on 2 cores (one run, back to back): feature extraction
// 24.9 -> 51.5 images/s (system CPU 42.6 s -> 3.7 s over the same images), fine-tuning
// from block_6 26.3 -> 29.2 images/s with a lower peak RSS (1820 -> 1625 MiB).
func init() {
	if _, set := os.LookupEnv(CPUAllocatorEnv); !set {
		_ = os.Setenv(CPUAllocatorEnv, "true") // a failure leaves TensorFlow's default, only slower
	}
}
