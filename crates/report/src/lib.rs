//! The report channel between undertaker-init and the shim: a versioned line format, its writer and its parser.
