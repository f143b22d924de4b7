//! One file per page.

pub mod auth;
pub mod editor;
pub mod history;
pub mod not_found;
pub mod run_detail;
pub mod shared;
