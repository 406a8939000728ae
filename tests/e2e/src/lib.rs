//! End-to-end tests against a real containerd through CRI.
