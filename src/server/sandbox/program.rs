//! A checked program as the engine runs it: a leaf that the engine, the supervisor
//! protocol and the run step all read.

use std::time::Duration;

/// One checked program as the engine runs it (the run service checks requests, see
/// `runs::program`): its files, entry file, arguments and limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// Written into the work dir, in this order.
    pub files: Vec<crate::model::SourceFile>,
    /// The entry file, one of `files`.
    pub main: String,
    /// The program's arguments (after its name in argv).
    pub args: Vec<String>,
    /// Wall-clock limit of the run step.
    pub time: Duration,
    /// Whether the caller chose `time` (then it bounds an interactive run too, instead of
    /// the longer limit that lets a person type).
    pub time_chosen: bool,
    /// Memory limit of the container.
    pub memory_mb: u64,
}
