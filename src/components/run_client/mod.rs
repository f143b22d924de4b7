//! The editor's browser side: drafts kept in localStorage, runs sent through the API with
//! their output followed live, and Stop. On the server (and so without JavaScript) the
//! controls are inert: the editor's form posts to the no-JavaScript run instead.

use crate::components::output::Typed;
use crate::model::{file_name_problem, LanguageInfo, QuotaInfo, Run, SourceFile};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

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
    /// The program's files. `code` is the one on screen, `files[active]`, whose copy
    /// here is brought up to date (`flush`) before anything reads the files.
    pub files: RwSignal<Vec<SourceFile>>,
    pub active: RwSignal<usize>,
    /// The entry file's name.
    pub main: RwSignal<String>,
    /// The arguments as typed (split like a shell's words when the run is sent).
    pub args: RwSignal<String>,
    /// Chosen limits as typed; empty: the language's default.
    pub time_ms: RwSignal<String>,
    pub memory_mb: RwSignal<String>,
    /// The options panel is open.
    pub options: RwSignal<bool>,
    /// Runs take typed input while they run (the "Interactive" toggle); off, a run
    /// reads only the stdin box and sees its end at once.
    pub interactive: RwSignal<bool>,
    /// What was typed into the run on screen, echoed in its output.
    pub typed: RwSignal<Typed>,
    /// Run waits: a refusal (runs in flight, a rate) said to try again later, and
    /// Run stays disabled until then.
    pub held: RwSignal<bool>,
    /// The run on screen takes typed input now (it runs interactively and its input has
    /// not ended).
    pub input_open: RwSignal<bool>,
}

/// Everything of a program the editor keeps: what a draft stores, what a saved run
/// reopens with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub files: Vec<SourceFile>,
    pub main: String,
    #[serde(default)]
    pub args: String,
    #[serde(default)]
    pub time_ms: String,
    #[serde(default)]
    pub memory_mb: String,
    #[serde(default)]
    pub options: bool,
    #[serde(default)]
    pub interactive: bool,
}

impl Draft {
    /// A program of one file.
    pub fn single(name: &str, code: &str) -> Draft {
        Draft {
            files: vec![SourceFile {
                name: name.into(),
                content: code.into(),
            }],
            main: name.into(),
            ..Draft::default()
        }
    }

    /// A saved run as the editor reopens it (its limits only where they differ from the
    /// language's defaults). `None` for a run without its code.
    pub fn from_run(r: &Run, lang: &LanguageInfo) -> Option<Draft> {
        let mut d = match (&r.files, &r.code) {
            (Some(files), _) if !files.is_empty() => Draft {
                files: files.clone(),
                main: r.main.clone().unwrap_or_else(|| files[0].name.clone()),
                ..Draft::default()
            },
            (_, Some(code)) => Draft::single(&lang.source_file, code),
            _ => return None,
        };
        d.args = crate::model::join_args(r.args.as_deref().unwrap_or_default());
        let limits = r.limits.unwrap_or_default();
        let differs = |v: Option<u64>, default: u64| {
            v.filter(|v| *v != default)
                .map(|v| v.to_string())
                .unwrap_or_default()
        };
        d.time_ms = differs(limits.time_ms, lang.limits.time_ms.default);
        d.memory_mb = differs(limits.memory_mb, lang.limits.memory_mb.default);
        d.interactive = r.interactive;
        d.options = !(d.args.is_empty() && d.time_ms.is_empty() && d.memory_mb.is_empty());
        Some(d)
    }

    /// Whether this is the plain single file of `lang` (sent as `code`).
    pub fn is_single(&self, lang: &LanguageInfo) -> bool {
        self.files.len() == 1 && self.files[0].name == lang.source_file
    }
}

impl Signals {
    /// The signals for a page that opens with `draft`.
    pub fn new(language: String, draft: Draft, stdin: String) -> Signals {
        let active = draft
            .files
            .iter()
            .position(|f| f.name == draft.main)
            .unwrap_or(0);
        let code = draft
            .files
            .get(active)
            .map(|f| f.content.clone())
            .unwrap_or_default();
        Signals {
            language: RwSignal::new(language),
            code: RwSignal::new(code),
            stdin: RwSignal::new(stdin),
            run: RwSignal::new(None),
            running: RwSignal::new(false),
            message: RwSignal::new(None),
            quota: RwSignal::new(None),
            files: RwSignal::new(draft.files),
            active: RwSignal::new(active),
            main: RwSignal::new(draft.main),
            args: RwSignal::new(draft.args),
            time_ms: RwSignal::new(draft.time_ms),
            memory_mb: RwSignal::new(draft.memory_mb),
            options: RwSignal::new(draft.options),
            interactive: RwSignal::new(draft.interactive),
            typed: RwSignal::new(Typed::default()),
            input_open: RwSignal::new(false),
            held: RwSignal::new(false),
        }
    }

    /// Whether Run makes sense now: no run going on, no refusal to wait out, and runs
    /// left for a guest.
    pub fn can_run(self) -> bool {
        !self.running.get()
            && !self.held.get()
            && self
                .quota
                .with(|q| q.as_ref().is_none_or(|q| q.remaining > 0))
    }

    /// Copies the text on screen into its file.
    fn flush(self) {
        let (i, code) = (self.active.get_untracked(), self.code.get_untracked());
        self.files.update(|f| {
            if let Some(f) = f.get_mut(i) {
                if f.content != code {
                    f.content = code;
                }
            }
        });
    }

    /// The program as it stands (reads the signals it names, so an effect calling it
    /// follows every change).
    pub fn draft(self) -> Draft {
        let mut files = self.files.get();
        if let Some(f) = files.get_mut(self.active.get()) {
            f.content = self.code.get();
        }
        Draft {
            files,
            main: self.main.get(),
            args: self.args.get(),
            time_ms: self.time_ms.get(),
            memory_mb: self.memory_mb.get(),
            options: self.options.get(),
            interactive: self.interactive.get(),
        }
    }

    /// Puts `draft` on screen (another language's, or a reopened run).
    pub fn load(self, draft: Draft) {
        let fresh = Signals::new(String::new(), draft, String::new());
        self.files.set(fresh.files.get_untracked());
        self.active.set(fresh.active.get_untracked());
        self.code.set(fresh.code.get_untracked());
        self.main.set(fresh.main.get_untracked());
        self.args.set(fresh.args.get_untracked());
        self.time_ms.set(fresh.time_ms.get_untracked());
        self.memory_mb.set(fresh.memory_mb.get_untracked());
        self.options.set(fresh.options.get_untracked());
        self.interactive.set(fresh.interactive.get_untracked());
    }

    /// Shows file `i`.
    pub fn select(self, i: usize) {
        self.flush();
        if let Some(f) = self.files.with_untracked(|f| f.get(i).cloned()) {
            self.active.set(i);
            self.code.set(f.content);
        }
    }

    /// Why `name` cannot be a new name for a file (the one at `except` may keep it).
    fn name_refused(self, name: &str, except: Option<usize>) -> Option<String> {
        if let Some(p) = file_name_problem(name) {
            return Some(format!("\"{name}\" cannot be a file name: {p}"));
        }
        let taken = self.files.with_untracked(|f| {
            f.iter().enumerate().any(|(i, f)| {
                Some(i) != except
                    && (f.name == name
                        || f.name.split_once('/').is_some_and(|(d, _)| d == name)
                        || name.split_once('/').is_some_and(|(d, _)| d == f.name))
            })
        });
        taken.then(|| format!("There is already a file or directory named \"{name}\"."))
    }

    /// Adds an empty file and shows it; the refusal says why not.
    pub fn add_file(self, name: &str) -> Result<(), String> {
        if self.files.with_untracked(Vec::len) >= 20 {
            return Err("A program has at most 20 files.".into());
        }
        if let Some(e) = self.name_refused(name, None) {
            return Err(e);
        }
        self.flush();
        self.files.update(|f| {
            f.push(SourceFile {
                name: name.into(),
                content: String::new(),
            })
        });
        self.select(self.files.with_untracked(Vec::len) - 1);
        Ok(())
    }

    /// Renames file `i` (and the entry with it).
    pub fn rename_file(self, i: usize, name: &str) -> Result<(), String> {
        if let Some(e) = self.name_refused(name, Some(i)) {
            return Err(e);
        }
        let Some(old) = self
            .files
            .with_untracked(|f| f.get(i).map(|f| f.name.clone()))
        else {
            return Ok(());
        };
        self.files.update(|f| f[i].name = name.into());
        if self.main.get_untracked() == old {
            self.main.set(name.into());
        }
        Ok(())
    }

    /// Deletes file `i` (never the last one); the entry moves to the first file if it
    /// was this one.
    pub fn delete_file(self, i: usize) {
        if self.files.with_untracked(Vec::len) <= 1 {
            return;
        }
        self.flush();
        let mut removed = None;
        self.files.update(|f| removed = Some(f.remove(i)));
        let first = self.files.with_untracked(|f| f[0].name.clone());
        if removed.is_some_and(|r| r.name == self.main.get_untracked()) {
            self.main.set(first);
        }
        let active = self.active.get_untracked();
        let next = if active > i || active >= self.files.with_untracked(Vec::len) {
            active.saturating_sub(1)
        } else {
            active
        };
        // The text on screen was flushed: show the file now at `next` without flushing
        // the old text into it.
        self.active.set(next);
        self.code
            .set(self.files.with_untracked(|f| f[next].content.clone()));
    }
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
