//! `/api/v1/wechat/*`: WeChat open data.

use poem::web::Data;
use poem_openapi::{payload::Json, ApiResponse, OpenApi};

use super::errors::{error_set, Reply};
use super::model::{DecryptBody, DecryptRequest};
use super::{BearerAuth, Tag};
use crate::accounts::Accounts;
use crate::error::Error;

error_set!(DecryptErrors:
    InvalidRequest, DecryptFailed, WatermarkMismatch, SignatureMismatch, Unauthenticated,
    ServiceUnavailable
);

#[derive(ApiResponse)]
pub enum DecryptOk {
    /// The decrypted object and its watermark.
    #[oai(status = 200)]
    Ok(Json<DecryptBody>),
}

pub struct WechatApi;

#[OpenApi(prefix_path = "/api/v1/wechat", tag = "Tag::Wechat")]
impl WechatApi {
    /// Decrypt open data
    ///
    /// Any `encryptedData` of a mini program API (user info, WeRun, share info, phone):
    /// AES-128-CBC with the session's session_key. The watermark must name this session's appid;
    /// where `rawData` and `signature` are given, the signature must match. Within five minutes
    /// of a refresh, data made with the previous session_key still decrypts.
    #[oai(path = "/decrypt", method = "post", operation_id = "decrypt")]
    async fn decrypt(
        &self,
        accounts: Data<&Accounts>,
        body: Json<DecryptRequest>,
        auth: BearerAuth,
    ) -> Reply<DecryptOk, DecryptErrors> {
        let req = body.0;
        let signed = match (&req.raw_data, &req.signature) {
            (Some(raw), Some(sig)) => Some((raw.as_str(), sig.as_str())),
            (None, None) => None,
            _ => {
                return Err(
                    Error::invalid("Send `rawData` and `signature` together, or neither.").into(),
                )
            }
        };
        let open = accounts
            .decrypt(&auth.0, &req.encrypted_data, &req.iv, signed)
            .await?;
        Ok(DecryptOk::Ok(Json(DecryptBody {
            data: open.data.into(),
            watermark: open.watermark,
        })))
    }
}
