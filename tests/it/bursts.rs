//! Sign-ins at once: concurrent first logins, written in groups, and sign-ins that read the
//! database together (`store::lookups` on PostgreSQL), each with its own answer.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn concurrent_first_logins_of_one_openid_make_one_user_on_both_databases() {
    for (db, kv) in [(Db::Postgres, Kv::Redis), (Db::Sqlite, Kv::Memory)] {
        let app = spawn_with(db, kv, |_| {}).await;
        let mut codes = Vec::new();
        for _ in 0..16 {
            codes.push(app.wx_login_same_key("zed").await);
        }
        let replies = app.login_all(&codes).await;
        let mut ids = std::collections::HashSet::new();
        let mut new_users = 0;
        for r in &replies {
            assert_eq!(r.status, 200, "{db:?}: {}", r.text);
            ids.insert(r.body["user"]["id"].as_str().unwrap().to_string());
            new_users += (r.body["isNewUser"] == true) as u32;
        }
        assert_eq!(ids.len(), 1, "{db:?}");
        assert_eq!(new_users, 1, "{db:?}");
    }
}

/// First logins are written in groups: a burst of new users, one of them several times over,
/// gives each person one whole user (no user row without its identity), on both databases.
#[tokio::test]
async fn a_burst_of_first_logins_makes_one_whole_user_each_on_both_databases() {
    use sqlx::Connection;
    for (db, kv) in [(Db::Postgres, Kv::Redis), (Db::Sqlite, Kv::Memory)] {
        let app = spawn_with(db, kv, |_| {}).await;
        let mut logins = Vec::new();
        for i in 0..40 {
            logins.push((
                format!("burst-{i}"),
                app.wx_login(&format!("burst-{i}")).await,
            ));
        }
        for _ in 0..8 {
            let code = app.wx_login_same_key("burst-twice").await;
            logins.push(("burst-twice".to_string(), code));
        }
        let replies = app.login_all(logins.iter().map(|(_, code)| code)).await;
        let mut users = std::collections::HashMap::new();
        let mut new_users = 0;
        for ((person, _), r) in logins.iter().zip(&replies) {
            assert_eq!(r.status, 200, "{db:?}: {}", r.text);
            let id = r.body["user"]["id"].as_str().unwrap().to_string();
            assert_eq!(
                users.entry(person.clone()).or_insert(id.clone()),
                &id,
                "{db:?}"
            );
            new_users += (r.body["isNewUser"] == true) as u32;
            let me = app.get("/api/v1/me", r.body["token"].as_str()).await;
            assert_eq!(me.body["id"], id.as_str(), "{db:?}");
            assert_eq!(me.body["identities"].as_array().unwrap().len(), 1);
        }
        assert_eq!(users.len(), 41, "{db:?}: one user a person");
        assert_eq!(new_users, 41, "{db:?}");
        let url = secrecy::ExposeSecret::expose_secret(&app.config.storage.database_url);
        let mut sql = sqlx::AnyConnection::connect(url).await.unwrap();
        let count = |table: &'static str| format!("SELECT COUNT(*) FROM {table}");
        for table in ["users", "identities"] {
            let n: i64 = sqlx::Row::get(
                &sqlx::query(&count(table))
                    .fetch_one(&mut sql)
                    .await
                    .unwrap(),
                0,
            );
            assert_eq!(n, 41, "{db:?}: rows in {table}");
        }
    }
}

/// Sign-ins that miss the user cache read who has their openid together on PostgreSQL (one
/// statement for all that queue meanwhile): each still finds its own user, by openid or by
/// unionid, or makes one.
#[tokio::test]
async fn sign_ins_read_together_each_find_their_own_user() {
    for (db, kv) in [(Db::Postgres, Kv::Redis), (Db::Sqlite, Kv::Memory)] {
        let app = spawn_with(db, kv, |_| {}).await;
        // Known people, in one app; the same people then sign in to another app of the same
        // Open Platform account (the same unionid), where only SQL knows them.
        let mut known = std::collections::HashMap::new();
        for i in 0..8 {
            let person = format!("known-{i}");
            let id = app.login(&person).await["user"]["id"]
                .as_str()
                .unwrap()
                .to_string();
            known.insert(person, id);
        }
        let mut logins = Vec::new();
        for i in 0..8 {
            let person = format!("known-{i}");
            logins.push((
                person.clone(),
                app.wx_login_in(SAMPLE_APPID, &person).await,
                SAMPLE_APPID,
            ));
            let person = format!("new-{i}");
            logins.push((
                person.clone(),
                app.wx_login_in(SAMPLE_APPID, &person).await,
                SAMPLE_APPID,
            ));
        }
        let replies = futures_util::future::join_all(logins.iter().map(|(_, code, appid)| {
            app.post(
                "/api/v1/auth/login",
                None,
                json!({"code": code, "appid": appid}),
            )
        }))
        .await;
        let mut made = std::collections::HashSet::new();
        for ((person, _, _), r) in logins.iter().zip(&replies) {
            assert_eq!(r.status, 200, "{db:?}: {}", r.text);
            let id = r.body["user"]["id"].as_str().unwrap();
            match known.get(person) {
                Some(user) => {
                    assert_eq!(id, user, "{db:?}: {person} is the same person by unionid");
                    assert_eq!(r.body["isNewUser"], false, "{db:?}");
                    assert_eq!(r.body["user"]["identities"].as_array().unwrap().len(), 2);
                }
                None => {
                    assert_eq!(r.body["isNewUser"], true, "{db:?}: {person}");
                    assert!(
                        made.insert(id.to_string()),
                        "{db:?}: {person} has a user of its own"
                    );
                    assert!(!known.values().any(|k| k == id), "{db:?}");
                }
            }
        }
        assert_eq!(made.len(), 8, "{db:?}");
    }
}
