//! Server functions: the pages' door to the services. Thin: parse, call, map errors.

pub mod runs;
