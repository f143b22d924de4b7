//! Nothing a user ran is lost: a run that finishes while MongoDB is away is kept in
//! Redis and written to the history once MongoDB answers again.

mod common;

use axum::http::StatusCode;
use common::Client;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_run_finished_while_mongodb_is_away_reaches_the_history_later() {
    let up = common::state_with(&[("POOL_SIZE", "1")]).await;
    let mut user = Client::new(&up);
    user.sign_up("durable").await;
    // Another instance whose MongoDB is away (the same Redis).
    let down = common::state_with_mongodb_down().await;
    let mut c = Client::new(&down);
    c.bearer = user.bearer.clone();
    let r = c
        .post_json(
            "/api/v1/runs?wait=true",
            &json!({"language": "python", "code": "print('kept')"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let run = r.json();
    assert_eq!(run["stdout"], "kept\n");
    assert_eq!(
        run["saved"], false,
        "the user is told the run was not kept yet"
    );
    let id = run["id"].as_str().unwrap().to_string();
    // Guests run too; the history itself answers 503, on the API and the page.
    let mut guest = Client::new(&down);
    assert_eq!(guest.run("python", "print(3)", "").await["stdout"], "3\n");
    let h = c.get("/api/v1/history").await;
    assert_eq!(h.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h.json()["error"]["code"], "mongodb_unavailable");
    let mut page = Client::for_app(&down);
    page.bearer = user.bearer.clone();
    let p = page.page("/history").await;
    assert_eq!(p.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(p.text().contains("History is unavailable"));

    // MongoDB answers (here: through the instance that reaches it): the run is written.
    let mut found = None;
    for _ in 0..300 {
        let h = user.get("/api/v1/history").await.json();
        found = h["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id.as_str())
            .cloned();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let found = found.expect("the kept run reaches the history");
    assert_eq!(found["stdout"], "kept\n");
    assert_eq!(found["verdict"], "ok");
    assert_eq!(found["code"], "print('kept')");
    // And the run itself says it is saved (its state in Redis is updated right after
    // the history write that made it appear above).
    let uri = format!("/api/v1/runs/{id}");
    crate::eventually!(
        "the run saying it is saved",
        user.get(&uri).await.json()["saved"] == true
    );
    common::finish(up).await;
    common::finish(down).await;
}
