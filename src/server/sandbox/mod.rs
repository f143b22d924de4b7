//! The sandbox: languages, container flags, warm pool and the engine that runs code.

pub mod container;
mod demote;
pub mod engine;
pub mod languages;
pub mod output;
mod pool;
mod protocol;
pub mod slots;
mod step;
mod sweep;
mod verdict;

pub use engine::{Engine, Event, Outcome, Program, Refusal, Ticket};
pub use languages::{find as find_language, Language, LANGUAGES};
pub use sweep::Liveness;
