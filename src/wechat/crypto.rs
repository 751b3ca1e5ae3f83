//! Open data crypto of WeChat's mini programs: AES-128-CBC with PKCS#7 under the session_key,
//! and the `sha1(rawData + session_key)` signature. Written with the `aes`, `cbc` and `sha1`
//! crates; nothing here is home-made cryptography.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use base64::{engine::general_purpose::STANDARD, Engine};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

/// Why open data did not decrypt. The first two are the caller's malformed input; the last two
/// mean the key is not the one the data was made with.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("{0} is not valid base64")]
    Base64(&'static str),
    #[error("{0} has the wrong length")]
    Length(&'static str),
    #[error("bad padding")]
    Padding,
    #[error("plaintext is not a JSON object")]
    NotJson,
}

/// Decodes base64 as WeChat's clients send it. A form- or URL-encoded body turns `+` into a
/// space on the way (a classic cause of "invalid base64"), so spaces are read back as `+`.
pub fn decode_b64(field: &'static str, text: &str) -> Result<Vec<u8>, DecryptError> {
    let text = text.trim();
    let fixed;
    let text = if text.contains(' ') {
        fixed = text.replace(' ', "+");
        fixed.as_str()
    } else {
        text
    };
    STANDARD
        .decode(text)
        .map_err(|_| DecryptError::Base64(field))
}

/// Decodes a 16-byte key or iv given in base64.
pub fn decode_block(field: &'static str, text: &str) -> Result<[u8; 16], DecryptError> {
    decode_b64(field, text)?
        .try_into()
        .map_err(|_| DecryptError::Length(field))
}

/// Decrypts `encryptedData` with a session_key and iv (all base64) into its JSON object.
pub fn decrypt(
    session_key: &str,
    iv: &str,
    encrypted_data: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, DecryptError> {
    let key = decode_block("session_key", session_key)?;
    let iv = decode_block("iv", iv)?;
    let data = decode_b64("encryptedData", encrypted_data)?;
    decrypt_raw(&key, &iv, data)
}

/// Decrypts with a decoded key and iv; `data` is the decoded ciphertext.
pub fn decrypt_raw(
    key: &[u8; 16],
    iv: &[u8; 16],
    mut data: Vec<u8>,
) -> Result<serde_json::Map<String, serde_json::Value>, DecryptError> {
    if data.is_empty() || data.len() % 16 != 0 {
        return Err(DecryptError::Length("encryptedData"));
    }
    let plain = Aes128CbcDec::new(key.into(), iv.into())
        .decrypt_padded_mut::<Pkcs7>(&mut data)
        .map_err(|_| DecryptError::Padding)?;
    match serde_json::from_slice::<serde_json::Value>(plain) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(DecryptError::NotJson),
    }
}

/// Whether `signature` is the hex `sha1(rawData + session_key)`, compared in constant time.
pub fn signature_matches(raw_data: &str, session_key: &str, signature: &str) -> bool {
    let mut h = Sha1::new();
    h.update(raw_data.as_bytes());
    h.update(session_key.as_bytes());
    let expected = hex::encode(h.finalize());
    expected
        .as_bytes()
        .ct_eq(signature.trim().to_ascii_lowercase().as_bytes())
        .into()
}

/// WeChat's published WXBizDataCrypt sample (WECHAT.md §2): its session_key, iv and
/// encryptedData, for tests and the API's examples.
pub const SAMPLE_KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
pub const SAMPLE_IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
pub const SAMPLE_DATA: &str = "\
    CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC\
    +oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poO\
    FtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8\
    xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB\
    6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJd\
    NiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOy\
    uxINew==";

#[cfg(test)]
mod tests {
    use super::*;

    pub const SAMPLE_PLAIN: &str = concat!(
        r#"{"openId":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","nickName":"Band","gender":1,"#,
        r#""language":"zh_CN","city":"Guangzhou","province":"Guangdong","#,
        r#""country":"CN","#,
        r#""avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh"#,
        r#"8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0","#,
        r#""unionId":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA","#,
        r#""watermark":{"timestamp":1477314187,"appid":"wx4f4bc4dec97d474b"}}"#,
    );

    #[test]
    fn decrypts_wechats_published_sample_exactly() {
        let got = decrypt(SAMPLE_KEY, SAMPLE_IV, SAMPLE_DATA).unwrap();
        let want: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(SAMPLE_PLAIN).unwrap();
        assert_eq!(got, want);
        assert_eq!(got["watermark"]["appid"], "wx4f4bc4dec97d474b");
    }

    #[test]
    fn published_signature_vector() {
        let raw = concat!(
            r#"{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","#,
            r#""province":"Guangdong","country":"CN","#,
            r#""avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ"#,
            r#"1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}"#,
        );
        assert!(signature_matches(
            raw,
            "HyVFkGl5F5OQWJZZaNzBBg==",
            "75e81ceda165f4ffa64f4068af58c64b8f54b88c"
        ));
        assert!(!signature_matches(
            raw,
            "HyVFkGl5F5OQWJZZaNzBBg==",
            "75e81ceda165f4ffa64f4068af58c64b8f54b88d"
        ));
        assert!(!signature_matches(raw, "HyVFkGl5F5OQWJZZaNzBBg==", ""));
    }

    #[test]
    fn a_wrong_key_is_padding_or_not_json_never_a_panic() {
        let err = decrypt("HyVFkGl5F5OQWJZZaNzBBg==", SAMPLE_IV, SAMPLE_DATA).unwrap_err();
        assert!(
            matches!(err, DecryptError::Padding | DecryptError::NotJson),
            "{err:?}"
        );
    }

    #[test]
    fn malformed_input_is_named() {
        assert_eq!(
            decrypt(SAMPLE_KEY, "not base64!", SAMPLE_DATA),
            Err(DecryptError::Base64("iv"))
        );
        assert_eq!(
            decrypt(SAMPLE_KEY, "AAAA", SAMPLE_DATA),
            Err(DecryptError::Length("iv"))
        );
        assert_eq!(
            decrypt("AAAA", SAMPLE_IV, SAMPLE_DATA),
            Err(DecryptError::Length("session_key"))
        );
        assert_eq!(
            decrypt(SAMPLE_KEY, SAMPLE_IV, "AAAA"),
            Err(DecryptError::Length("encryptedData"))
        );
        assert_eq!(
            decrypt(SAMPLE_KEY, SAMPLE_IV, ""),
            Err(DecryptError::Length("encryptedData"))
        );
    }

    #[test]
    fn plus_signs_mangled_into_spaces_still_decode() {
        let mangled = SAMPLE_DATA.replace('+', " ");
        assert!(decrypt(SAMPLE_KEY, SAMPLE_IV, &mangled).is_ok());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever a client sends, decryption answers with a value or an error, never a panic.
        #[test]
        fn decrypt_never_panics(key in ".{0,40}", iv in ".{0,40}", data in ".{0,200}") {
            let _ = decrypt(&key, &iv, &data);
        }

        /// Base64 of any length, valid or not, decrypts or fails cleanly.
        #[test]
        fn decrypt_of_any_bytes_never_panics(
            key in any::<[u8; 16]>(),
            iv in any::<[u8; 16]>(),
            data in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let _ = decrypt_raw(&key, &iv, data);
        }

        #[test]
        fn signature_check_never_panics(raw in ".{0,100}", key in ".{0,30}", sig in ".{0,50}") {
            let _ = signature_matches(&raw, &key, &sig);
        }
    }
}
