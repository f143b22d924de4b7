//! The bridge to the CodeMirror bundle (`/editor/editor.js`). The server renders a plain
//! textarea (which is what forms post without JavaScript); in the browser CodeMirror is
//! mounted over it and keeps the textarea and the `code` signal in step.

use leptos::prelude::*;

/// A code editor bound to `code`, in `language`. `on_run` fires on Ctrl/Cmd+Enter.
#[component]
pub fn CodeEditor(
    code: RwSignal<String>,
    #[prop(into)] language: Signal<String>,
    #[prop(optional)] read_only: bool,
    #[prop(optional, into)] on_run: Option<Callback<()>>,
    #[prop(default = "code")] name: &'static str,
) -> impl IntoView {
    let host = NodeRef::<leptos::html::Div>::new();
    let area = NodeRef::<leptos::html::Textarea>::new();
    #[cfg(feature = "hydrate")]
    bridge::attach(host, area, code, language, read_only, on_run);
    #[cfg(not(feature = "hydrate"))]
    let _ = (&language, &on_run);
    view! {
        <div class="code-editor" class:read-only=read_only>
            <textarea
                node_ref=area
                id="code"
                name=name
                class="code-fallback"
                aria-label="Code"
                spellcheck="false"
                readonly=read_only
                prop:value=move || code.get()
                on:input=move |ev| code.set(event_target_value(&ev))
            >
                {code.get_untracked()}
            </textarea>
            <div node_ref=host class="cm-host"></div>
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod bridge {
    use super::*;
    use js_sys::{Function, Object, Reflect};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    fn get(obj: &JsValue, key: &str) -> JsValue {
        Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    }

    fn call1(obj: &JsValue, method: &str, arg: &JsValue) {
        if let Ok(f) = get(obj, method).dyn_into::<Function>() {
            let _ = f.call1(obj, arg);
        }
    }

    pub fn attach(
        host: NodeRef<leptos::html::Div>,
        area: NodeRef<leptos::html::Textarea>,
        code: RwSignal<String>,
        language: Signal<String>,
        read_only: bool,
        on_run: Option<Callback<()>>,
    ) {
        let handle = StoredValue::new_local(None::<JsValue>);
        // Set from inside the editor's change callback, so the signal→editor effect
        // does not write the same text back.
        let echo = StoredValue::new_local(None::<String>);
        Effect::new(move |_| {
            let (Some(host_el), Some(area_el)) = (host.get(), area.get()) else {
                return;
            };
            if handle.with_value(|h| h.is_some()) {
                return;
            }
            let mount = move || {
                let window = web_sys::window().expect("window");
                let api = get(&window, "OwnIde");
                if api.is_undefined() || handle.with_value(|h| h.is_some()) {
                    return false;
                }
                let opts = Object::new();
                let _ = Reflect::set(&opts, &"doc".into(), &code.get_untracked().into());
                let _ = Reflect::set(&opts, &"language".into(), &language.get_untracked().into());
                let _ = Reflect::set(&opts, &"readOnly".into(), &read_only.into());
                let on_change = Closure::<dyn Fn(String)>::new(move |doc: String| {
                    echo.set_value(Some(doc.clone()));
                    code.set(doc);
                });
                let _ = Reflect::set(&opts, &"onChange".into(), on_change.as_ref());
                on_change.forget();
                if let Some(cb) = on_run {
                    let run = Closure::<dyn Fn()>::new(move || cb.run(()));
                    let _ = Reflect::set(&opts, &"onRun".into(), run.as_ref());
                    run.forget();
                }
                if let Ok(f) = get(&api, "mount").dyn_into::<Function>() {
                    if let Ok(h) = f.call2(&api, &host_el, &opts) {
                        handle.set_value(Some(h));
                        let _ = area_el.class_list().add_1("enhanced");
                        let _ = host_el.class_list().add_1("mounted");
                        return true;
                    }
                }
                false
            };
            if !mount() {
                let cb = Closure::<dyn Fn()>::new(move || {
                    mount();
                });
                let _ = window_add_listener("ownide-editor-ready", cb.as_ref().unchecked_ref());
                cb.forget();
            }
        });
        Effect::new(move |_| {
            let doc = code.get();
            let from_editor = echo.with_value(|e| e.as_deref() == Some(doc.as_str()));
            if from_editor {
                return;
            }
            handle.with_value(|h| {
                if let Some(h) = h {
                    call1(h, "setDoc", &doc.clone().into());
                }
            });
        });
        Effect::new(move |_| {
            let lang = language.get();
            handle.with_value(|h| {
                if let Some(h) = h {
                    call1(h, "setLanguage", &lang.into());
                }
            });
        });
    }

    fn window_add_listener(event: &str, f: &Function) -> Result<(), JsValue> {
        web_sys::window()
            .expect("window")
            .add_event_listener_with_callback(event, f)
    }
}
