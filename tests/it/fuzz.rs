//! Hostile bodies: random mutations of valid requests, sent to every JSON route. Every answer is
//! below 500, in the contract's error body when it is an error, and nothing panics. Seeded, so a
//! failure replays.

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::json;

use crate::helpers::*;

fn mutate(rng: &mut StdRng, valid: &str) -> String {
    let mut bytes = valid.as_bytes().to_vec();
    for _ in 0..rng.gen_range(1..6) {
        let at = if bytes.is_empty() {
            0
        } else {
            rng.gen_range(0..bytes.len())
        };
        match rng.gen_range(0..5) {
            0 if !bytes.is_empty() => {
                bytes.remove(at);
            }
            1 => bytes.insert(at, rng.gen()),
            2 => bytes.insert(
                at,
                *b"{}[]\":,\\ 0-e.ntfu".get(rng.gen_range(0..17)).unwrap(),
            ),
            3 if !bytes.is_empty() => bytes[at] = rng.gen(),
            _ => {
                let junk = [
                    "null",
                    "1e999",
                    "\"\\u0000\"",
                    "[]",
                    "{}",
                    "-0",
                    "\"\u{10FFFF}\"",
                    "true",
                ];
                let j = junk[rng.gen_range(0..junk.len())];
                bytes.splice(at..at, j.bytes());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn mutated_bodies_never_get_a_5xx() {
    let app = spawn_app().await;
    let token = app.token("fuzz").await;
    let data = app
        .emu(
            "POST",
            "/encrypt",
            json!({"appid": APPID, "user": "fuzz", "data": {"a": 1}}),
        )
        .await;
    let routes: Vec<(&str, &str, String)> = vec![
        ("POST", "/api/v1/auth/login", json!({"code": "abc", "appid": APPID, "username": "user1", "password": "password1-long"}).to_string()),
        ("POST", "/api/v1/auth/refresh", json!({"code": "abc"}).to_string()),
        ("POST", "/api/v1/auth/bind", json!({"bindTicket": "t", "username": "user1", "password": "password1-long"}).to_string()),
        ("POST", "/api/v1/auth/password", json!({"username": "user1", "password": "password1-long"}).to_string()),
        ("POST", "/api/v1/auth/ticket", json!({"ticket": "t"}).to_string()),
        ("POST", "/api/v1/accounts", json!({"username": "user1", "password": "password1-long"}).to_string()),
        ("PATCH", "/api/v1/me", json!({"nickname": "n", "avatarUrl": "https://a.example/x.png"}).to_string()),
        ("PUT", "/api/v1/me/credentials", json!({"username": "user1", "password": "password1-long"}).to_string()),
        ("POST", "/api/v1/me/phone", json!({"encryptedData": data["encryptedData"], "iv": data["iv"]}).to_string()),
        ("POST", "/api/v1/wechat/decrypt", json!({"encryptedData": data["encryptedData"], "iv": data["iv"], "rawData": data["rawData"], "signature": data["signature"]}).to_string()),
    ];
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for (method, path, valid) in &routes {
        for _ in 0..60 {
            let body = mutate(&mut rng, valid);
            let resp = app
                .http
                .request(method.parse().unwrap(), format!("{}{path}", app.base))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            assert!(
                status < 500,
                "{method} {path} with {body:?}: {status} {text}"
            );
            if status >= 400 {
                let v: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("{path}: not the error body: {text}"));
                assert!(
                    v["code"].is_string() && v["requestId"].is_string(),
                    "{path}: {text}"
                );
            }
        }
    }
    assert_eq!(app.get("/healthz", None).await.text, "ok", "still up");
}
