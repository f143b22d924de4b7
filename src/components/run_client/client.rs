//! The client: the editor's signals, the run it follows, and the starter templates.

use super::drafts::Drafts;
use super::{Actions, Draft, Signals};
use crate::model::LanguageInfo;
use gloo_net::http::Request;
use leptos::prelude::*;
use leptos::task::spawn_local;

#[derive(Clone, Copy)]
pub struct Client {
    pub(super) state: Signals,
    /// The run Stop stops.
    pub(super) run_id: RwSignal<Option<String>>,
    langs: StoredValue<Vec<LanguageInfo>>,
}

impl Client {
    pub fn new(state: Signals, langs: &[LanguageInfo], opened: bool) -> Client {
        let c = Client {
            state,
            run_id: RwSignal::new(None),
            langs: StoredValue::new(langs.to_vec()),
        };
        c.restore_draft(opened);
        c.keep_drafts();
        c
    }

    pub fn actions(self) -> Actions {
        Actions {
            start: self.start(),
            stop: self.stop(),
            switch: self.switch(),
            input: self.input(),
        }
    }

    /// The language `id` as the server described it.
    pub(super) fn language(self, id: &str) -> Option<LanguageInfo> {
        self.langs
            .with_value(|l| l.iter().find(|l| l.id == id).cloned())
    }

    /// `lang`'s draft, or its starter template as its one file.
    fn draft_or_template(self, drafts: Option<&Drafts>, lang: &str) -> Draft {
        let Some(info) = self.language(lang) else {
            return Draft::default();
        };
        drafts
            .and_then(|d| d.get(lang, &info.source_file))
            .unwrap_or_else(|| Draft::single(&info.source_file, &info.template))
    }

    /// After hydration (effects never run on the server), brings back the last language
    /// and its draft; a run opened from the history becomes that language's draft instead.
    fn restore_draft(self, opened: bool) {
        let explicit = leptos_router::hooks::use_query_map()
            .read_untracked()
            .get("lang")
            .is_some();
        let language = self.state.language;
        Effect::new(move |prev: Option<()>| {
            if prev.is_some() {
                return;
            }
            let Some(drafts) = Drafts::open() else { return };
            if opened {
                let lang = language.get_untracked();
                drafts.set_last_language(&lang);
                drafts.set(&lang, &untrack(|| self.state.draft()));
                return;
            }
            if !explicit {
                if let Some(l) = drafts.last_language() {
                    if self.language(&l).is_some() {
                        language.set(l);
                    }
                }
            }
            let lang = language.get_untracked();
            self.state
                .load(self.draft_or_template(Some(&drafts), &lang));
        });
    }

    /// Every change (text, files, entry, arguments, limits, the options panel) is saved
    /// as the draft of the current language.
    fn keep_drafts(self) {
        let state = self.state;
        Effect::new(move |first: Option<()>| {
            let draft = state.draft();
            if first.is_none() {
                return;
            }
            if let Some(drafts) = Drafts::open() {
                drafts.set(&state.language.get_untracked(), &draft);
            }
        });
    }

    fn switch(self) -> Callback<String> {
        Callback::new(move |lang: String| {
            let drafts = Drafts::open();
            let draft = self.draft_or_template(drafts.as_ref(), &lang);
            if let Some(d) = &drafts {
                d.set_last_language(&lang);
            }
            self.state.language.set(lang);
            self.state.load(draft);
        })
    }

    fn stop(self) -> Callback<()> {
        Callback::new(move |_| {
            let Some(id) = self.run_id.get_untracked() else {
                return;
            };
            spawn_local(async move {
                let _ = Request::post(&format!("/api/v1/runs/{id}/stop"))
                    .send()
                    .await;
            });
        })
    }

    /// Echoes what was typed where the output stands, then sends it, in order: one
    /// sender at a time drains the pieces typed meanwhile.
    fn input(self) -> Callback<(String, bool)> {
        let pending = StoredValue::new(std::collections::VecDeque::<(String, bool)>::new());
        let sending = StoredValue::new(false);
        Callback::new(move |(data, eof): (String, bool)| {
            let Some(id) = self.run_id.get_untracked() else {
                return;
            };
            if !self.state.input_open.get_untracked() {
                return;
            }
            if eof {
                self.state.input_open.set(false);
            }
            if !data.is_empty() {
                let at = self
                    .state
                    .run
                    .with_untracked(|r| r.as_ref().map_or(0, |r| r.stdout.len()));
                self.state.typed.update(|t| t.push((at, data.clone())));
            }
            pending.update_value(|p| p.push_back((data, eof)));
            if sending.get_value() {
                return;
            }
            sending.set_value(true);
            spawn_local(async move {
                while let Some((data, eof)) = pending.try_update_value(|p| p.pop_front()).flatten()
                {
                    if let Err(msg) = self.send_input(&id, data, eof).await {
                        self.state.message.set(Some(msg));
                    }
                }
                sending.set_value(false);
            });
        })
    }

    fn start(self) -> Callback<()> {
        let Signals {
            running, message, ..
        } = self.state;
        Callback::new(move |_| {
            // Ctrl+Enter too waits while the Run button is disabled.
            if !untrack(|| self.state.can_run()) {
                return;
            }
            running.set(true);
            message.set(None);
            spawn_local(async move {
                if let Err(msg) = self.execute().await {
                    message.set(Some(msg));
                }
                running.set(false);
            });
        })
    }
}
