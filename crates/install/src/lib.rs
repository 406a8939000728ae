//! Registers the undertaker runtime in containerd's config, installs the binaries, and undoes both.
