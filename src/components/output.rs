//! The output panel and the verdict badge, shared by the editor and the run page.

use crate::model::{Run, RunStatus, Verdict};
use leptos::prelude::*;

/// A coloured badge naming how a run ended.
#[component]
pub fn VerdictBadge(verdict: Verdict) -> impl IntoView {
    view! { <span class=format!("badge verdict-{}", verdict.as_str()) data-verdict=verdict.as_str()>{verdict.label()}</span> }
}

/// Compile output, stdout and stderr of a run, told apart.
#[component]
pub fn OutputView(#[prop(into)] run: Signal<Option<Run>>) -> impl IntoView {
    view! {
        <div class="output" role="log" aria-live="polite" aria-label="Program output">
            {move || match run.get() {
                None => view! { <p class="empty">"Press Run or Ctrl+Enter"</p> }.into_any(),
                Some(r) => {
                    let silent = r.stdout.is_empty() && r.stderr.is_empty() && r.compile_output.is_empty();
                    let note = match (silent, r.status) {
                        (true, RunStatus::Finished) => Some("(no output)"),
                        (true, _) => Some("Waiting for output…"),
                        _ => None,
                    };
                    let compile = (!r.compile_output.is_empty()).then(|| {
                        view! { <pre class="stream compile" data-stream="compile">{r.compile_output.clone()}</pre> }
                    });
                    view! {
                        {compile}
                        <pre class="stream stdout" data-stream="stdout">{r.stdout.clone()}</pre>
                        <pre class="stream stderr" data-stream="stderr">{r.stderr.clone()}</pre>
                        {note.map(|n| view! { <p class="empty">{n}</p> })}
                        {r.truncated.then(|| view! { <p class="note">"Output was cut off at the size limit."</p> })}
                    }
                    .into_any()
                }
            }}
        </div>
    }
}

/// The status line under the editor: verdict badge and measures, or what is happening.
#[component]
pub fn StatusLine(
    #[prop(into)] run: Signal<Option<Run>>,
    #[prop(into)] message: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <footer class="status-line" role="status">
            {move || {
                if let Some(m) = message.get() {
                    return view! { <span class="status-message">{m}</span> }.into_any();
                }
                match run.get() {
                    None => view! { <span class="status-message muted">"Ready"</span> }.into_any(),
                    Some(r) => match r.verdict {
                        Some(v) => {
                            let rest = r.summary().split(" · ").skip(1).collect::<Vec<_>>().join(" · ");
                            view! { <VerdictBadge verdict=v/><span class="measures">{rest}</span> }.into_any()
                        }
                        None => {
                            let what = if r.status == RunStatus::Queued { "Queued…" } else { "Running…" };
                            view! { <span class="spinner" aria-hidden="true"></span><span class="status-message">{what}</span> }.into_any()
                        }
                    },
                }
            }}
        </footer>
    }
}
