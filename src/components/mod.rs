//! Reusable view pieces.

pub mod code_editor;
pub mod nav;
pub mod output;
