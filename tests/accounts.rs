//! Accounts against the real MongoDB-compatible server and Redis: registration, tokens,
//! browser sessions (rotation at log-in, logout), the brake on guessing, and the hash.

mod common;

use axum::http::StatusCode;
use common::{fresh_name, Client};
use jsonwebtoken::{EncodingKey, Header};
use mongodb::bson::{doc, Document};
use serde_json::json;

const SECRET: &str = "integration-test-secret-key-0123456789";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn register_then_duplicate_and_bad_values() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let name = fresh_name("Ada");
    let r = c
        .post_json(
            "/api/v1/users",
            &json!({"username": name, "password": "correct horse"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let body = r.json();
    assert_eq!(body["username"], name);
    assert_eq!(body["id"].as_str().unwrap().len(), 32);
    assert!(body.get("password_hash").is_none() && !r.text().contains("argon2"));

    // The same name in other letter case is taken too.
    let r = c
        .post_json(
            "/api/v1/users",
            &json!({"username": name.to_uppercase(), "password": "another password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "conflict");

    for (username, password, code) in [
        ("ab", "correct horse", "invalid_username"),
        ("has space", "correct horse", "invalid_username"),
        (&*fresh_name("ok"), "short", "invalid_password"),
    ] {
        let r = c
            .post_json(
                "/api/v1/users",
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], code);
    }
    let r = c
        .send("POST", "/api/v1/users", Some("application/json"), "{nope")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_password_is_stored_as_argon2id_phc_and_never_returned() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let name = c.sign_up("hash").await;
    let users = state.mongo.db().unwrap().collection::<Document>("users");
    let d = users
        .find_one(doc! { "username": &name })
        .await
        .unwrap()
        .expect("the user is in the users collection");
    let hash = d.get_str("password_hash").unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m="), "{hash}");
    assert!(!hash.contains("correct horse"));
    let indexes = users.list_index_names().await.unwrap();
    assert!(
        indexes.contains(&"username_norm_unique".to_string()),
        "{indexes:?}"
    );
}

#[tokio::test]
async fn tokens_right_and_wrong_credentials() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let name = c.sign_up("tok").await;

    // The OAuth2 password flow (a form) works as well as JSON.
    let r = c
        .post_form(
            "/api/v1/token",
            &format!("username={name}&password=correct+horse"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let t = r.json();
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(
        t["expires_in"],
        state.config.access_token_expire_minutes * 60
    );

    // The token is accepted on a users-only route; no token there is 401.
    c.bearer = t["access_token"].as_str().map(str::to_string);
    assert_eq!(c.get("/api/v1/history").await.status, StatusCode::OK);
    let mut anon = Client::new(&state);
    assert_eq!(
        anon.get("/api/v1/history").await.status,
        StatusCode::UNAUTHORIZED
    );

    // A wrong password and an unknown user get the same answer.
    let wrong = anon
        .post_json(
            "/api/v1/token",
            &json!({"username": name, "password": "wrong password"}),
        )
        .await;
    let unknown = anon
        .post_json(
            "/api/v1/token",
            &json!({"username": fresh_name("nobody"), "password": "wrong password"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(
        wrong.json()["error"]["message"],
        "The username or password is not correct."
    );
}

#[tokio::test]
async fn wrong_user_and_wrong_password_get_the_same_answer() {
    // Whether a name exists must not show in the answer. (That both cost one argon2
    // verification is a timing matter, measured in bench/, not asserted here.)
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let name = c.sign_up("sameanswer").await;
    let mut answers = Vec::new();
    for user in [name.clone(), fresh_name("ghost")] {
        // A fresh address, so that the brake never kicks in here.
        let mut anon = Client::new(&state);
        let r = anon
            .post_json(
                "/api/v1/token",
                &json!({"username": user, "password": "wrong password"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        answers.push((r.status, r.json(), r.header("www-authenticate")));
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn expired_tampered_and_wrong_algorithm_tokens_are_refused() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    c.sign_up("jwt").await;
    let good = c.bearer.clone().unwrap();

    let claims = |exp: u64| json!({"sub": "0123456789abcdef0123456789abcdef", "name": "x", "iat": now() - 100, "exp": exp});
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let expired = jsonwebtoken::encode(&Header::default(), &claims(now() - 10), &key).unwrap();
    let wrong_alg = jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS512),
        &claims(now() + 600),
        &key,
    )
    .unwrap();
    let other_key = jsonwebtoken::encode(
        &Header::default(),
        &claims(now() + 600),
        &EncodingKey::from_secret(b"some other secret"),
    )
    .unwrap();
    // Tampered: the payload of a good token swapped for another user's, signature kept.
    let parts: Vec<&str> = good.split('.').collect();
    let forged_payload = other_key.split('.').nth(1).unwrap();
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);

    for (token, words) in [
        (expired.as_str(), "expired"),
        (wrong_alg.as_str(), "wrong algorithm"),
        (other_key.as_str(), "signature"),
        (tampered.as_str(), "signature"),
        ("not-a-token", "not valid"),
    ] {
        c.bearer = Some(token.to_string());
        let r = c.get("/api/v1/history").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token}: {}", r.text());
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(words), "{token}: {msg}");
    }
    c.bearer = Some(good);
    assert_eq!(c.get("/api/v1/history").await.status, StatusCode::OK);
}

/// Five wrong passwords for a new user's name, each from another address (the per-name
/// counter is what stops this), then the right one: refused for a while, with a clear
/// message and a Retry-After within the 15-minute window.
async fn the_sixth_login_is_braked(state: &own_ide::server::state::AppState, prefix: &str) {
    let mut c = Client::new(state);
    let name = c.sign_up(prefix).await;
    for _ in 0..5 {
        let mut attacker = Client::new(state);
        let r = attacker
            .post_json(
                "/api/v1/token",
                &json!({"username": name, "password": "guess guess"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    }
    let r = c
        .post_json(
            "/api/v1/token",
            &json!({"username": name, "password": "correct horse"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"]["code"], "too_many_attempts");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Too many failed log-ins"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 800 && retry <= 900, "{retry}");
}

#[tokio::test]
async fn failed_logins_are_braked_per_username() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    the_sixth_login_is_braked(&state, "brake").await;
}

#[tokio::test]
async fn the_brake_holds_while_redis_is_down() {
    // A Redis address where nothing listens: the counts cannot go to Redis.
    let redis = format!("redis://127.0.0.1:{}", common::free_port());
    let state = common::state_with(&[("POOL_SIZE", "0"), ("REDIS_URL", &redis)]).await;
    the_sixth_login_is_braked(&state, "nobrake").await;
    // Another name is not affected.
    let mut other = Client::new(&state);
    let other_name = other.sign_up("nobrake2").await;
    let r = other
        .post_json(
            "/api/v1/token",
            &json!({"username": other_name, "password": "correct horse"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// Calls a server function the way a browser form does, and returns the new cookie.
async fn form_call(c: &mut Client, path: &str, form: &str) -> common::Reply {
    let r = c.post_form(path, form).await;
    assert!(
        r.status.is_success() || r.status.is_redirection(),
        "{path}: {} {}",
        r.status,
        r.text()
    );
    r
}

async fn who(c: &mut Client) -> serde_json::Value {
    let r = c
        .send(
            "POST",
            "/fn/me",
            Some("application/x-www-form-urlencoded"),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn browser_sessions_rotate_at_login_and_die_at_logout() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut api = Client::new(&state);
    let name = api.sign_up("sess").await;

    let mut browser = Client::for_app(&state);
    let r = browser.page("/login").await;
    assert_eq!(r.status, StatusCode::OK);
    let guest_cookie = browser
        .cookie
        .clone()
        .expect("a session cookie on first contact");
    let set = r.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert_eq!(who(&mut browser).await, serde_json::Value::Null);

    form_call(
        &mut browser,
        "/fn/login",
        &format!("username={name}&password=correct+horse&next=%2Fhistory"),
    )
    .await;
    let user_cookie = browser.cookie.clone().unwrap();
    assert_ne!(
        user_cookie, guest_cookie,
        "the session id changes at log-in"
    );
    assert_eq!(who(&mut browser).await["username"], name);
    // The page shows who is signed in.
    let page = browser.page("/history").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains(&name));

    // The id from before log-in is worth nothing now.
    let mut old = Client::for_app(&state);
    old.cookie = Some(guest_cookie);
    assert_eq!(who(&mut old).await, serde_json::Value::Null);

    form_call(&mut browser, "/fn/logout", "").await;
    assert_eq!(who(&mut browser).await, serde_json::Value::Null);
    // Replaying the signed-in cookie after logout does not sign anyone in.
    let mut replay = Client::for_app(&state);
    replay.cookie = Some(user_cookie);
    assert_eq!(who(&mut replay).await, serde_json::Value::Null);
    let r = replay.page("/history").await;
    assert!(
        r.status.is_redirection(),
        "{} {:?} {}",
        r.status,
        r.headers,
        r.text()
    );
    assert!(r.header("location").unwrap().starts_with("/login"));
}

#[tokio::test]
async fn login_page_errors_without_javascript() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut api = Client::new(&state);
    let name = api.sign_up("nojs").await;
    let mut browser = Client::for_app(&state);
    browser.get("/login").await;
    // A browser without JavaScript posts the form with Accept: text/html and a Referer.
    let r = browser
        .send_with(
            "POST",
            "/fn/login",
            &[
                ("accept", "text/html"),
                ("referer", "http://localhost/login?next=/history"),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            format!("username={name}&password=wrong+password&next=%2Fhistory"),
        )
        .await;
    assert!(r.status.is_redirection(), "{}", r.status);
    let back = r.header("location").unwrap();
    assert!(back.contains("/login") && back.contains("__err"), "{back}");
    let path = back.trim_start_matches("http://localhost");
    let page = browser.get(path).await;
    assert!(
        page.text()
            .contains("The username or password is not correct."),
        "the login page shows the error"
    );
}

/// Redis away: registration keeps working and is throttled by this process's own count
/// (it does not fail closed), and an impossible name is still refused at once.
#[tokio::test]
async fn registration_is_throttled_per_instance_while_redis_is_down() {
    let redis = format!("redis://127.0.0.1:{}", common::free_port());
    let state = common::state_with(&[
        ("POOL_SIZE", "0"),
        ("REDIS_URL", &redis),
        ("REGISTRATIONS_PER_IP_PER_HOUR", "1"),
    ])
    .await;
    let mut c = Client::new(&state);
    let register = |name: String| json!({"username": name, "password": "correct horse"});
    let r = c
        .post_json("/api/v1/users", &register(fresh_name("down")))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = c
        .post_json("/api/v1/users", &register(fresh_name("down")))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "too_many_registrations");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 3500 && retry <= 3600, "{retry}");
    let r = c
        .post_json(
            "/api/v1/token",
            &json!({"username": "not a name", "password": "correct horse"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}

#[tokio::test]
async fn cookie_secure_marks_the_session_cookie_secure() {
    for (secure, expected) in [("true", true), ("false", false)] {
        let state = common::state_with(&[("POOL_SIZE", "0"), ("COOKIE_SECURE", secure)]).await;
        let mut browser = Client::for_app(&state);
        let r = browser.page("/").await;
        assert_eq!(r.status, StatusCode::OK);
        let set = r
            .header("set-cookie")
            .expect("a session cookie on first contact");
        assert!(set.starts_with("own_ide_session="), "{set}");
        let flags: Vec<&str> = set.split(';').map(str::trim).collect();
        assert_eq!(
            flags.contains(&"Secure"),
            expected,
            "COOKIE_SECURE={secure}: {set}"
        );
    }
}

/// Two instances sharing MongoDB: a browser that logs in through one is signed in on
/// the other, and logging out through the second ends the session on the first.
#[tokio::test]
async fn a_browser_session_is_shared_by_two_instances() {
    let a = common::state_with(&[("POOL_SIZE", "0")]).await;
    let b = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut api = Client::new(&a);
    let name = api.sign_up("shared").await;

    let mut on_a = Client::for_app(&a);
    on_a.page("/login").await;
    form_call(
        &mut on_a,
        "/fn/login",
        &format!("username={name}&password=correct+horse&next=%2F"),
    )
    .await;
    assert_eq!(who(&mut on_a).await["username"], name);

    let mut on_b = Client::for_app(&b);
    on_b.cookie = on_a.cookie.clone();
    assert_eq!(who(&mut on_b).await["username"], name);
    let page = on_b.page("/history").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains(&name));

    form_call(&mut on_b, "/fn/logout", "").await;
    assert_eq!(who(&mut on_a).await, serde_json::Value::Null);
}

/// While MongoDB is away no session can be read or stored, yet a guest who has a session
/// cookie keeps one identity from request to request: it can follow its own run from
/// any address, and nobody else can.
#[tokio::test]
async fn a_guest_keeps_its_identity_while_mongodb_is_down() {
    let up = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut guest = Client::for_app(&up);
    assert_eq!(guest.page("/").await.status, StatusCode::OK);
    let cookie = guest
        .cookie
        .clone()
        .expect("a session cookie on first contact");
    let mut other = Client::for_app(&up);
    other.page("/").await;
    let other_cookie = other
        .cookie
        .clone()
        .expect("a session cookie on first contact");

    // Another instance whose MongoDB is away (nothing listens on its port).
    let down = common::state_with_mongodb_down().await;
    let mut guest = Client::for_app(&down);
    guest.cookie = Some(cookie.clone());
    let id = guest.run("python", "print('mine')", "").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..2 {
        let mut again = Client::for_app(&down);
        again.cookie = Some(cookie.clone());
        let r = again.get(&format!("/api/v1/runs/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["stdout"], "mine\n");
    }
    let mut stranger = Client::for_app(&down);
    stranger.cookie = Some(other_cookie);
    assert_eq!(
        stranger.get(&format!("/api/v1/runs/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    common::finish(down).await;
    common::finish(up).await;
}
