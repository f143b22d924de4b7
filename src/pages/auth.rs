//! `/login` and `/register`: forms that work without JavaScript (ActionForm posts, the
//! server answers with a redirect), and check as you type once hydrated.

use crate::api::auth::{safe_next, Login, Register};
use crate::error::AppError;
use crate::model::url::path_in_query;
use crate::model::{password_problem, username_problem};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// Which field a server-side error belongs to.
fn field_of(e: &AppError) -> &'static str {
    match e.code().as_str() {
        "invalid_username" | "conflict" => "username",
        "invalid_password" => "password",
        "password_mismatch" => "confirm",
        _ => "form",
    }
}

fn next_param() -> Memo<String> {
    let query = use_query_map();
    Memo::new(move |_| safe_next(query.read().get("next").as_deref()))
}

#[component]
fn FieldError(
    #[prop(into)] id: String,
    #[prop(into)] message: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <p class="field-error" id=id role="alert" hidden=move || message.get().is_none()>
            {move || message.get().unwrap_or_default()}
        </p>
    }
}

/// One field of the register form: label, input (its value and whether it was left go
/// to the signals), an optional hint and the field's error, wired for screen readers.
#[component]
fn Field(
    id: &'static str,
    label: &'static str,
    #[prop(default = "text")] kind: &'static str,
    autocomplete: &'static str,
    #[prop(optional)] hint: Option<&'static str>,
    value: RwSignal<String>,
    left: RwSignal<bool>,
    error: Signal<Option<String>>,
) -> impl IntoView {
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let described = match hint {
        Some(_) => format!("{error_id} {hint_id}"),
        None => error_id.clone(),
    };
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input id=id name=id type=kind autocomplete=autocomplete required
                aria-describedby=described
                aria-invalid=move || error.get().is_some().to_string()
                on:input=move |ev| value.set(event_target_value(&ev))
                on:blur=move |_| left.set(true)/>
            {hint.map(|h| view! { <p class="hint" id=hint_id>{h}</p> })}
            <FieldError id=error_id message=error/>
        </div>
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let next = next_param();
    let error = Signal::derive(move || {
        login
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.public().message)
    });
    view! {
        <Title text="Log in · Own-IDE"/>
        <section class="auth-card">
            <h1>"Log in"</h1>
            <ActionForm action=login>
                <input type="hidden" name="next" value=move || next.get()/>
                <div class="field">
                    <label for="username">"Username"</label>
                    <input id="username" name="username" autocomplete="username" required
                        aria-describedby="form-error" autofocus=true/>
                </div>
                <div class="field">
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" autocomplete="current-password" required
                        aria-describedby="form-error"/>
                </div>
                <FieldError id="form-error" message=error/>
                <button class="button primary" type="submit">"Log in"</button>
            </ActionForm>
            <p class="alt">
                "New here? "
                <a href=move || format!("/register?next={}", path_in_query(&next.get()))>"Create an account"</a>
            </p>
        </section>
    }
}

#[component]
pub fn RegisterPage() -> impl IntoView {
    let register = ServerAction::<Register>::new();
    let next = next_param();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    // Checks as you type start once a field has been left (or the form was sent).
    let left = [RwSignal::new(false); 3];
    let server_error = move |field: &'static str| {
        register
            .value()
            .get()
            .and_then(|r| r.err())
            .filter(|e| field_of(e) == field)
            .map(|e| e.public().message)
    };
    let error = move |left: RwSignal<bool>,
                      local: fn(&str, &str) -> Option<&'static str>,
                      of: RwSignal<String>,
                      field: &'static str| {
        Signal::derive(move || {
            left.get()
                .then(|| local(&of.get(), &password.get()))
                .flatten()
                .map(str::to_string)
                .or_else(|| server_error(field))
        })
    };
    let username_error = error(left[0], |u, _| username_problem(u), username, "username");
    let password_error = error(left[1], |p, _| password_problem(p), password, "password");
    let confirm_error = error(
        left[2],
        |c, p| (c != p).then_some("The two passwords do not match."),
        confirm,
        "confirm",
    );
    let form_error = Signal::derive(move || server_error("form"));
    view! {
        <Title text="Register · Own-IDE"/>
        <section class="auth-card">
            <h1>"Create an account"</h1>
            <ActionForm action=register>
                <input type="hidden" name="next" value=move || next.get()/>
                <Field id="username" label="Username" autocomplete="username" value=username
                    left=left[0] error=username_error hint="3–32 letters, digits, or _ . -"/>
                <Field id="password" label="Password" kind="password" autocomplete="new-password"
                    value=password left=left[1] error=password_error/>
                <Field id="confirm" label="Repeat the password" kind="password" autocomplete="new-password"
                    value=confirm left=left[2] error=confirm_error/>
                <FieldError id="form-error" message=form_error/>
                <button class="button primary" type="submit">"Create account"</button>
            </ActionForm>
            <p class="alt">
                "Already have an account? "
                <a href=move || format!("/login?next={}", path_in_query(&next.get()))>"Log in"</a>
            </p>
        </section>
    }
}
