//! The API's description: OpenAPI 3.1, built from the handlers' `utoipa::path`
//! attributes and the types they exchange, served at `/api/v1/openapi.json`; and the
//! page at `/api/docs` that shows it with Swagger UI (files served by the app from
//! `/api-docs/`, built by `scripts/build-apidocs.sh`; nothing from another site).

use super::ErrorBody;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use std::sync::LazyLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Own-IDE API",
        version = "1",
        description = "Run Python, C, C++, Java, JavaScript, TypeScript, Go and Rust in a sandbox, follow runs live, keep a history and share runs by link.\n\nGuests are known by a cookie and their client IP and get `GUEST_QUOTA` runs a day (shares count like runs); users send `Authorization: Bearer <token>` from `POST /api/v1/token` and have a per-minute rate instead. Every error is `{\"error\": {\"code\", \"message\"}}`, whichever layer refused the request. Responses that count against a quota or rate carry `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` and the IETF draft fields `RateLimit-Policy` and `RateLimit`; every 429 and 503 carries `Retry-After`.",
        license(name = "MIT"),
    ),
    modifiers(&Bearer),
    components(schemas(ErrorBody)),
    tags(
        (name = "runs", description = "Languages, runs, live events, stop"),
        (name = "shares", description = "Public snapshots of runs, by link"),
        (name = "accounts", description = "Registration and tokens"),
        (name = "history", description = "A user's saved runs"),
        (name = "meta", description = "This description"),
    )
)]
struct ApiDoc;

/// Declares the bearer scheme that operations name in `security`.
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from POST /api/v1/token"))
                    .build(),
            ),
        );
    }
}

/// The description of every `/api/v1` route, paths in full (`/api/v1/runs`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, doc) =
        utoipa_axum::router::OpenApiRouter::<crate::server::state::AppState>::with_openapi(
            ApiDoc::openapi(),
        )
        .nest("/api/v1", super::v1())
        .split_for_parts();
    doc
}

/// The description as JSON, made once.
pub fn openapi_json() -> &'static str {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        let mut doc = serde_json::to_value(openapi()).unwrap_or_default();
        tighten(&mut doc);
        serde_json::to_string(&doc).unwrap_or_else(|_| "{}".into())
    });
    &JSON
}

/// Adds to the request schemas the rules the derived ones cannot say, as the server
/// applies them with its shipped defaults, so that a request the description forbids is
/// refused with a `4xx` and one it allows is accepted as far as a JSON schema can say
/// (what client generators and fuzzers rely on): `code` or `files` (one of them),
/// non-blank code, file-name syntax, the counts. Left to the documented answers: sizes in
/// bytes (`413`, `MAX_CODE_BYTES`, `MAX_STDIN_BYTES`), the limits' bounds (`422`: they
/// are this server's settings and each language's, told by `GET /api/v1/languages`,
/// and `RunLimits` also describes the limits a run was given), and what no JSON schema
/// can say (`422`): file names unique, `main` one of them, the entry file's extension.
fn tighten(doc: &mut serde_json::Value) {
    use crate::server::runs::program::{MAX_ARGS, MAX_ARG_BYTES, MAX_FILES};
    use serde_json::json;
    let cfg = crate::server::config::SandboxConfig::default();
    let part = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}";
    let schemas = &mut doc["components"]["schemas"];
    let run = &mut schemas["NewRun"];
    run["oneOf"] = json!([
        {"required": ["code"], "properties": {"code": {"type": "string"}, "files": {"type": "null"}, "main": {"type": "null"}}},
        {"required": ["files"], "properties": {"files": {"type": "array"}, "code": {"type": "null"}}}
    ]);
    let props = &mut run["properties"];
    merge(
        &mut props["code"],
        json!({"minLength": 1, "pattern": "\\S"}),
    );
    merge(
        &mut props["files"],
        json!({
            "minItems": 1, "maxItems": MAX_FILES,
            "contains": {"properties": {"content": {"pattern": "\\S"}}},
            "items": {"properties": {
                "name": {"pattern": format!("^{part}(/{part})?$")}
            }},
            "description": format!("Up to {MAX_FILES} files of together at most MAX_CODE_BYTES bytes ({} by default).", cfg.max_code_bytes)
        }),
    );
    merge(
        &mut props["main"],
        json!({"pattern": format!("^{part}(/{part})?$")}),
    );
    merge(
        &mut props["args"],
        json!({"maxItems": MAX_ARGS, "items": {"maxLength": MAX_ARG_BYTES}}),
    );
    links(doc);
    let input = &mut doc["components"]["schemas"]["NewInput"];
    input["anyOf"] = json!([
        {"required": ["data"], "properties": {"data": {"minLength": 1}}},
        {"required": ["eof"], "properties": {"eof": {"const": true}}}
    ]);
}

/// OpenAPI links: what a created run or share lets a client do next (client generators
/// and stateful fuzzers follow them).
fn links(doc: &mut serde_json::Value) {
    use serde_json::json;
    let by_id = |op: &str| json!({"operationId": op, "parameters": {"id": "$response.body#/id"}});
    let run_links = json!({
        "GetRun": by_id("get_run"),
        "RunEvents": by_id("run_events"),
        "StopRun": by_id("stop_run"),
        "SendStdin": by_id("send_stdin"),
        "ShareRun": by_id("share_run"),
        "DeleteFromHistory": by_id("delete_history"),
    });
    for status in ["200", "202"] {
        let response = &mut doc["paths"]["/api/v1/runs"]["post"]["responses"][status];
        if response.is_object() {
            response["links"] = run_links.clone();
        }
    }
    let by_slug =
        |op: &str| json!({"operationId": op, "parameters": {"slug": "$response.body#/slug"}});
    let share = &mut doc["paths"]["/api/v1/runs/{id}/share"]["post"]["responses"]["201"];
    if share.is_object() {
        share["links"] = json!({
            "GetShare": by_slug("get_share"),
            "RevokeShare": by_slug("revoke_share"),
        });
    }
}

/// Adds `extra`'s keys to the object `into` (recursively for objects both have).
fn merge(into: &mut serde_json::Value, extra: serde_json::Value) {
    match (into, extra) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// This description (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 description of this API", content_type = "application/json", body = Object),
        (status = 401, description = "An `Authorization` header that is not a valid bearer token", body = ErrorBody),
    ))]
pub(super) async fn openapi_document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json()).into_response()
}

/// `/api/docs`: the description for people (Swagger UI, self-hosted).
pub(super) async fn docs_page() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

const DOCS_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Own-IDE API</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/api-docs/swagger-ui.css">
</head>
<body>
<noscript><p>This page needs JavaScript. The description itself is at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p></noscript>
<div id="swagger-ui"></div>
<script src="/api-docs/swagger-ui-bundle.js"></script>
<script src="/api-docs/init.js"></script>
</body>
</html>
"#;
