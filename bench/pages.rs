//! Page weight benchmark: prints numbers, asserts nothing.
//!
//! 1. Server-side rendering of `/` through the whole app router, in process: median and
//!    p95 over BENCH_REQUESTS (default 300), for a returning visitor (session cookie) and
//!    a first visit (a new session is created); beside `/healthz` through the same router.
//! 2. What the page makes the browser download: the wasm, JS and CSS of the Leptos bundle
//!    (`target/site/pkg`) and the CodeMirror bundle (`/editor/editor.js`, the chunks it
//!    imports statically, the default language's grammar, and the other languages that
//!    load when picked), raw and gzipped.
//!
//! Run after `cargo leptos build --release` (what `scripts/run.sh` serves) for the sizes
//! that users get: `cargo bench --features ssr --bench pages`.

#[path = "common.rs"]
mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use common::{ms, percentile};
use flate2::write::GzEncoder;
use http_body_util::BodyExt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tower::ServiceExt;

/// A downloaded file: name, raw bytes, gzipped bytes, when it is loaded.
type Row = (String, usize, usize, &'static str);

async fn get(app: &axum::Router, uri: &str, cookie: Option<&str>) -> (u16, Option<String>, usize) {
    let mut req = Request::get(uri).header("accept", "text/html");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let mut req = req.body(Body::empty()).unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40002,
        ))));
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let set = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_string());
    let len = res.into_body().collect().await.unwrap().to_bytes().len();
    (status, set, len)
}

fn gz(bytes: &[u8]) -> usize {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap().len()
}

/// Files `file` imports statically (`from"./chunks/x.js"`), recursively.
fn static_imports(dir: &Path, file: &Path, seen: &mut Vec<PathBuf>) {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    for part in text.split("from\"").skip(1) {
        let Some(rel) = part.split('"').next() else {
            continue;
        };
        let path = file.parent().unwrap().join(rel.trim_start_matches("./"));
        // Only real files: minified code may contain `from"` that is not an import.
        let Ok(path) = path.canonicalize() else {
            continue;
        };
        if path.starts_with(dir) && !seen.contains(&path) {
            seen.push(path.clone());
            static_imports(dir, &path, seen);
        }
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let state = common::state(&[("POOL_SIZE", "0")]).await;
    let app = own_ide::server::app_router(state.clone());
    let (status, cookie, _) = get(&app, "/", None).await;
    assert_eq!(status, 200);
    let cookie = cookie.expect("a session cookie on first contact");
    for _ in 0..20 {
        get(&app, "/", Some(&cookie)).await;
    }

    println!("## Server-side rendering, {n} requests per row (ms)");
    println!(
        "{:<36} {:>8} {:>8} {:>9}",
        "request", "median", "p95", "bytes"
    );
    let mut base = 0.0;
    for (what, uri, with_cookie) in [
        ("/healthz (baseline)", "/healthz", true),
        ("/ returning visitor", "/", true),
        ("/ first visit (new session)", "/", false),
    ] {
        let mut lat = Vec::with_capacity(n);
        let mut bytes = 0;
        for _ in 0..n {
            let t = Instant::now();
            let (status, _, len) = get(&app, uri, with_cookie.then_some(cookie.as_str())).await;
            lat.push(ms(t.elapsed()));
            assert_eq!(status, 200);
            bytes = len;
        }
        let median = percentile(&lat, 50.0);
        if uri == "/healthz" {
            base = median;
        }
        println!(
            "{:<36} {:>8.2} {:>8.2} {:>9}{}",
            what,
            median,
            percentile(&lat, 95.0),
            bytes,
            if uri == "/" {
                format!("   ({:.1}x baseline)", median / base)
            } else {
                String::new()
            }
        );
    }
    println!("target: / median under 10 ms");

    let site = PathBuf::from(std::env::var("LEPTOS_SITE_ROOT").unwrap_or("target/site".into()));
    let pkg = site.join("pkg");
    let editor = PathBuf::from("public/editor")
        .canonicalize()
        .expect("public/editor: run scripts/build-editor.sh");
    let mut rows: Vec<Row> = Vec::new();
    for entry in std::fs::read_dir(&pkg).expect("target/site/pkg: run cargo leptos build") {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".wasm") || name.ends_with(".js") || name.ends_with(".css") {
            let b = std::fs::read(&p).unwrap();
            rows.push((format!("pkg/{name}"), b.len(), gz(&b), "first load"));
        }
    }
    let entry = editor.join("editor.js");
    let mut first = vec![entry.clone()];
    static_imports(&editor, &entry, &mut first);
    // The default language's grammar is loaded right after, with what it imports.
    let text = std::fs::read_to_string(&entry).unwrap_or_default();
    let mut python = Vec::new();
    if let Some(rel) = text
        .split("python:()=>import(\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
    {
        let p = editor
            .join(rel.trim_start_matches("./"))
            .canonicalize()
            .unwrap();
        python.push(p.clone());
        let mut deps = first.clone();
        static_imports(&editor, &p, &mut deps);
        python.extend(deps.into_iter().filter(|d| !first.contains(d)));
    }
    first.extend(python);
    let mut all: Vec<PathBuf> = std::fs::read_dir(editor.join("chunks"))
        .unwrap()
        .map(|e| e.unwrap().path().canonicalize().unwrap())
        .collect();
    all.sort();
    for p in first
        .iter()
        .chain(all.iter().filter(|p| !first.contains(p)))
    {
        let b = std::fs::read(p).unwrap();
        let name = p
            .strip_prefix(editor.parent().unwrap())
            .unwrap()
            .display()
            .to_string();
        let when = if first.contains(p) {
            "first load"
        } else {
            "on demand (another language)"
        };
        rows.push((name, b.len(), gz(&b), when));
    }
    println!("\n## What the editor page downloads (bytes)");
    println!("{:<34} {:>10} {:>10}  when", "file", "raw", "gzipped");
    for (name, raw, z, when) in &rows {
        println!("{name:<34} {raw:>10} {z:>10}  {when}");
    }
    let sum = |f: &dyn Fn(&&Row) -> bool| -> (usize, usize) {
        rows.iter()
            .filter(f)
            .fold((0, 0), |(a, b), r| (a + r.1, b + r.2))
    };
    let (first_raw, first_gz) = sum(&|r| r.3 == "first load");
    let (all_raw, all_gz) = sum(&|_| true);
    let wasm_js = sum(&|r| !r.0.ends_with(".css"));
    let first_wasm_js = sum(&|r| r.3 == "first load" && !r.0.ends_with(".css"));
    println!(
        "wasm + JS of the first load (editor with Python): {:.0} KB gzipped; target: under 600 KB",
        first_wasm_js.1 as f64 / 1024.0
    );
    println!(
        "{:<34} {:>10} {:>10}",
        "total, first load (Python)", first_raw, first_gz
    );
    println!(
        "{:<34} {:>10} {:>10}",
        "total, every language loaded", all_raw, all_gz
    );
    println!(
        "wasm + JS with every language loaded as well: {:.0} KB gzipped",
        wasm_js.1 as f64 / 1024.0
    );
}
