//! A private containerd for tests, demos and benchmarks: its config, busybox and pause images, and a CRI client.
