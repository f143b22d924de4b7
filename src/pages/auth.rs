//! `/login` and `/register`: forms that work without JavaScript (ActionForm posts, the
//! server answers with a redirect), and check as you type once hydrated.

use crate::api::auth::{safe_next, Login, Logout, Register};
use crate::error::AppError;
use crate::model::{password_problem, username_problem, UserInfo};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The logout action and the signed-in user, shared by the header and the pages.
/// (The login and register actions live in their pages: only there, inside the routes,
/// can they pick up a form error that came back through the URL without JavaScript.)
#[derive(Clone, Copy)]
pub struct Auth {
    pub logout: ServerAction<Logout>,
    pub user: Resource<Result<Option<UserInfo>, AppError>>,
}

impl Auth {
    /// Creates the logout action and the user resource, which is fetched again after a
    /// logout and after every navigation (log-in and registration end in one).
    pub fn provide() -> Auth {
        let logout = ServerAction::<Logout>::new();
        let location = leptos_router::hooks::use_location();
        let user = Resource::new(
            move || (logout.version().get(), location.pathname.get()),
            |_| crate::api::auth::current_user(),
        );
        let auth = Auth { logout, user };
        provide_context(auth);
        auth
    }
}

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
                <a href=move || format!("/register?next={}", urlencode(&next.get()))>"Create an account"</a>
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
    let touched = RwSignal::new((false, false, false));
    let server_error = move |field: &'static str| {
        register
            .value()
            .get()
            .and_then(|r| r.err())
            .filter(|e| field_of(e) == field)
            .map(|e| e.public().message)
    };
    let username_error = Signal::derive(move || {
        let local = touched
            .get()
            .0
            .then(|| username_problem(&username.get()))
            .flatten();
        local
            .map(str::to_string)
            .or_else(|| server_error("username"))
    });
    let password_error = Signal::derive(move || {
        let local = touched
            .get()
            .1
            .then(|| password_problem(&password.get()))
            .flatten();
        local
            .map(str::to_string)
            .or_else(|| server_error("password"))
    });
    let confirm_error = Signal::derive(move || {
        let local = (touched.get().2 && confirm.get() != password.get())
            .then_some("The two passwords do not match.");
        local
            .map(str::to_string)
            .or_else(|| server_error("confirm"))
    });
    let form_error = Signal::derive(move || server_error("form"));
    view! {
        <Title text="Register · Own-IDE"/>
        <section class="auth-card">
            <h1>"Create an account"</h1>
            <ActionForm action=register>
                <input type="hidden" name="next" value=move || next.get()/>
                <div class="field">
                    <label for="username">"Username"</label>
                    <input id="username" name="username" autocomplete="username" required
                        aria-describedby="username-error username-hint"
                        aria-invalid=move || username_error.get().is_some().to_string()
                        on:input=move |ev| username.set(event_target_value(&ev))
                        on:blur=move |_| touched.update(|t| t.0 = true)/>
                    <p class="hint" id="username-hint">"3–32 letters, digits, or _ . -"</p>
                    <FieldError id="username-error" message=username_error/>
                </div>
                <div class="field">
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" autocomplete="new-password" required
                        aria-describedby="password-error"
                        aria-invalid=move || password_error.get().is_some().to_string()
                        on:input=move |ev| password.set(event_target_value(&ev))
                        on:blur=move |_| touched.update(|t| t.1 = true)/>
                    <FieldError id="password-error" message=password_error/>
                </div>
                <div class="field">
                    <label for="confirm">"Repeat the password"</label>
                    <input id="confirm" name="confirm" type="password" autocomplete="new-password" required
                        aria-describedby="confirm-error"
                        aria-invalid=move || confirm_error.get().is_some().to_string()
                        on:input=move |ev| confirm.set(event_target_value(&ev))
                        on:blur=move |_| touched.update(|t| t.2 = true)/>
                    <FieldError id="confirm-error" message=confirm_error/>
                </div>
                <FieldError id="form-error" message=form_error/>
                <button class="button primary" type="submit">"Create account"</button>
            </ActionForm>
            <p class="alt">
                "Already have an account? "
                <a href=move || format!("/login?next={}", urlencode(&next.get()))>"Log in"</a>
            </p>
        </section>
    }
}

/// Percent-encodes a value for a query string.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
