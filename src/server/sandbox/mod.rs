//! The sandbox: languages, container flags, warm pool and the engine that runs code.

pub mod container;
mod demote;
pub mod engine;
pub mod languages;
pub mod output;
mod pool;
mod program;
mod protocol;
pub mod slots;
mod step;
mod sweep;
mod verdict;

pub use engine::{Engine, Event, Outcome, Program, Refusal, Ticket, Typed};
pub use languages::{find as find_language, Language, LanguageFilter, LanguageId, LANGUAGES};
pub use sweep::Liveness;
pub use verdict::signal_number;
