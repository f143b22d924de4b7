//! The guest's daily runs, shown beside the run controls.

use crate::model::{wait_words, QuotaInfo};
use leptos::prelude::*;

/// A guest's runs left today, or the invitation to sign in when none are left. Shows
/// nothing for a signed-in user (no quota).
#[component]
pub fn QuotaNote(quota: RwSignal<Option<QuotaInfo>>) -> impl IntoView {
    move || {
        quota.get().map(|q| {
            if q.remaining > 0 {
                view! {
                    <span class="quota" data-testid="quota" data-remaining=q.remaining>
                        {format!(
                            "{} of {} guest runs left today · resets in {}",
                            q.remaining,
                            q.limit,
                            wait_words(q.reset_seconds)
                        )}
                    </span>
                }
                .into_any()
            } else {
                view! {
                    <span class="quota quota-out" data-testid="quota" data-remaining="0" role="status">
                        {format!("You have used today's {} guest runs (they reset in {}). ", q.limit, wait_words(q.reset_seconds))}
                        <a href="/login?next=/">"Log in"</a>
                        " or "
                        <a href="/register?next=/">"register"</a>
                        " to keep running code, free and without a daily limit."
                    </span>
                }
                .into_any()
            }
        })
    }
}
