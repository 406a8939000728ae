//! Rewrites a bundle's OCI spec so undertaker-init runs as the container's PID 1; parses undertaker.io/ annotations.
