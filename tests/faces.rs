//! The two faces of every service, the REST API and the pages' server functions, give
//! the same answers: the same refusals with the same HTTP statuses (a server function's
//! expected refusal is never a 500), the same results for the same input.

mod common;

use axum::http::StatusCode;
use common::Client;
use serde_json::json;

/// Calls a server function the way the page's JavaScript does (form body, no HTML).
async fn call(c: &mut Client, path: &str, body: &str) -> common::Reply {
    c.send_with(
        "POST",
        path,
        &[("content-type", "application/x-www-form-urlencoded")],
        body.to_string(),
    )
    .await
}

#[tokio::test]
async fn server_function_refusals_carry_their_own_status() {
    let state = common::state().await;
    let mut browser = Client::for_app(&state);
    let name = common::fresh_name("faces");
    let r = browser
        .post_json(
            "/api/v1/users",
            &json!({"username": name, "password": "correct horse"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    // A wrong password: 401 on both faces, with the same code.
    let body = format!("username={name}&password=wrong+horse");
    let r = call(&mut browser, "/fn/login", &body).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.text().contains("not correct"), "{}", r.text());
    let api = browser
        .post_json(
            "/api/v1/token",
            &json!({"username": name, "password": "wrong horse"}),
        )
        .await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);

    // A taken name: 409; a bad one: 422 — through the register server function.
    let taken = format!("username={name}&password=correct+horse&confirm=correct+horse");
    assert_eq!(
        call(&mut browser, "/fn/register", &taken).await.status,
        StatusCode::CONFLICT
    );
    let bad = "username=a&password=correct+horse&confirm=correct+horse";
    assert_eq!(
        call(&mut browser, "/fn/register", bad).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // A guest asking for history: 401 on both faces.
    let mut guest = Client::for_app(&state);
    assert_eq!(
        call(&mut guest, "/fn/history", "page=1").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        guest.get("/api/v1/history").await.status,
        StatusCode::UNAUTHORIZED
    );

    // A plain form post (no JavaScript) is still sent back to its page, not to an error.
    let r = browser
        .send_with(
            "POST",
            "/fn/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("accept", "text/html"),
                ("referer", "http://localhost/login"),
            ],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text());
    common::finish(state).await;
}

#[tokio::test]
async fn names_with_spaces_around_them_mean_the_same_on_both_faces() {
    let state = common::state().await;
    let mut api = Client::new(&state);
    let name = common::fresh_name("spaces");
    let r = api
        .post_json(
            "/api/v1/users",
            &json!({"username": format!("  {name} "), "password": "correct horse"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["username"], name.as_str());
    // The API's token and the page's log-in both accept the name as typed with spaces.
    let r = api
        .post_json(
            "/api/v1/token",
            &json!({"username": format!(" {name}"), "password": "correct horse"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut browser = Client::for_app(&state);
    let r = call(
        &mut browser,
        "/fn/login",
        &format!("username=+{name}+&password=correct+horse"),
    )
    .await;
    assert!(
        r.status.is_success() || r.status.is_redirection(),
        "{} {}",
        r.status,
        r.text()
    );
    let me = call(&mut browser, "/fn/me", "").await;
    assert!(me.text().contains(&name), "{}", me.text());
    common::finish(state).await;
}

/// Asserts the contract's error object with this status and code.
fn assert_error(r: &common::Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json"),
        "{}",
        r.text()
    );
    let body = r.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn every_refusal_under_the_api_is_the_json_error_object() {
    let state = common::state().await;
    let mut c = Client::new(&state);
    c.sign_up("shapes").await;
    let history = c.get("/api/v1/history?page=1&page=2").await;
    assert_error(&history, StatusCode::BAD_REQUEST, "bad_request");
    assert!(history.text().contains("page"), "{}", history.text());
    let run = json!({"language": "python", "code": "print(1)"});
    let r = c.post_json("/api/v1/runs?wait=true&wait=false", &run).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_request");
    let r = c.post_json("/api/v1/runs?wait=maybe", &run).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_wait");
    // Nothing was run by the refused requests.
    assert_eq!(c.get("/api/v1/history").await.json()["total"], 0);
    let r = c.get("/api/v1/users").await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(r.header("allow").is_some_and(|a| a.contains("POST")));
    let r = c
        .send(
            "PUT",
            "/api/v1/runs",
            Some("application/json"),
            run.to_string(),
        )
        .await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let huge = json!({"language": "python", "code": "x".repeat(2 * 1024 * 1024)});
    let r = c.post_json("/api/v1/runs", &huge).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let r = c.get("/api/v1/runs/%FF%FE").await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let r = c.get("/api/v1/no-such-thing").await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    common::finish(state).await;
}
