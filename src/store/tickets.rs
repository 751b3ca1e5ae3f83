//! Single-use tickets and the short-lived records behind them: bind tickets (a WeChat login
//! waiting for its account), web sign-in states and tickets, and the web tokens WeChat gives
//! an identity. Each is taken at most once (GETDEL), so of two concurrent uses one wins.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::kv::IndexTtl;
use super::{keys, kv::Kv, seal::Sealer, StoreError};
use crate::domain::WebProvider;

type Result<T> = std::result::Result<T, StoreError>;

/// What a bind ticket stands for: a WeChat login waiting for its account.
#[derive(Serialize, Deserialize)]
pub struct PendingBinding {
    pub appid: String,
    pub openid: String,
    pub unionid: Option<String>,
    pub session_key: String,
}

/// What a bind ticket stands for after an SMS sign-in of a phone no account has (under
/// `require_binding`): the verified phone, waiting for its account.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingSmsBinding {
    /// E.164.
    pub phone_number: String,
}

/// What a `state` stands for while the browser is at WeChat.
#[derive(Serialize, Deserialize)]
pub struct PendingWeb {
    pub provider: WebProvider,
    pub redirect_uri: String,
    pub scope: String,
    /// The page's PKCE challenge: only the page that holds its verifier redeems the ticket.
    pub code_challenge: String,
}

/// What a web sign-in's ticket stands for.
#[derive(Serialize, Deserialize)]
pub struct WebTicket {
    /// Empty where the sign-in waits for a phone (`phone_needed`).
    pub user_id: String,
    pub appid: String,
    pub openid: String,
    pub is_new_user: bool,
    /// The challenge of the state it came from.
    pub code_challenge: String,
    /// Under `WXLOGIN_WEB_REQUIRE_PHONE`: the web identity of a person with no verified phone,
    /// who signs in only once a phone is bound.
    #[serde(default)]
    pub phone_needed: Option<PendingPhone>,
}

/// A web sign-in waiting for a verified phone (behind a bind ticket good only at
/// `auth/bind-phone`).
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingPhone {
    pub provider: WebProvider,
    pub appid: String,
    pub openid: String,
    pub unionid: Option<String>,
    /// The user the identity belongs to already (one with no verified phone); None: nobody
    /// yet, and nobody is made before the phone is verified.
    pub user_id: Option<String>,
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
}

/// WeChat's web tokens of an identity, kept server-side.
#[derive(Serialize, Deserialize)]
pub struct WebTokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// The tickets, on the shared key-value store.
#[derive(Clone)]
pub struct Tickets {
    kv: Kv,
    sealer: Sealer,
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("a record always serializes")
}

/// A record of bytes read back; bytes that do not parse are no record.
fn parse<T: DeserializeOwned>(bytes: Option<Vec<u8>>) -> Option<T> {
    serde_json::from_slice(&bytes?).ok()
}

impl Tickets {
    pub fn new(kv: Kv, sealer: Sealer) -> Tickets {
        Tickets { kv, sealer }
    }

    fn open(&self, key: &str, bytes: Option<Vec<u8>>) -> Option<Vec<u8>> {
        bytes.and_then(|b| self.sealer.open(key, &b))
    }

    /// Keeps a login waiting for its account under `ticket` (sealed: it holds a session_key).
    pub async fn put_binding(&self, ticket: &str, pending: &PendingBinding) -> Result<()> {
        let key = keys::bind_ticket(ticket);
        let sealed = self.sealer.seal(&key, &json(pending));
        self.kv.set(&key, &sealed, keys::BIND_TICKET).await
    }

    /// The login behind a bind ticket, leaving it in place.
    pub async fn peek_binding(&self, ticket: &str) -> Result<Option<PendingBinding>> {
        let key = keys::bind_ticket(ticket);
        Ok(parse(self.open(&key, self.kv.get(&key).await?)))
    }

    /// Takes a bind ticket: the one caller that gets `Some` may use it.
    pub async fn take_binding(&self, ticket: &str) -> Result<Option<PendingBinding>> {
        let key = keys::bind_ticket(ticket);
        Ok(parse(self.open(&key, self.kv.take(&key).await?)))
    }

    /// Keeps a verified phone waiting for its account under a bind ticket (sealed).
    pub async fn put_sms_binding(&self, ticket: &str, pending: &PendingSmsBinding) -> Result<()> {
        let key = keys::bind_ticket(ticket);
        let sealed = self.sealer.seal(&key, &json(pending));
        self.kv.set(&key, &sealed, keys::BIND_TICKET).await
    }

    /// The phone behind a bind ticket, leaving it in place (None for a WeChat login's).
    pub async fn peek_sms_binding(&self, ticket: &str) -> Result<Option<PendingSmsBinding>> {
        let key = keys::bind_ticket(ticket);
        Ok(parse(self.open(&key, self.kv.get(&key).await?)))
    }

    /// Takes a bind ticket of a phone.
    pub async fn take_sms_binding(&self, ticket: &str) -> Result<Option<PendingSmsBinding>> {
        let key = keys::bind_ticket(ticket);
        Ok(parse(self.open(&key, self.kv.take(&key).await?)))
    }

    /// Keeps a web sign-in waiting for its phone under `ticket` (sealed).
    pub async fn put_phone_binding(&self, ticket: &str, pending: &PendingPhone) -> Result<()> {
        let key = keys::phone_ticket(ticket);
        let sealed = self.sealer.seal(&key, &json(pending));
        self.kv.set(&key, &sealed, keys::BIND_TICKET).await
    }

    /// The sign-in behind a phone's bind ticket, leaving it in place.
    pub async fn peek_phone_binding(&self, ticket: &str) -> Result<Option<PendingPhone>> {
        let key = keys::phone_ticket(ticket);
        Ok(parse(self.open(&key, self.kv.get(&key).await?)))
    }

    /// Takes a phone's bind ticket: the one caller that gets `Some` may use it.
    pub async fn take_phone_binding(&self, ticket: &str) -> Result<Option<PendingPhone>> {
        let key = keys::phone_ticket(ticket);
        Ok(parse(self.open(&key, self.kv.take(&key).await?)))
    }

    /// Keeps a web sign-in's `state` while the browser is at WeChat (sealed: whoever could
    /// write one could choose where a sign-in returns).
    pub async fn put_web_state(&self, state: &str, pending: &PendingWeb) -> Result<()> {
        let key = keys::web_state(state);
        let sealed = self.sealer.seal(&key, &json(pending));
        self.kv.set(&key, &sealed, keys::WEB_STATE).await
    }

    /// Takes a `state`: WeChat's callback uses it once.
    pub async fn take_web_state(&self, state: &str) -> Result<Option<PendingWeb>> {
        let key = keys::web_state(state);
        Ok(parse(self.open(&key, self.kv.take(&key).await?)))
    }

    /// Keeps a web sign-in's ticket for the page to redeem (sealed: whoever could write one
    /// could mint a session).
    pub async fn put_web_ticket(&self, ticket: &str, record: &WebTicket) -> Result<()> {
        let key = keys::web_ticket(ticket);
        let sealed = self.sealer.seal(&key, &json(record));
        let entry = [(key.as_str(), sealed.as_slice(), keys::WEB_TICKET)];
        if record.user_id.is_empty() {
            return self.kv.set_many(&entry).await;
        }
        // Listed under its user, whose deletion deletes it.
        let index = keys::user_sessions(&record.user_id);
        self.kv
            .set_many_and_add(&entry, &index, IndexTtl::IfNew(keys::WEB_TICKET), None)
            .await
    }

    /// Takes a web sign-in's ticket.
    pub async fn take_web_ticket(&self, ticket: &str) -> Result<Option<WebTicket>> {
        let key = keys::web_ticket(ticket);
        Ok(parse(self.open(&key, self.kv.take(&key).await?)))
    }

    /// Forgets WeChat's web tokens of an identity.
    pub async fn forget_web_tokens(&self, appid: &str, openid: &str) -> Result<()> {
        self.kv
            .del(&keys::web_tokens(appid, openid))
            .await
            .map(drop)
    }

    /// Keeps WeChat's web tokens of an identity (sealed).
    pub async fn put_web_tokens(
        &self,
        appid: &str,
        openid: &str,
        tokens: &WebTokens,
    ) -> Result<()> {
        let key = keys::web_tokens(appid, openid);
        let sealed = self.sealer.seal(&key, &json(tokens));
        self.kv.set(&key, &sealed, keys::WEB_TOKENS).await
    }
}
