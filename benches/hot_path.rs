//! The pieces on the request hot path, measured alone: decrypting WeChat's sample, the rawData
//! signature, reading a bearer token, and a session's (de)serialization. `cargo bench`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use secrecy::SecretString;
use wxlogin::domain::{Identity, Provider, Session, Token, User};
use wxlogin::jose;
use wxlogin::store::cache::Cache;
use wxlogin::store::keys::cached_user as cache_key;
use wxlogin::store::kv::Kv;
use wxlogin::store::seal::Sealer;
use wxlogin::wechat::crypto;

const KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
const IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
const DATA: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";
const RAW: &str = r#"{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}"#;

fn hot_path(c: &mut Criterion) {
    c.bench_function("decrypt WeChat's sample", |b| {
        b.iter(|| crypto::decrypt(black_box(KEY), black_box(IV), black_box(DATA)).unwrap())
    });
    c.bench_function("rawData signature check", |b| {
        b.iter(|| {
            crypto::signature_matches(
                black_box(RAW),
                black_box("HyVFkGl5F5OQWJZZaNzBBg=="),
                black_box("75e81ceda165f4ffa64f4068af58c64b8f54b88c"),
            )
        })
    });
    let token = Token::new().reveal();
    c.bench_function("bearer token parse", |b| {
        b.iter(|| Token::parse(black_box(&token)).unwrap())
    });
    let session = Session::wechat(
        "8d7f2c1e-3b4a-4c5d-9e6f-7a8b9c0d1e2f",
        "wx4f4bc4dec97d474b",
        "oGZUI0egBJY1zhBYw2KhdUfwVJJE",
        KEY.to_string(),
    );
    let bytes = session.encode();
    c.bench_function("session encode", |b| {
        b.iter(|| black_box(&session).encode())
    });
    c.bench_function("session decode", |b| {
        b.iter(|| Session::decode(black_box(&bytes)).unwrap())
    });
    println!("a session is {} bytes", bytes.len());

    // What a signed-in request reads beside its session: its user's cache entry, sealed.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let kv = Kv::memory("bench:");
    let sealer = Sealer::parse(&SecretString::from(
        "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ))
    .unwrap();
    let cache = Cache::new(kv.clone(), sealer);
    let user = User {
        id: "8d7f2c1e-3b4a-4c5d-9e6f-7a8b9c0d1e2f".into(),
        username: Some("band".into()),
        nickname: Some("Band".into()),
        avatar_url: Some("https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132".into()),
        phone_number: Some("+8613580006666".into()),
        pure_phone_number: Some("13580006666".into()),
        country_code: Some("86".into()),
        created_at: 1_700_000_000,
        identities: vec![Identity {
            provider: Provider::MiniProgram,
            appid: "wx4f4bc4dec97d474b".into(),
            openid: "oGZUI0egBJY1zhBYw2KhdUfwVJJE".into(),
            unionid: Some("ocMvos6NjeKLIBqg5Mr9QjxrP1FA".into()),
            binding: Some(123_456_789),
        }],
        sessions_not_before: None,
        disabled: false,
    };
    let key = cache_key("8d7f2c1e-3b4a-4c5d-9e6f-7a8b9c0d1e2f");
    runtime
        .block_on(cache.get_or_load(&key, || async { Ok(Some(user.clone())) }))
        .unwrap();
    let entry = runtime.block_on(kv.get(&key)).unwrap().unwrap();
    println!("a user's cache entry is {} bytes", entry.len());
    c.bench_function("user from its cache entry", |b| {
        b.iter(|| cache.open::<User>(&key, black_box(&entry)).unwrap())
    });

    // An access token: what a login adds (signing) and what a verifier pays (ES256 verify, the
    // p256 crate's own cost plus the JWS framing).
    let pair = jose::KeyPair::generate("bench".into()).unwrap();
    let claims = serde_json::json!({
        "iss": "https://login.example.com", "sub": "8d7f2c1e-3b4a-4c5d-9e6f-7a8b9c0d1e2f",
        "aud": "https://login.example.com", "exp": 1_900_000_000, "iat": 1_899_999_100,
        "jti": "0f8e7d6c5b4a39281706f5e4d3c2b1a0", "client_id": "wx4f4bc4dec97d474b",
        "sid": "q1w2e3r4t5y6u7i8o9p0aa", "openid": "oGZUI0egBJY1zhBYw2KhdUfwVJJE",
        "appid": "wx4f4bc4dec97d474b", "unionid": "ocMvos6NjeKLIBqg5Mr9QjxrP1FA",
    });
    c.bench_function("access token sign (ES256)", |b| {
        b.iter(|| pair.sign("at+jwt", black_box(&claims)))
    });
    let token = pair.sign("at+jwt", &claims);
    let keys = [pair.public()];
    // The curve alone, for comparison: ring's own verify of one signature over the same bytes.
    {
        use ring::signature::{EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
        let rng = ring::rand::SystemRandom::new();
        let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap();
        let (signed, _) = token.rsplit_once('.').unwrap();
        let signature = pair.sign(&rng, signed.as_bytes()).unwrap();
        let public = UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            pair.public_key().as_ref().to_vec(),
        );
        c.bench_function("ring ECDSA P-256 verify alone", |b| {
            b.iter(|| {
                public
                    .verify(black_box(signed.as_bytes()), signature.as_ref())
                    .unwrap()
            })
        });
    }
    c.bench_function("access token verify (ES256)", |b| {
        b.iter(|| jose::verify::<serde_json::Value>(black_box(&token), "at+jwt", &keys).unwrap())
    });
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
