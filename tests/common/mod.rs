//! Shared set-up for integration tests: the real app state against the real Docker
//! engine, Redis and MongoDB-compatible server that `scripts/test.sh` starts.
#![allow(dead_code)]

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use own_ide::server::config::Config;
use own_ide::server::state::AppState;
use serde_json::Value;
use std::net::SocketAddr;
use tower::ServiceExt;

/// Builds the app state with the process environment plus `overrides`.
pub async fn state_with(overrides: &[(&str, &str)]) -> AppState {
    let overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let cfg = Config::from_lookup(move |k| {
        overrides
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(k).ok())
    })
    .expect("test configuration");
    let opts = leptos::config::LeptosOptions::builder()
        .output_name("own-ide")
        .build();
    AppState::build(cfg, opts).await.expect("state")
}

pub async fn state() -> AppState {
    state_with(&[]).await
}

/// A client of the API router with a fixed cookie jar and client address.
pub struct Client {
    pub app: Router,
    pub cookie: Option<String>,
    pub ip: SocketAddr,
    pub bearer: Option<String>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

impl Client {
    pub fn new(state: &AppState) -> Client {
        Client {
            app: own_ide::server::api_router(state.clone()),
            cookie: None,
            ip: "127.0.0.1:50000".parse().unwrap(),
            bearer: None,
        }
    }

    pub async fn send(
        &mut self,
        method: &str,
        uri: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c.clone());
        }
        if let Some(t) = &self.bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(body.into()).unwrap();
        req.extensions_mut().insert(ConnectInfo(self.ip));
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        for v in headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap().to_string();
            self.cookie = Some(pair);
        }
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, uri: &str) -> Reply {
        self.send("GET", uri, None, Body::empty()).await
    }

    pub async fn post_json(&mut self, uri: &str, v: &Value) -> Reply {
        self.send("POST", uri, Some("application/json"), v.to_string())
            .await
    }

    /// Runs code through `POST /api/v1/runs?wait=true` and returns the finished run.
    pub async fn run(&mut self, language: &str, code: &str, stdin: &str) -> Value {
        let r = self
            .post_json(
                "/api/v1/runs?wait=true",
                &serde_json::json!({"language": language, "code": code, "stdin": stdin}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "run failed: {}", r.text());
        r.json()
    }
}
