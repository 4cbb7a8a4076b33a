//! Go's `sync` package on park/unpark.
