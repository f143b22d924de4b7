//! The output panel and the verdict badge, shared by the editor and the run page.

use crate::model::{Run, RunStatus, Verdict};
use leptos::prelude::*;

/// A coloured badge naming how a run ended.
#[component]
pub fn VerdictBadge(verdict: Verdict) -> impl IntoView {
    view! { <span class=format!("badge verdict-{}", verdict.as_str()) data-verdict=verdict.as_str()>{verdict.label()}</span> }
}

/// Input typed into a running program, each piece with the length its stdout had when
/// it was typed (where the piece shows in the transcript).
pub type Typed = Vec<(usize, String)>;

/// Stdout cut at the points where input was typed: `(typed, text)` pieces in order, so
/// the transcript reads like a terminal. A point past the end (or inside a character)
/// moves back to the nearest character boundary.
pub fn interleave(stdout: &str, typed: &[(usize, String)]) -> Vec<(bool, String)> {
    let mut pieces = Vec::new();
    let mut from = 0;
    for (at, text) in typed {
        let mut at = (*at).clamp(from, stdout.len());
        while !stdout.is_char_boundary(at) {
            at -= 1;
        }
        if at > from {
            pieces.push((false, stdout[from..at].to_string()));
            from = at;
        }
        pieces.push((true, text.clone()));
    }
    if from < stdout.len() || pieces.is_empty() {
        pieces.push((false, stdout[from..].to_string()));
    }
    pieces
}

/// Compile output, stdout and stderr of a run, told apart; `typed` input shows inside
/// stdout where it was typed, and `children` (the editor's input line) end the pane.
#[component]
pub fn OutputView(
    #[prop(into)] run: Signal<Option<Run>>,
    #[prop(optional, into)] typed: Option<Signal<Typed>>,
    #[prop(optional)] children: Option<ChildrenFn>,
) -> impl IntoView {
    let tail = children.map(|c| c());
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
                    let typed = typed.map(|t| t.get()).unwrap_or_default();
                    let stdout = interleave(&r.stdout, &typed)
                        .into_iter()
                        .map(|(was_typed, text)| if was_typed {
                            view! { <span class="typed">{text}</span> }.into_any()
                        } else {
                            text.into_any()
                        })
                        .collect_view();
                    view! {
                        {compile}
                        <pre class="stream stdout" data-stream="stdout">{stdout}</pre>
                        <pre class="stream stderr" data-stream="stderr">{r.stderr.clone()}</pre>
                        {note.map(|n| view! { <p class="empty">{n}</p> })}
                        {r.truncated.then(|| view! { <p class="note">"Output was cut off at the size limit."</p> })}
                    }
                    .into_any()
                }
            }}
            {tail}
        </div>
    }
}

/// The status line under the editor: verdict badge and measures, or what is happening.
#[component]
pub fn StatusLine(
    #[prop(into)] run: Signal<Option<Run>>,
    #[prop(into)] message: Signal<Option<String>>,
) -> impl IntoView {
    // While a run is in progress the line shows how long it has been going: the start
    // is when this page first saw the run unfinished, the clock ticks in the browser.
    let started = StoredValue::new(None::<(String, f64)>);
    let now = RwSignal::new(0.0f64);
    #[cfg(feature = "hydrate")]
    {
        let tick = move || {
            if run.with_untracked(|r| r.as_ref().is_some_and(|r| r.verdict.is_none())) {
                now.set(js_sys::Date::now());
            }
        };
        if let Ok(handle) = set_interval_with_handle(tick, std::time::Duration::from_millis(100)) {
            on_cleanup(move || handle.clear());
        }
    }
    let elapsed = move || {
        let (_, start) = started.get_value()?;
        let secs = ((now.get() - start) / 1000.0).max(0.0);
        Some(format!("{secs:.1} s"))
    };
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
                            #[cfg(feature = "hydrate")]
                            if started.with_value(|s| s.as_ref().map(|(id, _)| id) != Some(&r.id)) {
                                let t = js_sys::Date::now();
                                started.set_value(Some((r.id.clone(), t)));
                                now.set(t);
                            }
                            let what = if r.status == RunStatus::Queued { "Queued…" } else { "Running…" };
                            view! {
                                <span class="spinner" aria-hidden="true"></span>
                                <span class="status-message">{what}</span>
                                <span class="measures elapsed" data-testid="elapsed" aria-hidden="true">{elapsed}</span>
                            }
                            .into_any()
                        }
                    },
                }
            }}
        </footer>
    }
}

#[cfg(test)]
mod tests {
    use super::interleave;

    #[test]
    fn typed_input_shows_where_it_was_typed() {
        let typed = vec![(6, "Ada\n".to_string()), (20, "x\n".to_string())];
        assert_eq!(
            interleave("name? Hello, Ada!\n", &typed),
            vec![
                (false, "name? ".to_string()),
                (true, "Ada\n".to_string()),
                (false, "Hello, Ada!\n".to_string()),
                (true, "x\n".to_string()),
            ]
        );
        assert_eq!(interleave("out", &[]), vec![(false, "out".to_string())]);
        // A point inside a character moves back to its start.
        assert_eq!(
            interleave("é!", &[(1, "t".to_string())]),
            vec![(true, "t".to_string()), (false, "é!".to_string())]
        );
    }
}
