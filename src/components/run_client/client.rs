//! The client: the editor's signals, the run it follows, and the starter templates.

use super::drafts::Drafts;
use super::{Actions, Signals};
use crate::model::LanguageInfo;
use gloo_net::http::Request;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::HashMap;

#[derive(Clone, Copy)]
pub struct Client {
    pub(super) state: Signals,
    /// The run Stop stops.
    pub(super) run_id: RwSignal<Option<String>>,
    templates: StoredValue<HashMap<String, String>>,
}

impl Client {
    pub fn new(state: Signals, langs: &[LanguageInfo], opened: bool) -> Client {
        let templates = langs
            .iter()
            .map(|l| (l.id.clone(), l.template.clone()))
            .collect();
        let c = Client {
            state,
            run_id: RwSignal::new(None),
            templates: StoredValue::new(templates),
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

    fn template(self, lang: &str) -> String {
        self.templates
            .with_value(|t| t.get(lang).cloned().unwrap_or_default())
    }

    /// After hydration (effects never run on the server), brings back the last language
    /// and its draft; a run opened from the history becomes that language's draft instead.
    fn restore_draft(self, opened: bool) {
        let explicit = leptos_router::hooks::use_query_map()
            .read_untracked()
            .get("lang")
            .is_some();
        let Signals { language, code, .. } = self.state;
        Effect::new(move |prev: Option<()>| {
            if prev.is_some() {
                return;
            }
            let Some(drafts) = Drafts::open() else { return };
            if opened {
                let lang = language.get_untracked();
                drafts.set_last_language(&lang);
                drafts.set(&lang, &code.get_untracked());
                return;
            }
            if !explicit {
                if let Some(l) = drafts.last_language() {
                    if self.templates.with_value(|t| t.contains_key(&l)) {
                        language.set(l);
                    }
                }
            }
            let lang = language.get_untracked();
            code.set(drafts.get(&lang).unwrap_or_else(|| self.template(&lang)));
        });
    }

    /// Every edit is saved as the draft of the current language.
    fn keep_drafts(self) {
        let Signals { language, code, .. } = self.state;
        Effect::new(move |first: Option<()>| {
            let doc = code.get();
            if first.is_none() {
                return;
            }
            if let Some(drafts) = Drafts::open() {
                drafts.set(&language.get_untracked(), &doc);
            }
        });
    }

    fn switch(self) -> Callback<String> {
        Callback::new(move |lang: String| {
            let drafts = Drafts::open();
            let doc = drafts
                .as_ref()
                .and_then(|d| d.get(&lang))
                .unwrap_or_else(|| self.template(&lang));
            if let Some(d) = &drafts {
                d.set_last_language(&lang);
            }
            self.state.language.set(lang);
            self.state.code.set(doc);
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
            if running.get_untracked() {
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
