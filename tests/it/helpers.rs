//! `spawn_app()`: the server and a fresh emulator on port 0, each test with its own database
//! (a new PostgreSQL database or SQLite file) and its own Redis key prefix, so tests are
//! independent of each other and of order. Redis and PostgreSQL are real: `scripts/test.sh`
//! starts them and sets `TEST_REDIS_URL` and `TEST_POSTGRES_URL`.

use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex};

use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::Connection;
use url::Url;
use wxlogin::{app, config, emulator};

pub const APPID: &str = "wx1234567890abcdef";
pub const SECRET: &str = "0123456789abcdef0123456789abcdef";
/// The issuer of access tokens in tests.
pub const ISSUER: &str = "https://login.example.com";
/// The appid of WeChat's published open data sample.
pub const SAMPLE_APPID: &str = "wx4f4bc4dec97d474b";
pub const SAMPLE_KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
/// Keys that seal what Redis holds (32 bytes each, base64).
pub const SEALING_KEY_1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
pub const SEALING_KEY_2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

/// Everything this test process logged.
static LOGS: LazyLock<Arc<Mutex<Vec<u8>>>> = LazyLock::new(Default::default);

#[derive(Clone)]
struct Sink;
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Db {
    Postgres,
    Sqlite,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kv {
    Redis,
    /// The three-node Redis Cluster that scripts/test.sh starts.
    Cluster,
    Memory,
}

pub struct TestApp {
    pub base: String,
    pub emu: String,
    pub http: reqwest::Client,
    pub config: config::Config,
    _server: tokio::task::JoinHandle<()>,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests with scripts/test.sh, which starts Redis and PostgreSQL"))
}

/// A fresh PostgreSQL database, made from the admin URL.
async fn postgres_database() -> String {
    sqlx::any::install_default_drivers();
    let admin = env("TEST_POSTGRES_URL");
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("PostgreSQL answers");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let mut url = Url::parse(&admin).unwrap();
    url.set_path(&name);
    url.to_string()
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Db::Postgres, Kv::Redis, |_| {}).await
}

pub async fn spawn_with(db: Db, kv: Kv, tweak: impl FnOnce(&mut config::Config)) -> TestApp {
    wxlogin::telemetry::init(config::LogFormat::Json, || Sink);
    let emu = emulator::Emulator::new();
    emu.add_app(APPID, SECRET, true);
    emu.add_app(SAMPLE_APPID, "sample-secret-0000", true);
    emu.add_app("wxotherapp0000001", "other-secret-0001", true);
    let (acceptor, emu_port) = app::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::spawn(app::serve(
        acceptor,
        emu.routes(),
        Default::default(),
        std::future::pending(),
    ));
    let emu_url = format!("http://127.0.0.1:{emu_port}");

    let mut config = config::Config::embedded("127.0.0.1:0".parse().unwrap());
    // Every node of a deployment has one issuer: the URL the load balancer answers at.
    config.tokens.issuer = ISSUER.into();
    config.tokens.audience = ISSUER.into();
    config.storage.database_url = SecretString::from(match db {
        Db::Postgres => postgres_database().await,
        Db::Sqlite => {
            let path = std::env::temp_dir()
                .join(format!("wxlogin-test-{}.db", uuid::Uuid::new_v4().simple()));
            format!("sqlite://{}?mode=rwc", path.display())
        }
    });
    if kv != Kv::Memory {
        config.storage.sealing_keys = Some(SecretString::from(format!("1:{SEALING_KEY_1}")));
        let url = if kv == Kv::Cluster {
            env("TEST_REDIS_CLUSTER_URLS")
        } else {
            env("TEST_REDIS_URL")
        };
        config.storage.redis_url = Some(SecretString::from(url));
        config.storage.redis_prefix = format!("t:{}:", uuid::Uuid::new_v4().simple());
    }
    config.wechat.api_base = Url::parse(&emu_url).unwrap();
    config.wechat.timeout = std::time::Duration::from_millis(800);
    config.sms = Some(config::Sms::emulator(Url::parse(&emu_url).unwrap()));
    config.apps.miniprograms = vec![
        config::AppCredentials {
            appid: APPID.into(),
            secret: SECRET.into(),
        },
        config::AppCredentials {
            appid: SAMPLE_APPID.into(),
            secret: "sample-secret-0000".into(),
        },
    ];
    tweak(&mut config);
    start(config, emu_url).await
}

/// Starts a server with these settings (a second node, or a restart, over the same stores).
pub async fn start(config: config::Config, emu_url: String) -> TestApp {
    let server = app::App::build(&config).await.expect("server starts");
    let base = format!("http://127.0.0.1:{}", server.port());
    let handle = tokio::spawn(async move {
        let _ = server.run(std::future::pending()).await;
    });
    TestApp {
        base,
        emu: emu_url,
        // Redirects are answers to check, not to follow.
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        config,
        _server: handle,
    }
}

/// A response as the tests read it: status, headers, text and the JSON body (Null where none).
pub async fn read_reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
        headers,
    }
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl TestApp {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.call_with(method, path, token, body, &[]).await
    }

    /// A call with headers of its own.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method.parse().unwrap(), url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let reply = read_reply(req.send().await.expect("server answers")).await;
        RESPONSES.lock().unwrap().push(reply.text.clone());
        reply
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call("POST", path, token, Some(body)).await
    }

    /// A login attempt of a caller: the body, with its `Idempotency-Key`.
    pub async fn login_attempt(&self, body: &Value, idempotency_key: &str) -> Reply {
        let key = [("idempotency-key", idempotency_key)];
        self.call_with("POST", "/api/v1/auth/login", None, Some(body.clone()), &key)
            .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call("GET", path, token, None).await
    }

    /// Calls the emulator's control API.
    pub async fn emu(&self, method: &str, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .request(
                method.parse().unwrap(),
                format!("{}/__emulator{}", self.emu, path),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "emulator {path}: {}",
            resp.status()
        );
        resp.json().await.unwrap_or(Value::Null)
    }

    /// `wx.login` for a test user of an app.
    pub async fn wx_login_in(&self, appid: &str, user: &str) -> String {
        self.emu("POST", "/login", json!({"appid": appid, "user": user}))
            .await["code"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn wx_login(&self, user: &str) -> String {
        self.wx_login_in(APPID, user).await
    }

    /// `wx.login` for a test user whose session_key stays as it was (codes drawn in a burst,
    /// all good at once).
    pub async fn wx_login_same_key(&self, user: &str) -> String {
        self.emu(
            "POST",
            "/login",
            json!({"appid": APPID, "user": user, "rotate": false}),
        )
        .await["code"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The login calls of these codes, all at once: the answers, in the codes' order.
    pub async fn login_all<'a>(&self, codes: impl IntoIterator<Item = &'a String>) -> Vec<Reply> {
        futures_util::future::join_all(codes.into_iter().map(|code| {
            self.post(
                "/api/v1/auth/login",
                None,
                json!({"code": code, "appid": APPID}),
            )
        }))
        .await
    }

    /// `wx.login` for a test user, then the login call with that code: the answer, as it is.
    pub async fn try_login(&self, user: &str) -> Reply {
        let code = self.wx_login(user).await;
        self.post(
            "/api/v1/auth/login",
            None,
            json!({"code": code, "appid": APPID}),
        )
        .await
    }

    /// Signs a test user in and returns the whole answer.
    pub async fn login(&self, user: &str) -> Value {
        let r = self.try_login(user).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    pub async fn token(&self, user: &str) -> String {
        self.login(user).await["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn fault(&self, fault: Value) {
        self.emu("POST", "/faults", fault).await;
    }

    /// How often the emulator saw a WeChat path.
    pub async fn calls(&self, path: &str) -> u64 {
        self.emu("GET", "/calls", Value::Null).await[path]
            .as_u64()
            .unwrap_or(0)
    }

    /// The emulator's view of a user in an app: openid, session_key.
    pub async fn emu_user(&self, user: &str, appid: &str) -> Value {
        let resp = self
            .http
            .get(format!(
                "{}/__emulator/users/{user}?appid={appid}",
                self.emu
            ))
            .send()
            .await
            .unwrap();
        resp.json().await.unwrap()
    }
}

/// Every response body the tests saw, for the secret scan.
pub static RESPONSES: LazyLock<Mutex<Vec<String>>> = LazyLock::new(Default::default);

/// Asserts the contract's error body.
pub fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["code"], code, "{}", r.text);
    assert!(
        r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        r.text
    );
    let rid = r
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id");
    assert_eq!(r.body["requestId"], rid, "{}", r.text);
}

/// Sends wrong passwords for a username, spread over the nodes in turn.
pub async fn wrong_passwords(nodes: &[&TestApp], username: &str, times: usize) {
    for node in nodes.iter().cycle().take(times) {
        let body = serde_json::json!({"username": username, "password": "wrong password"});
        let r = node.post("/api/v1/auth/password", None, body).await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port` (four seconds at most).
pub async fn until_port(port: u16) -> bool {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}
