//! Run history against the real MongoDB-compatible server: what is saved (and what is
//! not), pagination and filter, the TTL index, isolation between users, deletion, and a
//! run that finishes while MongoDB is away.

mod common;

use axum::http::StatusCode;
use common::{finish, Client};
use mongodb::bson::{doc, Document};
use own_ide::model::{Run, RunStatus, Verdict};
use serde_json::json;
use std::time::Duration;

fn runs(state: &own_ide::server::state::AppState) -> mongodb::Collection<Document> {
    state.mongo.db().unwrap().collection::<Document>("runs")
}

/// Whether the run with `id` is in the `runs` collection.
async fn stored(state: &own_ide::server::state::AppState, id: &str) -> bool {
    runs(state)
        .find_one(doc! { "_id": id })
        .await
        .unwrap()
        .is_some()
}

/// A finished run as the engine would report it, `minutes_ago` old.
fn made_up(i: usize, language: &str, minutes_ago: i64) -> Run {
    let t = time::OffsetDateTime::now_utc() - time::Duration::minutes(minutes_ago);
    let created = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    Run {
        id: uuid::Uuid::new_v4().simple().to_string(),
        language: language.into(),
        status: RunStatus::Finished,
        verdict: Some(Verdict::Ok),
        exit_code: Some(0),
        signal: None,
        stdout: format!("{i}\n"),
        stderr: String::new(),
        compile_output: String::new(),
        time_ms: Some(10 + i as u64),
        memory_kb: Some(8000),
        cpu_time_ms: Some(5),
        truncated: false,
        created_at: created.clone(),
        finished_at: Some(created),
        code: Some(format!("print({i})\n# more")),
        stdin: Some(String::new()),
        saved: None,
        ..Run::new("", language, "")
    }
}

#[tokio::test]
async fn users_runs_are_saved_and_guests_are_not() {
    let state = common::state_with(&[("POOL_SIZE", "1")]).await;
    let mut user = Client::new(&state);
    let name = user.sign_up("saver").await;
    let r = user
        .post_json(
            "/api/v1/runs?wait=true",
            &json!({"language": "python", "code": "print(input()[::-1])", "stdin": "abc\n"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let run = r.json();
    assert_eq!(run["stdout"], "cba\n");
    assert_eq!(run["saved"], true);
    let id = run["id"].as_str().unwrap();

    let d = runs(&state)
        .find_one(doc! { "_id": id })
        .await
        .unwrap()
        .expect("the user's run is in the runs collection");
    assert_eq!(d.get_str("code").unwrap(), "print(input()[::-1])");
    assert_eq!(d.get_str("stdin").unwrap(), "abc\n");
    assert_eq!(d.get_str("stdout").unwrap(), "cba\n");
    assert_eq!(d.get_str("verdict").unwrap(), "ok");
    assert_eq!(d.get_str("status").unwrap(), "finished");
    assert!(d.get_str("finished_at").is_ok());
    let user_id = d.get_str("user_id").unwrap().to_string();

    let mut guest = Client::new(&state);
    let g = guest.run("python", "print('guest')", "").await;
    assert_eq!(g["stdout"], "guest\n");
    assert!(g.get("saved").is_none());
    let gid = g["id"].as_str().unwrap();
    assert!(!stored(&state, gid).await);

    // The history lists it, with its code.
    let h = user.get("/api/v1/history").await.json();
    assert_eq!(h["total"], 1);
    assert_eq!(h["items"][0]["id"], id);
    assert_eq!(h["items"][0]["code"], "print(input()[::-1])");
    // The stored run belongs to the user who ran it: its `user_id` is that user's id.
    let owner = state
        .mongo
        .db()
        .unwrap()
        .collection::<Document>("users")
        .find_one(doc! { "_id": &user_id })
        .await
        .unwrap()
        .expect("the run's user_id names a user");
    assert_eq!(owner.get_str("username").unwrap(), name);
    finish(state).await;
}

#[tokio::test]
async fn pages_are_exact_newest_first_and_filtered_by_language() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut user = Client::new(&state);
    user.sign_up("pager").await;
    let me = user.get("/api/v1/history").await;
    assert_eq!(me.json()["total"], 0);
    let user_id = {
        // Learn the id from a token: the store is keyed by it.
        let token = user.bearer.clone().unwrap();
        state.accounts.verify_token(&token).unwrap().id
    };
    let mut made = Vec::new();
    for i in 0..25 {
        let lang = if i % 5 == 0 { "cpp" } else { "python" };
        let run = made_up(i, lang, 100 - i as i64);
        state.runs.store().save(&user_id, &run).await.unwrap();
        made.push(run);
    }
    // Newest first: the last made is the newest.
    let newest: Vec<String> = made.iter().rev().map(|r| r.id.clone()).collect();
    let p1 = user.get("/api/v1/history?page=1&per_page=20").await.json();
    assert_eq!(p1["total"], 25);
    assert_eq!(p1["page"], 1);
    assert_eq!(p1["per_page"], 20);
    let ids = ids_of(&p1);
    assert_eq!(
        ids,
        newest[..20].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let p2 = user.get("/api/v1/history?page=2").await.json();
    let ids = ids_of(&p2);
    assert_eq!(
        ids,
        newest[20..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let p3 = user.get("/api/v1/history?page=3").await.json();
    assert_eq!(p3["items"].as_array().unwrap().len(), 0);

    let cpp = user
        .get("/api/v1/history?language=cpp&per_page=3")
        .await
        .json();
    assert_eq!(cpp["total"], 5);
    assert_eq!(cpp["items"].as_array().unwrap().len(), 3);
    assert!(cpp["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["language"] == "cpp"));

    for bad in [
        "page=0",
        "page=abc",
        "per_page=0",
        "per_page=101",
        "language=cobol",
    ] {
        let r = user.get(&format!("/api/v1/history?{bad}")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    // Runs that vanish behind the index's back (the TTL index, say) leave the pages exact.
    let gone = &made[24];
    runs(&state)
        .delete_one(doc! { "_id": &gone.id })
        .await
        .unwrap();
    let p1 = user.get("/api/v1/history").await.json();
    assert_eq!(p1["total"], 24);
    assert_eq!(p1["items"][0]["id"], made[23].id.as_str());
    assert_eq!(p1["items"].as_array().unwrap().len(), 20);
    // And a Redis that lost everything (a restart) is rebuilt from MongoDB.
    let mut conn = state.redis.conn().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("own-ide:history:{user_id}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
    let p2 = user.get("/api/v1/history?page=2").await.json();
    assert_eq!(p2["total"], 24);
    let ids = ids_of(&p2);
    assert_eq!(
        ids,
        newest[21..].iter().map(String::as_str).collect::<Vec<_>>()
    );

    // The page shows the rows and the count.
    let mut browser = Client::for_app(&state);
    browser.bearer = user.bearer.clone();
    let page = browser.page("/history?page=2").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert_eq!(html.matches("data-testid=\"history-row\"").count(), 4);
    assert!(html.contains("Page 2 of 2"));
    assert!(html.contains("24 runs"));
    finish(state).await;
}

#[tokio::test]
async fn the_ttl_index_follows_the_configuration() {
    let db = format!(
        "own_ide_ttl_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let ttl_of = |state: own_ide::server::state::AppState| async move {
        use futures::TryStreamExt;
        let indexes: Vec<mongodb::IndexModel> = runs(&state)
            .list_indexes()
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let names: Vec<String> = indexes
            .iter()
            .filter_map(|i| i.options.as_ref()?.name.clone())
            .collect();
        assert!(
            names.contains(&"runs_by_user_newest".to_string()),
            "{names:?}"
        );
        indexes.iter().find_map(|i| {
            let o = i.options.as_ref()?;
            (o.name.as_deref() == Some("runs_expiry_ttl")).then_some(o.expire_after)
        })
    };
    // Start-up creates it; a restart with another value (here through the historical
    // misspelling) replaces it; 0 removes it.
    let steps = [
        (
            "SUBMISSION_TTL_SECONDS",
            "3600",
            Some(Some(Duration::from_secs(3600))),
        ),
        (
            "SUMBISSION_TTL_SECONDS",
            "60",
            Some(Some(Duration::from_secs(60))),
        ),
        ("SUBMISSION_TTL_SECONDS", "0", None),
    ];
    let mut states = Vec::new();
    for (name, value, expected) in steps {
        let state =
            common::state_with(&[("POOL_SIZE", "0"), ("DATABASE_NAME", &db), (name, value)]).await;
        assert_eq!(ttl_of(state.clone()).await, expected, "{name}={value}");
        states.push(state);
    }
    states[0].mongo.db().unwrap().drop().await.unwrap();
    for s in states {
        finish(s).await;
    }
}

#[tokio::test]
async fn another_users_run_is_404_and_only_the_owner_deletes() {
    let state = common::state_with(&[("POOL_SIZE", "1")]).await;
    let mut alice = Client::new(&state);
    alice.sign_up("alice").await;
    let mut mallory = Client::new(&state);
    mallory.sign_up("mallory").await;
    let run = alice.run("python", "print('secret')", "").await;
    let id = run["id"].as_str().unwrap().to_string();

    for path in [
        format!("/api/v1/runs/{id}"),
        format!("/api/v1/runs/{id}/events"),
    ] {
        let r = mallory.get(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!r.text().contains("secret"));
    }
    let r = mallory.delete(&format!("/api/v1/history/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(stored(&state, &id).await);
    let mut page = Client::for_app(&state);
    page.bearer = mallory.bearer.clone();
    let r = page.page(&format!("/history/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.text().contains("secret"));
    let mut guest = Client::new(&state);
    assert_eq!(
        guest.get(&format!("/api/v1/runs/{id}")).await.status,
        StatusCode::NOT_FOUND
    );

    // The owner sees it on the page, then deletes it.
    page.bearer = alice.bearer.clone();
    let r = page.page(&format!("/history/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("print(&#x27;secret&#x27;)") || r.text().contains("print('secret')"));
    let r = alice.delete(&format!("/api/v1/history/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(!stored(&state, &id).await);
    assert_eq!(
        alice.get(&format!("/api/v1/runs/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let r = alice.delete(&format!("/api/v1/history/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        guest.get("/api/v1/history").await.status,
        StatusCode::UNAUTHORIZED
    );
    finish(state).await;
}

/// What a browser without JavaScript posts when Delete is pressed on `/history/{id}`.
async fn delete_without_js(b: &mut Client, id: &str, confirmed: &str) -> common::Reply {
    b.send_with(
        "POST",
        "/fn/history_delete",
        &[
            ("accept", "text/html"),
            ("referer", &format!("http://localhost/history/{id}")),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        format!("id={id}&confirmed={confirmed}"),
    )
    .await
}

#[tokio::test]
async fn deleting_without_javascript_asks_first() {
    let state = common::state_with(&[("POOL_SIZE", "1")]).await;
    let mut api = Client::new(&state);
    api.sign_up("nojsdel").await;
    let id = api.run("python", "print('keep me?')", "").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut browser = Client::for_app(&state);
    browser.bearer = api.bearer.clone();
    let r = delete_without_js(&mut browser, &id, "").await;
    assert!(r.status.is_redirection(), "{}", r.status);
    let ask = r.header("location").unwrap();
    assert_eq!(ask, format!("/history/{id}?delete=1"));
    assert!(
        stored(&state, &id).await,
        "an unconfirmed delete changes nothing"
    );
    let p = browser.page(&ask).await;
    assert_eq!(p.status, StatusCode::OK);
    let html = p.text();
    assert!(
        html.contains("Delete this run from your history?"),
        "{html}"
    );
    assert!(html.contains("Delete for good") && html.contains(r#"name="confirmed" value="yes""#));

    let r = delete_without_js(&mut browser, &id, "yes").await;
    assert!(r.status.is_redirection(), "{}", r.status);
    assert_eq!(r.header("location").unwrap(), "/history");
    assert!(!stored(&state, &id).await);
    assert_eq!(
        browser.page(&format!("/history/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    finish(state).await;
}

#[tokio::test]
async fn a_run_deleted_while_it_runs_is_stopped_and_stays_deleted() {
    let state = common::state_with(&[("POOL_SIZE", "1"), ("RUN_TIME_LIMIT_MS", "120000")]).await;
    let mut user = Client::new(&state);
    user.sign_up("deleter").await;
    let r = user
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "import time\nprint('started', flush=True)\ntime.sleep(30)"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    // The run is in the history from the start; wait until it is really running.
    crate::eventually!(
        "the run's first output",
        user.get(&format!("/api/v1/runs/{id}")).await.json()["stdout"] == "started\n"
    );
    assert_eq!(
        user.get("/api/v1/history").await.json()["items"][0]["id"],
        id
    );

    // The event stream's result comes after the final state has been written.
    let mut events = user.events(&id).await;
    let r = user.delete(&format!("/api/v1/history/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Deleting stops it (not its 30 s sleep, nor the time limit).
    let seen = events.until_result().await;
    assert!(seen.contains(r#""verdict":"stopped""#), "{seen}");
    assert_eq!(state.engine.runs_in_progress(), 0);
    // Its final state, written when it ended, did not bring it back anywhere.
    assert!(!stored(&state, &id).await);
    assert_eq!(user.get("/api/v1/history").await.json()["total"], 0);
    assert_eq!(
        user.get(&format!("/api/v1/runs/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    finish(state).await;
}

#[tokio::test]
async fn a_users_run_outlives_its_redis_entry() {
    let state = common::state_with(&[("POOL_SIZE", "1")]).await;
    let mut user = Client::new(&state);
    user.sign_up("longlived").await;
    let run = user.run("python", "print(1 + 1)", "").await;
    let id = run["id"].as_str().unwrap().to_string();
    // Another instance, after the run state in Redis has expired.
    let mut conn = state.redis.conn().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("own-ide:run:{id}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let other = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&other);
    c.bearer = user.bearer.clone();
    let r = c.get(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["stdout"], "2\n");
    assert_eq!(r.json()["verdict"], "ok");
    finish(state).await;
    finish(other).await;
}

/// The run ids of a history page, in its order.
fn ids_of(page: &serde_json::Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .expect("a page's items")
        .iter()
        .map(|r| r["id"].as_str().expect("a run id"))
        .collect()
}
