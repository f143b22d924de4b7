//! Holding up under attack (issue 12, part 1) against the real Redis, MongoDB-compatible
//! server and Docker engine: the log-in brake counts before it checks, IPs are counted
//! per /64, impossible names make no counters, password hashing is bounded, registration
//! is throttled per IP, the forwarded-for walk cannot be steered by the client, and
//! cross-site posts change nothing.

mod common;

use axum::http::StatusCode;
use common::{fresh_name, Client, Reply};
use futures::future::join_all;
use own_ide::server::accounts::MAX_FAILS_PER_USER;
use own_ide::server::state::AppState;
use serde_json::json;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// A /64 no other test uses, as its first four segments.
fn fresh_v6_prefix() -> [u16; 4] {
    let n = uuid::Uuid::new_v4().as_u128();
    [0x2001, 0x0db8, (n >> 16) as u16, n as u16]
}

/// A client at address `host` inside the /64 `prefix`.
fn v6_client(state: &AppState, prefix: [u16; 4], host: u16) -> Client {
    let [a, b, c, d] = prefix;
    let mut client = Client::new(state);
    client.ip = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, host)), 443);
    client
}

async fn login(c: &mut Client, name: &str, password: &str) -> Reply {
    c.post_json(
        "/api/v1/token",
        &json!({"username": name, "password": password}),
    )
    .await
}

async fn register(c: &mut Client, name: &str) -> Reply {
    c.post_json(
        "/api/v1/users",
        &json!({"username": name, "password": "correct horse"}),
    )
    .await
}

fn retry_after(r: &Reply) -> u64 {
    r.header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {} {}", r.status, r.text()))
        .parse()
        .unwrap()
}

async fn redis_exists(state: &AppState, key: &str) -> bool {
    let mut conn = state.redis.conn().await.unwrap();
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(&mut conn)
        .await
        .unwrap()
        == 1
}

async fn user_count(state: &AppState, names: &[String]) -> u64 {
    let users = state
        .mongo
        .db()
        .unwrap()
        .collection::<mongodb::bson::Document>("users");
    users
        .count_documents(mongodb::bson::doc! { "username": { "$in": names } })
        .await
        .unwrap()
}

/// 50 wrong passwords for one name at once, each from its own address: the brake counts
/// each before checking, so only the allowed five are checked, and the owner is braked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_get_only_the_allowed_verifications() {
    // A long hashing wait, so that no guess is turned away as busy instead.
    let state = common::state_with(&[("POOL_SIZE", "0"), ("HASH_WAIT_MS", "120000")]).await;
    let mut owner = Client::new(&state);
    let name = owner.sign_up("race").await;
    owner.bearer = None;
    let before = state.accounts.hasher().verifications();
    let guesses = (0..50).map(|i| {
        let (state, name) = (state.clone(), name.clone());
        tokio::spawn(async move {
            let mut attacker = Client::new(&state);
            login(&mut attacker, &name, &format!("guess number {i}")).await
        })
    });
    let replies: Vec<Reply> = join_all(guesses)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let checked = state.accounts.hasher().verifications() - before;
    let wrong = replies
        .iter()
        .filter(|r| r.status == StatusCode::UNAUTHORIZED)
        .count();
    let braked: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(checked, MAX_FAILS_PER_USER, "password checks");
    assert_eq!(wrong as u64, MAX_FAILS_PER_USER);
    assert_eq!(wrong + braked.len(), 50);
    for r in braked {
        assert_eq!(r.json()["error"]["code"], "too_many_attempts");
        let secs = retry_after(r);
        assert!(secs > 800 && secs <= 900, "{secs}");
    }
    // The owner's right password is braked too now, without a check.
    let r = login(&mut owner, &name, "correct horse").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(state.accounts.hasher().verifications() - before, checked);
}

/// Failed log-ins from one IPv6 /64 count together, whichever address inside it they
/// come from; the next /64 is not affected.
#[tokio::test]
async fn ipv6_log_ins_are_braked_per_64() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let prefix = fresh_v6_prefix();
    for host in 1..=20u16 {
        let mut c = v6_client(&state, prefix, host);
        let r = login(&mut c, &fresh_name("v6ghost"), "wrong password").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{host}: {}", r.text());
    }
    let mut rotated = v6_client(&state, prefix, 0xbeef);
    let r = login(&mut rotated, &fresh_name("v6ghost"), "wrong password").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "too_many_attempts");
    let mut next = fresh_v6_prefix();
    next[3] = next[3].wrapping_add(1);
    let mut neighbour = v6_client(&state, next, 1);
    let r = login(&mut neighbour, &fresh_name("v6ghost"), "wrong password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}

/// Names that no account can have get the same 401 as a wrong password, with no
/// password check and no counter made in Redis.
#[tokio::test]
async fn impossible_names_are_refused_before_redis() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let wrong = login(&mut c, &fresh_name("real"), "wrong password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let before = state.accounts.hasher().verifications();
    let mut attacker = Client::new(&state);
    let junk = format!("{} with spaces", fresh_name("junk"));
    let long = "x".repeat(5000);
    for name in [junk.as_str(), "ab", long.as_str(), "nön-ascii", ""] {
        let r = login(&mut attacker, name, "wrong password").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(r.body, wrong.body, "the same answer as a wrong password");
        let key = format!("own-ide:login-fail:user:{}", name.to_ascii_lowercase());
        assert!(!redis_exists(&state, &key).await, "{key}");
    }
    let ip_key = format!("own-ide:login-fail:ip:{}", attacker.ip.ip());
    assert!(!redis_exists(&state, &ip_key).await, "{ip_key}");
    assert_eq!(state.accounts.hasher().verifications(), before);
}

/// A flood of log-ins with one hashing slot and no wait: the ones that find the slot
/// taken get 503 busy with Retry-After, never more than one password is checked at once,
/// and a refused attempt is not counted against the name.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_log_in_flood_is_bounded_and_latecomers_get_busy() {
    let state = common::state_with(&[
        ("POOL_SIZE", "0"),
        ("HASH_CONCURRENCY", "1"),
        ("HASH_WAIT_MS", "0"),
    ])
    .await;
    let before = state.accounts.hasher().verifications();
    let names: Vec<String> = (0..40).map(|_| fresh_name("flood")).collect();
    let flood = names.iter().map(|name| {
        let (state, name) = (state.clone(), name.clone());
        tokio::spawn(async move {
            let mut c = Client::new(&state);
            login(&mut c, &name, "wrong password").await
        })
    });
    let replies: Vec<Reply> = join_all(flood)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let checked = state.accounts.hasher().verifications() - before;
    let mut busy = 0;
    for (name, r) in names.iter().zip(&replies) {
        match r.status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert_eq!(r.json()["error"]["code"], "busy", "{}", r.text());
                assert!(retry_after(r) >= 1);
                // Not judged, so not counted.
                let key = format!("own-ide:login-fail:user:{}", name.to_ascii_lowercase());
                assert!(!redis_exists(&state, &key).await, "{key}");
            }
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    assert!(busy > 0, "some log-ins find the only slot taken");
    assert_eq!(checked, (replies.len() - busy) as u64);
    assert_eq!(
        state.accounts.hasher().peak(),
        1,
        "never more than one at once"
    );
}

/// Eight registrations at once from one address with a limit of three: exactly three
/// accounts exist afterwards, the rest got 429 with the hour's Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_registrations_stop_at_the_per_ip_cap() {
    let state = common::state_with(&[
        ("POOL_SIZE", "0"),
        ("REGISTRATIONS_PER_IP_PER_HOUR", "3"),
        ("HASH_WAIT_MS", "120000"),
    ])
    .await;
    let ip = common::fresh_ip();
    let names: Vec<String> = (0..8).map(|_| fresh_name("reg")).collect();
    let calls = names.iter().map(|name| {
        let (state, name) = (state.clone(), name.clone());
        tokio::spawn(async move {
            let mut c = Client::new(&state);
            c.ip = ip;
            register(&mut c, &name).await
        })
    });
    let replies: Vec<Reply> = join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 3);
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], "too_many_registrations");
        let secs = retry_after(r);
        assert!(secs > 3500 && secs <= 3600, "{secs}");
    }
    assert_eq!(
        user_count(&state, &names).await,
        3,
        "only three accounts exist"
    );
}

/// Invalid registrations do not count; a /64 counts as one address; another address is
/// not affected; 0 turns the limit off.
#[tokio::test]
async fn registrations_count_valid_ones_per_64() {
    let state =
        common::state_with(&[("POOL_SIZE", "0"), ("REGISTRATIONS_PER_IP_PER_HOUR", "2")]).await;
    let prefix = fresh_v6_prefix();
    let mut c = v6_client(&state, prefix, 1);
    for _ in 0..4 {
        let r = c
            .post_json(
                "/api/v1/users",
                &json!({"username": "no spaces allowed", "password": "correct horse"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = c
            .post_json(
                "/api/v1/users",
                &json!({"username": fresh_name("short"), "password": "short"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    for host in [1, 2] {
        let mut c = v6_client(&state, prefix, host);
        assert_eq!(
            register(&mut c, &fresh_name("v6reg")).await.status,
            StatusCode::CREATED
        );
    }
    let mut rotated = v6_client(&state, prefix, 0xbeef);
    let late = fresh_name("v6reg");
    let r = register(&mut rotated, &late).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(user_count(&state, &[late]).await, 0);
    let mut elsewhere = Client::new(&state);
    assert_eq!(
        register(&mut elsewhere, &fresh_name("v4reg")).await.status,
        StatusCode::CREATED
    );

    let off =
        common::state_with(&[("POOL_SIZE", "0"), ("REGISTRATIONS_PER_IP_PER_HOUR", "0")]).await;
    let mut c = v6_client(&off, prefix, 3);
    assert_eq!(
        register(&mut c, &fresh_name("v6off")).await.status,
        StatusCode::CREATED
    );
}

/// Registers a fresh name through the proxy client `c` with this X-Forwarded-For.
async fn via(c: &mut Client, xff: String) -> StatusCode {
    let name = fresh_name("xff");
    c.send_with(
        "POST",
        "/api/v1/users",
        &[
            ("content-type", "application/json"),
            ("x-forwarded-for", &xff),
        ],
        json!({"username": name, "password": "correct horse"}).to_string(),
    )
    .await
    .status
}

/// Behind a trusted proxy the registration is counted on the address the walk finds:
/// the right-most untrusted entry, and never a client-written entry left of something
/// that is not an address (then the proxy itself is the client).
#[tokio::test]
async fn forwarded_for_decides_the_counted_address() {
    let proxy = common::fresh_ip();
    let trusted = proxy.ip().to_string();
    let state = common::state_with(&[
        ("POOL_SIZE", "0"),
        ("REGISTRATIONS_PER_IP_PER_HOUR", "1"),
        ("TRUSTED_PROXIES", &trusted),
    ])
    .await;
    let client = common::fresh_ip().ip().to_string();
    let spoof = || common::fresh_ip().ip().to_string();
    let mut c = Client::new(&state);
    c.ip = proxy;
    // The client's address, with a made-up entry to its left: counted on the client.
    assert_eq!(
        via(&mut c, format!("{}, {client}", spoof())).await,
        StatusCode::CREATED
    );
    assert_eq!(
        via(&mut c, format!("{}, {client}", spoof())).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // An entry with a port ends the walk: the proxy is the client (its first), and the
    // made-up entry to the left is not chosen (it would be a fresh address).
    assert_eq!(
        via(&mut c, format!("{}, {client}:4711", spoof())).await,
        StatusCode::CREATED
    );
    for bad in ["[2001:db8::1]:443", "garbage", ""] {
        let status = via(&mut c, format!("{}, {bad}", spoof())).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{bad:?}");
    }
}

const HOST: &str = "ide.example";
const SAME_ORIGIN: [(&str, &str); 3] = [
    ("host", HOST),
    ("origin", "https://ide.example"),
    ("sec-fetch-site", "same-origin"),
];
const CROSS_SITE: [(&str, &str); 3] = [
    ("host", HOST),
    ("origin", "https://evil.example"),
    ("sec-fetch-site", "cross-site"),
];
/// An older browser: Origin but no Sec-Fetch-Site.
const CROSS_ORIGIN_ONLY: [(&str, &str); 2] = [("host", HOST), ("origin", "https://evil.example")];

async fn form(c: &mut Client, path: &str, site: &[(&str, &str)], body: &str) -> Reply {
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    headers.extend_from_slice(site);
    c.send_with("POST", path, &headers, body.to_string()).await
}

fn assert_cross_site(r: &Reply) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "cross_site");
}

async fn who(c: &mut Client) -> serde_json::Value {
    let r = form(c, "/fn/me", &SAME_ORIGIN, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

/// A page on another site posting the log-in form: refused, nobody signed in, the
/// visitor's session untouched. The same form from this site signs in.
#[tokio::test]
async fn a_cross_site_log_in_is_refused_and_signs_nobody_in() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut api = Client::new(&state);
    let name = api.sign_up("csrf").await;
    let mut browser = Client::for_app(&state);
    browser.page("/login").await;
    let guest_cookie = browser.cookie.clone().expect("a session cookie");
    let body = format!("username={name}&password=correct+horse");
    for site in [&CROSS_SITE[..], &CROSS_ORIGIN_ONLY[..]] {
        let r = form(&mut browser, "/fn/login", site, &body).await;
        assert_cross_site(&r);
        assert!(r.header("set-cookie").is_none());
        assert_eq!(browser.cookie.as_deref(), Some(guest_cookie.as_str()));
        assert_eq!(who(&mut browser).await, serde_json::Value::Null);
    }
    // A sibling subdomain is refused too.
    let sibling = [
        ("host", HOST),
        ("origin", "https://blog.ide.example"),
        ("sec-fetch-site", "same-site"),
    ];
    assert_cross_site(&form(&mut browser, "/fn/login", &sibling, &body).await);
    assert_eq!(who(&mut browser).await, serde_json::Value::Null);

    let r = form(&mut browser, "/fn/login", &SAME_ORIGIN, &body).await;
    assert!(
        r.status.is_success() || r.status.is_redirection(),
        "{} {}",
        r.status,
        r.text()
    );
    assert_eq!(who(&mut browser).await["username"], name);
    // Log-out from another site does nothing either.
    assert_cross_site(&form(&mut browser, "/fn/logout", &CROSS_SITE, "").await);
    assert_eq!(who(&mut browser).await["username"], name);
    // Registering from another site creates nobody.
    let other = fresh_name("csrfreg");
    let r = form(
        &mut browser,
        "/fn/register",
        &CROSS_SITE,
        &format!("username={other}&password=correct+horse&confirm=correct+horse"),
    )
    .await;
    assert_cross_site(&r);
    assert_eq!(user_count(&state, &[other]).await, 0);
}

/// How many runs the user of `api` (a bearer client) has in its history.
async fn total(api: &mut Client) -> u64 {
    let r = api.get("/api/v1/history").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["total"].as_u64().unwrap()
}

/// A signed-in visitor's browser led by another site to run code and delete a run, by
/// form and by the API with the session cookie: refused, nothing run, nothing deleted.
/// The same from this site works, and a bearer-token client is never affected.
#[tokio::test]
async fn cross_site_runs_and_deletes_change_nothing() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut api = Client::new(&state);
    let name = api.sign_up("csrfrun").await;
    let mut browser = Client::for_app(&state);
    browser.page("/login").await;
    let r = form(
        &mut browser,
        "/fn/login",
        &SAME_ORIGIN,
        &format!("username={name}&password=correct+horse"),
    )
    .await;
    assert!(r.status.is_success() || r.status.is_redirection());
    let run = api.run("python", "print('mine')", "").await;
    let id = run["id"].as_str().unwrap().to_string();
    assert_eq!(total(&mut api).await, 1);

    let run_body = "language=python&code=print(1)";
    assert_cross_site(&form(&mut browser, "/fn/run_form", &CROSS_SITE, run_body).await);
    let delete_body = format!("id={id}&confirmed=yes");
    for site in [&CROSS_SITE[..], &CROSS_ORIGIN_ONLY[..]] {
        assert_cross_site(&form(&mut browser, "/fn/history_delete", site, &delete_body).await);
        let mut headers = vec![("content-type", "application/json")];
        headers.extend_from_slice(site);
        let code = json!({"language": "python", "code": "print(1)"}).to_string();
        assert_cross_site(
            &browser
                .send_with("POST", "/api/v1/runs", &headers, code)
                .await,
        );
        let uri = format!("/api/v1/history/{id}");
        assert_cross_site(&browser.send_with("DELETE", &uri, site, "").await);
    }
    assert_eq!(total(&mut api).await, 1, "nothing run, nothing deleted");

    // With a bearer token the same headers change nothing: the call is the client's own.
    let uri = format!("/api/v1/history/{id}");
    let r = api.send_with("DELETE", &uri, &CROSS_SITE, "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(total(&mut api).await, 0);

    // From this site the session may run code.
    let mut headers = vec![("content-type", "application/json")];
    headers.extend_from_slice(&SAME_ORIGIN);
    let code = json!({"language": "python", "code": "print(2)"}).to_string();
    let r = browser
        .send_with("POST", "/api/v1/runs?wait=true", &headers, code)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["stdout"], "2\n", "{}", r.text());
    assert_eq!(total(&mut api).await, 1);
    common::finish(state).await;
}
