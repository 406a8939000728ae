//! A tiny static PID 1 that reaps every orphan, forwards signals and reports what it did.
