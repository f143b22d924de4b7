//! The editor's browser side: drafts kept in localStorage, runs sent through the API with
//! their output followed live, and Stop. On the server (and so without JavaScript) the
//! controls are inert: the editor's form posts to the no-JavaScript run instead.

use crate::components::output::Typed;
use crate::model::{LanguageInfo, QuotaInfo, Run};
use leptos::prelude::*;

#[cfg(feature = "hydrate")]
mod client;
#[cfg(feature = "hydrate")]
mod drafts;
#[cfg(feature = "hydrate")]
mod execute;

/// The editor state the page shows and the client reads and writes.
#[derive(Clone, Copy)]
pub struct Signals {
    pub language: RwSignal<String>,
    pub code: RwSignal<String>,
    pub stdin: RwSignal<String>,
    /// The run on screen: the one going on, or the last one.
    pub run: RwSignal<Option<Run>>,
    pub running: RwSignal<bool>,
    /// What the status line says instead of the run (a refusal, a lost connection).
    pub message: RwSignal<Option<String>>,
    /// A guest's runs left today; `None` for a signed-in user.
    pub quota: RwSignal<Option<QuotaInfo>>,
    /// What was typed into the run on screen, echoed in its output.
    pub typed: RwSignal<Typed>,
    /// The run on screen takes typed input now (it runs interactively and its input has
    /// not ended).
    pub input_open: RwSignal<bool>,
}

/// What the editor's controls call.
#[derive(Clone, Copy)]
pub struct Actions {
    /// Run the code (the Run button, Ctrl+Enter).
    pub start: Callback<()>,
    /// Stop the run going on.
    pub stop: Callback<()>,
    /// Switch to another language, with that language's draft.
    pub switch: Callback<String>,
    /// Type into the running program: the text (a line with its newline), and whether
    /// input ends after it.
    pub input: Callback<(String, bool)>,
}

impl Actions {
    /// Wires the controls to the state. `opened`: the page was opened from the history
    /// with a run's code, which then becomes the draft instead of being replaced by the
    /// stored one.
    pub fn connect(state: Signals, langs: &[LanguageInfo], opened: bool) -> Actions {
        #[cfg(feature = "hydrate")]
        {
            client::Client::new(state, langs, opened).actions()
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = (state, langs, opened);
            Actions {
                start: Callback::new(|_: ()| {}),
                stop: Callback::new(|_: ()| {}),
                switch: Callback::new(|_: String| {}),
                input: Callback::new(|_: (String, bool)| {}),
            }
        }
    }
}
