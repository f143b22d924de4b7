//! The API's description and its error contract: `/api/v1/openapi.json` is OpenAPI 3.1
//! and names every route with its statuses and headers; `/api/docs` shows it with files
//! this app serves; and every refusal, from any extractor or layer, is the JSON error
//! object with a fitting status.

mod common;

use axum::http::StatusCode;
use common::Client;
use serde_json::Value;

/// Asserts the contract's error shape and returns the code.
fn error_code(r: &common::Reply) -> String {
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json"),
        "{} {}",
        r.status,
        r.text()
    );
    let v = r.json();
    let message = v["error"]["message"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "{v}");
    assert!(
        !message.contains("Failed to"),
        "a framework's text leaked: {v}"
    );
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

#[tokio::test]
async fn the_description_names_every_route_with_its_statuses_and_headers() {
    let state = common::state().await;
    let mut c = Client::new(&state);
    let r = c.get("/api/v1/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let expect: &[(&str, &str, &[&str])] = &[
        ("/api/v1/languages", "get", &["200", "401"]),
        (
            "/api/v1/runs",
            "post",
            &[
                "200", "202", "400", "401", "403", "413", "415", "422", "429", "503",
            ],
        ),
        ("/api/v1/runs/{id}", "get", &["200", "401", "404"]),
        ("/api/v1/runs/{id}/events", "get", &["200", "401", "404"]),
        (
            "/api/v1/runs/{id}/stop",
            "post",
            &["202", "401", "403", "404"],
        ),
        (
            "/api/v1/runs/{id}/share",
            "post",
            &["201", "401", "403", "404", "409", "429", "503"],
        ),
        (
            "/api/v1/shares/{slug}",
            "get",
            &["200", "401", "404", "503"],
        ),
        (
            "/api/v1/shares/{slug}",
            "delete",
            &["204", "401", "403", "404", "503"],
        ),
        (
            "/api/v1/users",
            "post",
            &[
                "201", "400", "401", "403", "409", "413", "415", "422", "429", "503",
            ],
        ),
        (
            "/api/v1/token",
            "post",
            &["200", "400", "401", "403", "413", "415", "429", "503"],
        ),
        (
            "/api/v1/history",
            "get",
            &["200", "400", "401", "422", "503"],
        ),
        (
            "/api/v1/history/{id}",
            "delete",
            &["204", "401", "403", "404", "503"],
        ),
        ("/api/v1/openapi.json", "get", &["200", "401"]),
        (
            "/api/v1/runs/{id}/stdin",
            "post",
            &[
                "202", "400", "401", "403", "404", "409", "413", "415", "422",
            ],
        ),
    ];
    for (path, method, statuses) in expect {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not described");
        let documented: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        assert_eq!(
            documented.len(),
            statuses.len(),
            "{method} {path}: {documented:?}"
        );
        for s in *statuses {
            assert!(op["responses"][s].is_object(), "{method} {path} lacks {s}");
        }
        // Every error names the contract's error object.
        for (status, res) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    res["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
            if status == "429" || status == "503" {
                assert!(
                    res["headers"]["Retry-After"].is_object(),
                    "{method} {path} {status}"
                );
            }
        }
    }
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 13, "{:?}", paths.keys().collect::<Vec<_>>());
    // The rate-limit headers, old and new, on a run's answers.
    for status in ["200", "202", "429"] {
        let headers = &doc["paths"]["/api/v1/runs"]["post"]["responses"][status]["headers"];
        for h in [
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "RateLimit",
            "RateLimit-Policy",
        ] {
            assert!(headers[h].is_object(), "{status} lacks {h}");
        }
    }
    // Languages come from the language table; the bearer scheme is declared.
    assert_eq!(
        doc["components"]["schemas"]["NewRun"]["properties"]["language"]["$ref"],
        "#/components/schemas/LanguageId"
    );
    let langs: Vec<Value> = doc["components"]["schemas"]["LanguageId"]["enum"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{}", doc["components"]["schemas"]));
    for id in ["python", "cpp", "java", "javascript"] {
        assert!(langs.contains(&Value::from(id)), "{langs:?}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["components"]["schemas"]["SharedRun"]["properties"]["slug"]["type"],
        "string"
    );
    common::finish(state).await;
}

#[tokio::test]
async fn the_docs_page_uses_only_this_sites_files() {
    let state = common::state().await;
    let mut c = Client::new(&state);
    let r = c.get("/api/docs").await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(
        html.contains(r#"<script src="/api-docs/swagger-ui-bundle.js">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"href="/api-docs/swagger-ui.css""#),
        "{html}"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"),
        "{html}"
    );
    let init = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/public/api-docs/init.js"
    ))
    .unwrap();
    assert!(init.contains("'/api/v1/openapi.json'"), "{init}");
    common::finish(state).await;
}

#[tokio::test]
async fn every_rejection_is_the_json_error_object() {
    let state = common::state().await;
    let mut c = Client::new(&state);
    let mut user = Client::new(&state);
    user.sign_up("rejections").await;

    // Query strings the extractor refuses: repeated or malformed parameters.
    for uri in [
        "/api/v1/history?page=1&page=2",
        "/api/v1/history?per_page=5&per_page=6",
        "/api/v1/history?language=python&language=java",
    ] {
        let r = user.get(uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.text());
        assert_eq!(error_code(&r), "bad_request", "{uri}");
    }
    let body = r#"{"language":"python","code":"print(1)"}"#;
    for uri in [
        "/api/v1/runs?wait=true&wait=false",
        "/api/v1/runs?wait=1&wait=1",
    ] {
        let r = c.send("POST", uri, Some("application/json"), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.text());
        assert_eq!(error_code(&r), "bad_request");
    }
    for wait in ["yes", "2", "TRUE", "%FF"] {
        let r = c
            .send(
                "POST",
                &format!("/api/v1/runs?wait={wait}"),
                Some("application/json"),
                body,
            )
            .await;
        assert!(r.status.is_client_error(), "{wait}: {}", r.text());
        let code = error_code(&r);
        assert!(
            code == "invalid_wait" || code == "bad_request",
            "{wait}: {code}"
        );
    }
    // A limit written with a zero fraction is the whole number (JSON does not tell them
    // apart, and the description's `integer` allows it).
    let r = c
        .send(
            "POST",
            "/api/v1/runs?wait=true",
            Some("application/json"),
            r#"{"language": "python", "code": "print(1)", "limits": {"time_ms": 2000.0}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["stdout"], "1\n");
    let r = user.get("/api/v1/history?page=0").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&r), "invalid_page");

    // Paths: one that does not decode, unknown ones anywhere under /api.
    let r = c.get("/api/v1/runs/%FF%FE").await;
    assert!(
        r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::NOT_FOUND,
        "{}",
        r.text()
    );
    error_code(&r);
    for uri in [
        "/api/v1/nothing-here",
        "/api/v2/runs",
        "/api",
        "/api/",
        "/api/anything/else",
        "/api/v1",
    ] {
        let r = c.get(uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {}", r.text());
        assert_eq!(error_code(&r), "not_found", "{uri}");
    }

    // Methods.
    for (method, uri) in [
        ("PUT", "/api/v1/languages"),
        ("DELETE", "/api/v1/runs"),
        ("GET", "/api/v1/token"),
        ("PATCH", "/api/v1/shares/AAAAAAAAAAA"),
    ] {
        let r = c.send(method, uri, None, "").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_eq!(error_code(&r), "method_not_allowed");
        assert!(r.header("allow").is_some(), "{method} {uri}");
    }

    // Bodies: malformed JSON, wrong type, wrong media type, over the size limit, forms.
    for (ct, b) in [
        (Some("application/json"), "{not json".to_string()),
        (
            Some("application/json"),
            r#"{"language": 1, "code": "x"}"#.to_string(),
        ),
        (Some("application/json"), "[]".to_string()),
        // Objects written as arrays of their fields (serde's derive would take them).
        (
            Some("application/json"),
            r#"["python", "print(1)"]"#.to_string(),
        ),
        (
            Some("application/json"),
            r#"{"language": "python", "code": "print(1)", "limits": [1000, 64]}"#.to_string(),
        ),
        (
            Some("application/json"),
            r#"{"language": "python", "files": [["main.py", "print(1)"]]}"#.to_string(),
        ),
        (
            Some("application/json"),
            r#"{"language": "python", "code": "print(1)", "limits": {"time_ms": 1.5}}"#.to_string(),
        ),
    ] {
        let r = c.send("POST", "/api/v1/runs", ct, b.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(error_code(&r), "bad_request");
    }
    let r = c
        .send("POST", "/api/v1/users", Some("text/plain"), "{}")
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&r), "unsupported_media_type");
    let r = c.send("POST", "/api/v1/users", None, "").await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    error_code(&r);
    let big = format!(
        r#"{{"language":"python","code":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let r = c
        .send("POST", "/api/v1/runs", Some("application/json"), big)
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&r), "payload_too_large");
    let big_form = format!("username={}&password=x", "a".repeat(2 * 1024 * 1024));
    let r = c.post_form("/api/v1/token", &big_form).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    error_code(&r);
    let r = c.post_form("/api/v1/token", "username=only").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&r), "bad_request");
    let r = c.post_form("/api/v1/token", "%ZZ=%ZZ").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    error_code(&r);

    // A bad bearer token, on any route.
    let mut forged = Client::new(&state);
    forged.bearer = Some("not-a-token".into());
    for uri in [
        "/api/v1/languages",
        "/api/v1/shares/AAAAAAAAAAA",
        "/api/v1/openapi.json",
    ] {
        let r = forged.get(uri).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
        error_code(&r);
    }
    common::finish(state).await;
}
