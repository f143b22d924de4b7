//! One file per page.

pub mod editor;
pub mod not_found;
pub mod run_detail;
