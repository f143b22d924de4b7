//! Server functions: the pages' door to the services. Thin: parse, call, map errors.

pub mod auth;
pub mod history;
pub mod runs;
