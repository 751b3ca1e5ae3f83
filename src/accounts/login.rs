//! Mini program login: a `wx.login` code becomes a session. The same code sent again within a
//! minute by the same caller (a network retry, with the same `Idempotency-Key`) answers what
//! its first call answered, without a second call to WeChat, which would say 40163. Anyone
//! else who sends the code gets WeChat's 40163 and no token.

use std::time::Duration;

use serde_json::json;

use super::identity::Resolution;
use super::{Accounts, SignedIn};
use crate::config::AppCredentials;
use crate::domain::{
    AppId, Credentials, IdempotencyKey, Identity, Provider, Session, Token, WxCode,
};
use crate::error::{Code, Error, Result, CODE_USED};
use crate::store::replays::{DoneAnswer, Found, Replay, ReplayKey, Replays};
use crate::wechat::{errcode, WechatError};

/// How long a retry waits for the first call of the same code to finish.
const REPLAY_WAIT: Duration = Duration::from_secs(15);

/// What login takes.
pub struct LoginInput {
    pub code: WxCode,
    pub appid: Option<AppId>,
    /// Binds a new WeChat user to this account.
    pub credentials: Option<Credentials>,
    /// The caller's `Idempotency-Key`: one per login attempt, the same on its retries.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// WeChat's answer to a code used before, as a code sent by someone else gets it.
fn code_been_used() -> Error {
    Error::from(WechatError::Api(crate::error::WechatAnswer {
        errcode: errcode::CODE_BEEN_USED,
        errmsg: "code been used".into(),
    }))
}

impl Accounts {
    /// Signs a mini program user in with a `wx.login` code. The same code sent again within a
    /// minute answers what its first call answered, without a second call to WeChat.
    pub async fn login(&self, input: LoginInput) -> Result<SignedIn> {
        let app = self.miniprogram(input.appid.as_deref())?.clone();
        let replays = &self.inner.stores.replays;
        let caller = input.idempotency_key.as_ref().map(|k| k.as_str());
        let key = Replays::key(&app.appid, &input.code, caller);
        if !replays.claim(&key).await? {
            return self.replay(&key).await;
        }
        let outcome = self
            .first_login(&app, &input.code, input.credentials, &key)
            .await;
        if let Err(e) = &outcome {
            tracing::info!(
                appid = %app.appid,
                event = "sign_in_failed",
                reason = %e.code,
                "mini program sign-in failed"
            );
            let detail = json!({"appid": app.appid, "reason": e.code.as_str()});
            self.audit("sign_in_failed", None, detail);
        }
        let record = match &outcome {
            // Written with the session, in its round trip.
            Ok(_) => return outcome,
            // No answer from WeChat or our storage: the code may still be good, let a retry try.
            Err(e) if matches!(e.code, Code::WechatUnavailable | Code::ServiceUnavailable) => None,
            // A ticket is single-use: a retry of the code must not hand it out again.
            Err(e) if e.code == Code::BindingRequired => Some(Replay::Failed {
                code: Code::WechatCodeInvalid.as_str().to_string(),
                message: CODE_USED.to_string(),
                wechat: None,
            }),
            Err(e) => Some(Replay::Failed {
                code: e.code.as_str().to_string(),
                message: e.message.clone(),
                wechat: e.wechat.clone(),
            }),
        };
        let stored = match record {
            Some(r) => replays.record(&key, r).await,
            None => replays.release(&key).await,
        };
        if let Err(e) = stored {
            tracing::warn!(error = %e, "could not record the login code's answer for retries");
        }
        outcome
    }

    /// The answer of a code's first call, to a retry of it.
    async fn replay(&self, key: &ReplayKey) -> Result<SignedIn> {
        let deadline = tokio::time::Instant::now() + REPLAY_WAIT;
        loop {
            let replay = match self.inner.stores.replays.read(key).await? {
                Found::Mine(replay) => Some(replay),
                Found::Another => return Err(code_been_used()),
                Found::Nothing => None,
            };
            match replay {
                Some(Replay::Pending) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Some(Replay::Done {
                    token,
                    user_id,
                    is_new_user,
                }) => {
                    let token = Token::parse(&token).ok_or_else(Error::unauthenticated)?;
                    let Some(read) = self.inner.stores.sessions.get(&token.id()).await? else {
                        // Logged out since: the code is spent, as WeChat would say.
                        return Err(code_been_used());
                    };
                    let user = self.user(&user_id).await?;
                    let access_token = self
                        .issue_access_token(&token.id(), &read.session, &user)
                        .await?;
                    return Ok(SignedIn {
                        token,
                        expires_in: self.inner.stores.sessions.expires_in(&read.session),
                        is_new_user,
                        user,
                        access_token,
                    });
                }
                Some(Replay::Failed {
                    code,
                    message,
                    wechat,
                }) => {
                    let code = Code::ALL
                        .into_iter()
                        .find(|c| c.as_str() == code)
                        .unwrap_or(Code::WechatError);
                    let mut e = Error::new(code, message);
                    e.wechat = wechat;
                    return Err(e);
                }
                // The first call is still running past the wait, or failed without an answer.
                Some(Replay::Pending) | None => {
                    return Err(Error::new(
                        Code::WechatUnavailable,
                        "This code is being used by another request that has not finished. \
                         Call wx.login for a new code and try again.",
                    ))
                }
            }
        }
    }

    /// A login, once the code is known to be new; the answer is also written under `key` with
    /// the session, for a retry of the same code.
    async fn first_login(
        &self,
        app: &AppCredentials,
        code: &WxCode,
        credentials: Option<Credentials>,
        key: &ReplayKey,
    ) -> Result<SignedIn> {
        let wx = self
            .inner
            .wechat
            .code2session(&app.appid, &app.secret, code)
            .await?;
        let identity = Identity::new(Provider::MiniProgram, &app.appid, &wx.openid, wx.unionid);
        let resolved = match self.resolve_identity(&identity, credentials).await? {
            Resolution::User(resolved) => resolved,
            Resolution::NeedsBinding => {
                return Err(self.binding_required(identity, wx.session_key).await?)
            }
        };
        let mut session =
            Session::wechat(&resolved.user_id, &app.appid, &wx.openid, wx.session_key);
        session.unionid_known = resolved.unionid_known;
        let user = match resolved.user {
            Some(user) => user,
            None => self.user(&resolved.user_id).await?,
        };
        let answer = DoneAnswer {
            key: key.clone(),
            user_id: resolved.user_id,
            is_new_user: resolved.is_new_user,
        };
        let fill = resolved.fill;
        self.start_session(user, resolved.is_new_user, session, Some(answer), fill)
            .await
    }
}
