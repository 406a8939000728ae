//! containerd-shim-undertaker-v2: a containerd shim v2 that drives runc and reaps and kills everything a container leaves.
