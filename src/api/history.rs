//! Server functions for the history pages.

use crate::error::AppError;
use crate::model::{HistoryPage, Run};
use leptos::prelude::*;

/// One page of the signed-in user's runs (20 a page), newest first. Only the first line
/// of each program is sent: the list needs no more.
#[server(prefix = "/fn", endpoint = "history")]
pub async fn list_history(page: u64, language: Option<String>) -> Result<HistoryPage, AppError> {
    crate::api::respond(
        async move {
            use crate::server::state::AppState;
            let state = expect_context::<AppState>();
            let caller = crate::api::runs::caller().await?;
            let page = page.to_string();
            let mut list = state
                .runs
                .history(&caller, Some(&page), None, language.as_deref())
                .await?;
            for run in &mut list.items {
                run.code = Some(program_line(run));
                run.files = None;
                run.stdin = None;
                run.stdout.clear();
                run.stderr.clear();
                run.compile_output.clear();
            }
            Ok(list)
        }
        .await,
    )
}

/// The line the history shows for a run: the first non-empty line of its code, or of
/// its entry file for a program of files (that file's name if it has none).
pub fn program_line(run: &Run) -> String {
    if let Some(code) = &run.code {
        return first_line(code);
    }
    let files = run.files.as_deref().unwrap_or_default();
    let main = run
        .main
        .as_deref()
        .and_then(|m| files.iter().find(|f| f.name == m))
        .or(files.first());
    match main {
        Some(f) => match first_line(&f.content) {
            l if l.is_empty() => f.name.clone(),
            l => l,
        },
        None => String::new(),
    }
}

/// The first non-empty line of a program, cut to 100 characters.
pub fn first_line(code: &str) -> String {
    let line = code.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line = line.trim_end();
    if line.chars().count() > 100 {
        format!("{}…", line.chars().take(100).collect::<String>())
    } else {
        line.to_string()
    }
}

/// One of the signed-in user's saved runs; `None` when it is not theirs or not there.
#[server(prefix = "/fn", endpoint = "history_run")]
pub async fn history_run(id: String) -> Result<Option<Run>, AppError> {
    crate::api::respond(
        async move {
            use crate::server::state::AppState;
            let state = expect_context::<AppState>();
            let caller = crate::api::runs::caller().await?;
            state.runs.saved(&caller, &id).await
        }
        .await,
    )
}

/// Deletes one of the signed-in user's runs and goes back to the history.
///
/// Only a request with `confirmed=yes` deletes. The page sets it once the browser has
/// asked with `confirm()`; a browser without JavaScript sends the form without it and
/// is sent to the run's page with a confirmation step (`?delete=1`) instead.
#[server(prefix = "/fn", endpoint = "history_delete")]
pub async fn delete_run(id: String, confirmed: Option<String>) -> Result<(), AppError> {
    crate::api::respond(
        async move {
            use crate::server::state::AppState;
            let state = expect_context::<AppState>();
            let caller = crate::api::runs::caller().await?;
            if confirmed.as_deref() != Some("yes") {
                // Only the owner of a saved run is asked: anyone else gets what a delete would give.
                if state.runs.saved(&caller, &id).await?.is_none() {
                    return Err(AppError::NotFound);
                }
                leptos_axum::redirect(&format!("/history/{id}?delete=1"));
                return Ok(());
            }
            state.runs.delete(&caller, &id).await?;
            leptos_axum::redirect("/history");
            Ok(())
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SourceFile;

    fn file(name: &str, content: &str) -> SourceFile {
        SourceFile {
            name: name.into(),
            content: content.into(),
        }
    }

    #[test]
    fn a_program_of_files_shows_its_entry_files_first_line_or_its_name() {
        let mut r = Run::new("r", "python", "");
        r.code = Some("\n  \nprint(1)\n".into());
        assert_eq!(program_line(&r), "print(1)");
        r.code = None;
        r.files = Some(vec![
            file("a.py", "import b\n"),
            file("b.py", "\n\nx = 2\n"),
        ]);
        r.main = Some("b.py".into());
        assert_eq!(program_line(&r), "x = 2");
        r.main = None;
        assert_eq!(program_line(&r), "import b");
        r.files = Some(vec![file("empty.py", "  \n")]);
        assert_eq!(program_line(&r), "empty.py");
    }
}
