//! Redis Sentinel: a master, a replica and three sentinels of Debian's `redis-server` and
//! `redis-sentinel` on loopback. Under load the master is killed; the sentinels promote the
//! replica, and wxlogin follows: errors only between the kill and the promotion (plus 2 s), all
//! 503, none after; sessions made before the failover still work.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

async fn started(port: u16) {
    assert!(until_port(port).await, "nothing listens on {port}");
}

fn redis_server(port: u16, dir: &std::path::Path, extra: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server is installed (scripts/services.sh installs it)")
}

fn redis_sentinel(port: u16, master: u16, dir: &std::path::Path) -> tokio::process::Child {
    let conf = dir.join(format!("sentinel-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\n\
             sentinel monitor main 127.0.0.1 {master} 2\n\
             sentinel down-after-milliseconds main 1000\n\
             sentinel failover-timeout main 5000\n\
             sentinel parallel-syncs main 1\n",
            dir.display()
        ),
    )
    .unwrap();
    tokio::process::Command::new("redis-sentinel")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-sentinel is installed (scripts/services.sh installs it)")
}

async fn query<T: redis::FromRedisValue>(port: u16, cmd: &mut redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    cmd.query_async(&mut conn).await
}

/// The port of the master the sentinel on `port` names.
async fn named_master(port: u16) -> Option<u16> {
    let addr: Vec<String> = query(
        port,
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg("main"),
    )
    .await
    .ok()?;
    addr.get(1)?.parse().ok()
}

async fn info(port: u16) -> String {
    query(port, redis::cmd("INFO").arg("replication"))
        .await
        .unwrap_or_default()
}

fn field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
}

#[tokio::test]
async fn wxlogin_follows_the_master_through_a_sentinel_failover() {
    let dir = tempdir();
    let (master, replica) = (free_port(), free_port());
    let mut master_process = redis_server(master, &dir, &[]);
    started(master).await;
    let _replica_process = redis_server(
        replica,
        &dir,
        &["--replicaof", "127.0.0.1", &master.to_string()],
    );
    started(replica).await;
    let sentinels: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let _sentinel_processes: Vec<_> = sentinels
        .iter()
        .map(|&p| redis_sentinel(p, master, &dir))
        .collect();
    for &p in &sentinels {
        started(p).await;
    }
    // The sentinels know the replica and each other before anything is killed.
    let started = Instant::now();
    loop {
        let replicas: redis::RedisResult<Vec<redis::Value>> = query(
            sentinels[0],
            redis::cmd("SENTINEL").arg("replicas").arg("main"),
        )
        .await;
        let others: redis::RedisResult<Vec<redis::Value>> = query(
            sentinels[0],
            redis::cmd("SENTINEL").arg("sentinels").arg("main"),
        )
        .await;
        let linked = field(&info(replica).await, "master_link_status").as_deref() == Some("up");
        if linked && replicas.is_ok_and(|r| r.len() == 1) && others.is_ok_and(|o| o.len() == 2) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "sentinels never settled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let url = format!(
        "redis+sentinel://{}/main",
        sentinels
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let app = spawn_with(Db::Postgres, Kv::Redis, |c| {
        c.storage.redis_url = Some(url.clone().into());
        c.login.rate_limit_per_minute = 0;
    })
    .await;
    let mut before = Vec::new();
    for i in 0..5 {
        before.push(app.token(&format!("before-{i}")).await);
    }
    // Replicated: the replica has every write of the master.
    loop {
        let (m, r) = (info(master).await, info(replica).await);
        let offset = field(&m, "master_repl_offset");
        if offset.is_some() && offset == field(&r, "master_repl_offset") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Load: /me with the sessions made before, and new logins, from two tasks.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let load = |k: usize| {
        let (base, stop, tokens) = (app.base.clone(), stop.clone(), before.clone());
        let emu = app.emu.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut seen = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let status = if i % 2 == 0 {
                    let r = http
                        .get(format!("{base}/api/v1/me"))
                        .bearer_auth(&tokens[i % tokens.len()])
                        .send()
                        .await;
                    r.map(|r| r.status().as_u16()).unwrap_or(0)
                } else {
                    let code: serde_json::Value = http
                        .post(format!("{emu}/__emulator/login"))
                        .json(&json!({"appid": APPID, "user": format!("during-{k}-{i}")}))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let r = http
                        .post(format!("{base}/api/v1/auth/login"))
                        .json(&json!({"code": code["code"], "appid": APPID}))
                        .send()
                        .await;
                    r.map(|r| r.status().as_u16()).unwrap_or(0)
                };
                seen.push((started.elapsed(), status));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        })
    };
    let loads = [load(0), load(1)];
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The master dies; the sentinels promote the replica.
    let killed = started.elapsed();
    master_process.kill().await.unwrap();
    let promoted = loop {
        if named_master(sentinels[0]).await == Some(replica)
            && field(&info(replica).await, "role").as_deref() == Some("master")
        {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < killed + Duration::from_secs(30),
            "no promotion"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = Vec::new();
    for l in loads {
        seen.extend(l.await.unwrap());
    }

    let window_end = promoted + Duration::from_secs(2);
    let errors = seen.iter().filter(|(_, s)| *s != 200).count();
    eprintln!(
        "failover: killed at {killed:?}, promoted at {promoted:?}; {} requests, {errors} not 200",
        seen.len()
    );
    let after: Vec<_> = seen.iter().filter(|(t, _)| *t > window_end).collect();
    assert!(
        after.len() > 20,
        "load went on after the failover: {}",
        after.len()
    );
    let failed_after: Vec<_> = after.iter().filter(|(_, s)| *s != 200).collect();
    assert!(
        failed_after.is_empty(),
        "errors after the promotion + 2 s ({promoted:?}): {failed_after:?}"
    );
    let bad_inside: Vec<_> = seen
        .iter()
        .filter(|(_, s)| *s != 200 && *s != 503)
        .collect();
    assert!(
        bad_inside.is_empty(),
        "only 503 inside the window: {bad_inside:?}"
    );
    let early: Vec<_> = seen
        .iter()
        .filter(|(t, s)| *s != 200 && *t < killed)
        .collect();
    assert!(early.is_empty(), "errors before the kill: {early:?}");
    // The sessions made before the failover were replicated: they still work.
    for token in &before {
        assert_eq!(app.get("/api/v1/me", Some(token)).await.status, 200);
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wxlogin-sentinel-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
