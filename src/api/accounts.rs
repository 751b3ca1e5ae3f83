//! `/api/v1/accounts`: business accounts with a username and password.

use poem::web::Data;
use poem_openapi::{payload::Json, ApiResponse, OpenApi};

use super::errors::{error_set, Reply};
use super::model::{CredentialsRequest, UserBody};
use super::Tag;
use crate::accounts::Accounts;
use crate::domain::Credentials;

error_set!(RegisterErrors: InvalidRequest, Conflict, ServiceUnavailable, RateLimited);

#[derive(ApiResponse)]
pub enum Created {
    /// The account; sign in with `/api/v1/auth/password`, or bind a WeChat user to it.
    #[oai(status = 201)]
    Created(Json<UserBody>),
}

pub struct AccountsApi;

#[OpenApi(prefix_path = "/api/v1/accounts", tag = "Tag::Accounts")]
impl AccountsApi {
    /// Create an account with a username and password
    ///
    /// The username is unique without regard to case; the password is stored only as an
    /// argon2id hash.
    #[oai(path = "/", method = "post", operation_id = "createAccount")]
    async fn create(
        &self,
        accounts: Data<&Accounts>,
        body: Json<CredentialsRequest>,
    ) -> Reply<Created, RegisterErrors> {
        let credentials = Credentials::from(body.0);
        let user = accounts.register(credentials).await?;
        Ok(Created::Created(Json(user.into())))
    }
}
