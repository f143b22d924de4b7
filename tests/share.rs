//! Sharing runs against the real Docker engine, Redis and MongoDB-compatible server:
//! share, fetch by slug (anyone), revoke (only the creator), a guest's share counted
//! like a run, the share outliving the run, and a clear 503 that costs nothing while
//! MongoDB is away. The page `/s/{slug}` is checked as a browser without JavaScript
//! gets it.

mod common;

use axum::http::StatusCode;
use common::{finish, Client};
use serde_json::json;

/// Shares run `id` as `c`, expecting `201`; returns the slug.
async fn share(c: &mut Client, id: &str) -> String {
    let r = c
        .send("POST", &format!("/api/v1/runs/{id}/share"), None, "")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let slug = r.json()["slug"].as_str().unwrap().to_string();
    assert_eq!(slug.len(), 11, "{slug}");
    assert!(slug.bytes().all(|b| b.is_ascii_alphanumeric()), "{slug}");
    assert!(
        r.json()["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/s/{slug}")),
        "{}",
        r.text()
    );
    assert_eq!(
        r.header("location").as_deref(),
        Some(format!("/api/v1/shares/{slug}").as_str())
    );
    slug
}

#[tokio::test]
async fn share_fetch_by_slug_then_revoke() {
    let state = common::state().await;
    let mut guest = Client::new(&state);
    let run = guest
        .run("python", "print('Hello, ' + input())", "Ada")
        .await;
    let id = run["id"].as_str().unwrap();
    let slug = share(&mut guest, id).await;

    // Anyone, with no cookie at all, reads the snapshot; it never names the owner.
    let mut stranger = Client::new(&state);
    let r = stranger.get(&format!("/api/v1/shares/{slug}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let s = r.json();
    assert_eq!(s["slug"], slug.as_str());
    assert_eq!(s["language"], "python");
    assert_eq!(s["code"], "print('Hello, ' + input())");
    assert_eq!(s["stdin"], "Ada");
    assert_eq!(s["stdout"], "Hello, Ada\n");
    assert_eq!(s["verdict"], "ok");
    assert_eq!(s["exit_code"], 0);
    assert!(
        s["time_ms"].as_u64().is_some() && s["expires_at"].is_null(),
        "{s}"
    );
    for private in ["id", "owner", "creator", "user_id", "guest_id"] {
        assert!(s.get(private).is_none(), "{private} in {s}");
    }
    assert!(!r.text().contains(id), "the run id leaked: {}", r.text());

    // Someone else cannot revoke it: the same 404 as for no share at all.
    let r = stranger.delete(&format!("/api/v1/shares/{slug}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["code"], "not_found");
    assert_eq!(
        stranger.get(&format!("/api/v1/shares/{slug}")).await.status,
        StatusCode::OK
    );

    // Its creator can; then the link is gone for everyone.
    let r = guest.delete(&format!("/api/v1/shares/{slug}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = stranger.get(&format!("/api/v1/shares/{slug}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["code"], "not_found");
    assert_eq!(
        guest.delete(&format!("/api/v1/shares/{slug}")).await.status,
        StatusCode::NOT_FOUND
    );
    // Slugs that cannot be ours are not found either.
    for bad in ["short", "abcdefghij%2F", "AAAAAAAAAAA"] {
        let r = stranger.get(&format!("/api/v1/shares/{bad}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
    }
    finish(state).await;
}

#[tokio::test]
async fn only_the_runs_owner_shares_it_and_only_once_it_has_finished() {
    let state = common::state().await;
    let mut owner = Client::new(&state);
    let run = owner.run("python", "print(1)", "").await;
    let id = run["id"].as_str().unwrap().to_string();
    let mut other = Client::new(&state);
    let r = other
        .send("POST", &format!("/api/v1/runs/{id}/share"), None, "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = owner
        .send(
            "POST",
            "/api/v1/runs/0123456789abcdef0123456789abcdef/share",
            None,
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A run still going cannot be shared yet (it sleeps far longer than this test takes
    // to ask, and is stopped right after).
    let r = owner
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "import time\ntime.sleep(60)"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let long = r.json()["id"].as_str().unwrap().to_string();
    let r = owner
        .send("POST", &format!("/api/v1/runs/{long}/share"), None, "")
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "conflict");
    owner
        .send("POST", &format!("/api/v1/runs/{long}/stop"), None, "")
        .await;
    let stopped = common::wait_finished(&mut owner, &long).await;
    assert_eq!(stopped["verdict"], "stopped");
    // Once it has ended it can be.
    share(&mut owner, &long).await;
    finish(state).await;
}

#[tokio::test]
async fn a_share_with_a_lifetime_stops_working_after_it() {
    let state = common::state_with(&[("SHARE_TTL_SECONDS", "1")]).await;
    let mut guest = Client::new(&state);
    let run = guest.run("python", "print('brief')", "").await;
    let slug = share(&mut guest, run["id"].as_str().unwrap()).await;
    let mut reader = Client::new(&state);
    let r = reader.get(&format!("/api/v1/shares/{slug}")).await;
    let s = r.json();
    // Usually still there on the first read; either way it says when it goes, and goes.
    if r.status == StatusCode::OK {
        let at = |f: &str| {
            time::OffsetDateTime::parse(
                s[f].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        };
        let lifetime = at("expires_at") - at("shared_at");
        assert!(
            (lifetime.whole_milliseconds() - 1000).abs() < 5,
            "{lifetime} in {s}"
        );
    }
    crate::eventually!(
        "the expired share is gone",
        reader.get(&format!("/api/v1/shares/{slug}")).await.status == StatusCode::NOT_FOUND
    );
    finish(state).await;
}

#[tokio::test]
async fn a_guests_share_counts_against_the_quota_with_standard_headers() {
    let state = common::state_with(&[("GUEST_QUOTA", "2")]).await;
    let mut guest = Client::new(&state);
    let run = guest.run("python", "print(2)", "").await;
    let id = run["id"].as_str().unwrap();
    let r = guest
        .send("POST", &format!("/api/v1/runs/{id}/share"), None, "")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("2"));
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("0"));
    let reset = r.header("x-ratelimit-reset").unwrap();
    assert_eq!(
        r.header("ratelimit-policy").as_deref(),
        Some("\"guest_runs\";q=2;w=86400")
    );
    assert_eq!(
        r.header("ratelimit"),
        Some(format!("\"guest_runs\";r=0;t={reset}"))
    );

    // The quota is used up by the run and the share: no more runs, no more shares.
    let r = guest
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "print(3)"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "quota_exhausted");
    assert!(r.header("ratelimit").unwrap().contains(";r=0;"));
    let r = guest
        .send("POST", &format!("/api/v1/runs/{id}/share"), None, "")
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "quota_exhausted");
    assert!(r.header("retry-after").is_some());
    assert!(r.header("ratelimit-policy").is_some());
    finish(state).await;
}

#[tokio::test]
async fn a_users_run_deleted_from_history_keeps_its_share() {
    let state = common::state_with(&[("USER_RUNS_PER_MINUTE", "30")]).await;
    let mut user = Client::new(&state);
    user.sign_up("sharer").await;
    let run = user.run("javascript", "console.log('kept')", "").await;
    let id = run["id"].as_str().unwrap().to_string();
    let r = user
        .send("POST", &format!("/api/v1/runs/{id}/share"), None, "")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // A user's share counts against the per-minute rate, with the same headers.
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("28"));
    assert_eq!(
        r.header("ratelimit-policy").as_deref(),
        Some("\"user_runs\";q=30;w=60")
    );
    let slug = r.json()["slug"].as_str().unwrap().to_string();

    let r = user.delete(&format!("/api/v1/history/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(
        user.get(&format!("/api/v1/runs/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let r = Client::new(&state)
        .get(&format!("/api/v1/shares/{slug}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["stdout"], "kept\n");
    assert_eq!(r.json()["code"], "console.log('kept')");

    // The same user revokes it with another token (same account).
    let mut again = Client::new(&state);
    again.bearer = user.bearer.clone();
    let r = again.delete(&format!("/api/v1/shares/{slug}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    finish(state).await;
}

#[tokio::test]
async fn mongodb_down_is_a_503_that_stores_and_counts_nothing() {
    let down = common::state_with_mongodb_down().await;
    let mut guest = Client::new(&down);
    // A session cookie the (away) session store cannot read: the guest is then known
    // by a hash of it, the same on every request.
    let id = uuid::Uuid::new_v4().as_u128().to_le_bytes();
    use base64::Engine;
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id);
    guest.cookie = Some(format!("own_ide_session={id}"));
    let r = guest
        .post_json(
            "/api/v1/runs?wait=true",
            &json!({"language": "python", "code": "print(4)"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let left: u64 = r.header("x-ratelimit-remaining").unwrap().parse().unwrap();
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = guest
        .send("POST", &format!("/api/v1/runs/{id}/share"), None, "")
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "mongodb_unavailable");
    assert!(r.header("retry-after").is_some());
    // The refused share was given back: the next run takes one, not two.
    let r = guest
        .post_json(
            "/api/v1/runs?wait=true",
            &json!({"language": "python", "code": "print(5)"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let after: u64 = r.header("x-ratelimit-remaining").unwrap().parse().unwrap();
    assert_eq!(after, left - 1);
    // Reading or revoking a share says the same.
    let r = guest.get("/api/v1/shares/AAAAAAAAAAA").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["error"]["code"], "mongodb_unavailable");
    let r = guest.delete("/api/v1/shares/AAAAAAAAAAA").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    finish(down).await;
}

#[tokio::test]
async fn the_shared_page_is_complete_without_javascript() {
    let state = common::state().await;
    let mut guest = Client::new(&state);
    let code = "# greets\nname = input()\nprint(f'Hi <{name}>')  # \"/><script>alert(1)</script>\n";
    let run = guest.run("python", code, "Ada").await;
    let slug = share(&mut guest, run["id"].as_str().unwrap()).await;

    let mut reader = Client::for_app(&state);
    let r = reader.page(&format!("/s/{slug}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    // Highlighted code, escaped; the input; the output; the verdict.
    assert!(
        html.contains(r##"<span class="tok-comment"># greets</span>"##),
        "{html}"
    );
    assert!(
        html.contains(r#"<span class="tok-keyword">print</span>"#),
        "{html}"
    );
    assert!(html.contains("Hi &lt;Ada&gt;"), "{html}");
    assert!(html.contains(r#"data-testid="shared-stdin""#), "{html}");
    assert!(html.contains(r#"data-verdict="ok""#), "{html}");
    // Link previews: the language in the title, the first lines in the description.
    assert!(
        html.contains(r#"<meta property="og:title" content="Python program"#),
        "{html}"
    );
    assert!(
        html.contains(r##"property="og:description" content="# greets"##),
        "{html}"
    );
    assert!(html.contains(r#"name="twitter:card""#), "{html}");
    // Code is text everywhere, in the page and in the preview tags.
    assert!(!html.contains("<script>alert(1)"), "{html}");
    // A fork starts a new draft from it, with or without JavaScript.
    assert!(html.contains(&format!(r#"href="/?fork={slug}""#)), "{html}");
    let r = reader.page(&format!("/?fork={slug}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("name = input()"), "{}", r.text());

    // A share that is not there is a 404 page.
    let r = reader.page("/s/AAAAAAAAAAA").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    finish(state).await;
}
