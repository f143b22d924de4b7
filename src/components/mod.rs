//! Reusable view pieces.

pub mod auth;
pub mod code_editor;
pub mod nav;
pub mod output;
pub mod quota;
pub mod run_client;
pub mod share;
