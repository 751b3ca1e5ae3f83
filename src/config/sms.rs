//! The SMS provider that sends sign-in and binding codes (`WXLOGIN_SMS_*`).

use std::fmt;

use clap::Args;
use secrecy::SecretString;
use url::Url;

use super::{groups::invalid, secret, ConfigError};

const DEFAULT_TENCENT_ENDPOINT: &str = "https://sms.tencentcloudapi.com";
const DEFAULT_ALIYUN_ENDPOINT: &str = "https://dysmsapi.aliyuncs.com";
const DEFAULT_REGION: &str = "ap-guangzhou";

/// What the emulator's SMS side takes by default: its own key pair and names.
pub const EMULATOR_SECRET_ID: &str = "AKIDwxloginEmulator0000000000000000";
pub const EMULATOR_SECRET_KEY: &str = "wxlogin-emulator-sms-secret-key-0001";
pub const EMULATOR_SDK_APP_ID: &str = "1400000001";
pub const EMULATOR_SIGN_NAME: &str = "wxlogin";
pub const EMULATOR_TEMPLATE_ID: &str = "100001";
/// The emulator's Alibaba Cloud side: its AccessKey pair and template code.
pub const EMULATOR_ACCESS_KEY_ID: &str = "LTAIwxloginEmulator0001";
pub const EMULATOR_ACCESS_KEY_SECRET: &str = "wxlogin-emulator-aliyun-secret-0001";
pub const EMULATOR_TEMPLATE_CODE: &str = "SMS_100001";

#[derive(Args, Clone, Debug)]
pub struct SmsArgs {
    /// Who sends SMS codes: `tencent`, `aliyun`, `emulator` (the WeChat emulator's SMS side)
    /// or `log` (development only). Unset: the SMS routes answer 404.
    #[arg(long, env = "WXLOGIN_SMS_PROVIDER")]
    pub sms_provider: Option<String>,

    /// Tencent Cloud: the SecretId.
    #[arg(long, env = "WXLOGIN_SMS_SECRET_ID")]
    pub sms_secret_id: Option<String>,

    /// Tencent Cloud: the SecretKey.
    #[arg(long, env = "WXLOGIN_SMS_SECRET_KEY", value_parser = secret, hide_env_values = true)]
    pub sms_secret_key: Option<SecretString>,

    /// Tencent Cloud: the SMS application's SdkAppId.
    #[arg(long, env = "WXLOGIN_SMS_SDK_APP_ID")]
    pub sms_sdk_app_id: Option<String>,

    /// The approved signature (SignName).
    #[arg(long, env = "WXLOGIN_SMS_SIGN_NAME")]
    pub sms_sign_name: Option<String>,

    /// The approved template, whose one parameter is the code (Alibaba Cloud: its
    /// TemplateCode, whose variable is `code`).
    #[arg(long, env = "WXLOGIN_SMS_TEMPLATE_ID")]
    pub sms_template_id: Option<String>,

    /// Tencent Cloud: the region (default `ap-guangzhou`).
    #[arg(long, env = "WXLOGIN_SMS_REGION")]
    pub sms_region: Option<String>,

    /// Alibaba Cloud: the AccessKey ID.
    #[arg(long, env = "WXLOGIN_SMS_ACCESS_KEY_ID")]
    pub sms_access_key_id: Option<String>,

    /// Alibaba Cloud: the AccessKey secret.
    #[arg(
        long,
        env = "WXLOGIN_SMS_ACCESS_KEY_SECRET",
        value_parser = secret,
        hide_env_values = true
    )]
    pub sms_access_key_secret: Option<SecretString>,

    /// The provider's endpoint (for `emulator`: the emulator, by default WeChat's API base).
    #[arg(long, env = "WXLOGIN_SMS_ENDPOINT")]
    pub sms_endpoint: Option<Url>,
}

/// Which provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsProviderKind {
    Tencent,
    Aliyun,
    Emulator,
    Log,
}

/// Alibaba Cloud SMS's settings (also the emulator's side of it).
#[derive(Clone)]
pub struct AliyunSettings {
    pub endpoint: Url,
    pub access_key_id: String,
    pub access_key_secret: SecretString,
    pub sign_name: String,
    pub template_code: String,
}

impl fmt::Debug for AliyunSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AliyunSettings")
            .field("endpoint", &self.endpoint.as_str())
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Tencent Cloud SMS's settings (also the emulator's, which speaks its protocol).
#[derive(Clone)]
pub struct TencentSettings {
    pub endpoint: Url,
    pub secret_id: String,
    pub secret_key: SecretString,
    pub sdk_app_id: String,
    pub sign_name: String,
    pub template_id: String,
    pub region: String,
}

impl fmt::Debug for TencentSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TencentSettings")
            .field("endpoint", &self.endpoint.as_str())
            .field("secret_id", &self.secret_id)
            .field("sdk_app_id", &self.sdk_app_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The SMS provider, checked.
#[derive(Clone, Debug)]
pub struct Sms {
    pub kind: SmsProviderKind,
    /// For `tencent` and `emulator`.
    pub tencent: Option<TencentSettings>,
    /// For `aliyun`.
    pub aliyun: Option<AliyunSettings>,
}

impl Sms {
    /// The emulator's SMS side at `endpoint`, with its own key pair and names (what `wxlogin
    /// demo` and the tests use).
    pub fn emulator(endpoint: Url) -> Sms {
        Sms {
            kind: SmsProviderKind::Emulator,
            tencent: Some(TencentSettings {
                endpoint,
                secret_id: EMULATOR_SECRET_ID.into(),
                secret_key: EMULATOR_SECRET_KEY.into(),
                sdk_app_id: EMULATOR_SDK_APP_ID.into(),
                sign_name: EMULATOR_SIGN_NAME.into(),
                template_id: EMULATOR_TEMPLATE_ID.into(),
                region: DEFAULT_REGION.into(),
            }),
            aliyun: None,
        }
    }

    /// The emulator's Alibaba Cloud side at `endpoint`, with its own key pair.
    pub fn emulator_aliyun(endpoint: Url) -> Sms {
        Sms {
            kind: SmsProviderKind::Aliyun,
            tencent: None,
            aliyun: Some(AliyunSettings {
                endpoint,
                access_key_id: EMULATOR_ACCESS_KEY_ID.into(),
                access_key_secret: EMULATOR_ACCESS_KEY_SECRET.into(),
                sign_name: EMULATOR_SIGN_NAME.into(),
                template_code: EMULATOR_TEMPLATE_CODE.into(),
            }),
        }
    }
}

impl SmsArgs {
    /// The provider, where one is set; `wechat_api_base` is where the emulator is, and
    /// `public_https` refuses `log` (codes in a log are for a developer's machine).
    pub fn resolve(
        self,
        wechat_api_base: &Url,
        public_https: bool,
    ) -> Result<Option<Sms>, ConfigError> {
        let Some(name) = self.sms_provider.filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let need = |v: Option<String>, var: &str| {
            v.filter(|v| !v.is_empty())
                .ok_or_else(|| invalid(format!("WXLOGIN_SMS_PROVIDER={name} needs {var}")))
        };
        match name.as_str() {
            "log" if public_https => {
                tracing::warn!(
                    "WXLOGIN_SMS_PROVIDER=log is refused where WXLOGIN_PUBLIC_URL is https: it \
                     writes codes to the log; SMS sign-in is off"
                );
                Ok(None)
            }
            "log" => Ok(Some(Sms {
                kind: SmsProviderKind::Log,
                tencent: None,
                aliyun: None,
            })),
            "emulator" => Ok(Some(Sms {
                kind: SmsProviderKind::Emulator,
                tencent: Some(TencentSettings {
                    endpoint: self.sms_endpoint.unwrap_or_else(|| wechat_api_base.clone()),
                    secret_id: self.sms_secret_id.unwrap_or(EMULATOR_SECRET_ID.into()),
                    secret_key: self
                        .sms_secret_key
                        .unwrap_or_else(|| EMULATOR_SECRET_KEY.into()),
                    sdk_app_id: self.sms_sdk_app_id.unwrap_or(EMULATOR_SDK_APP_ID.into()),
                    sign_name: self.sms_sign_name.unwrap_or(EMULATOR_SIGN_NAME.into()),
                    template_id: self.sms_template_id.unwrap_or(EMULATOR_TEMPLATE_ID.into()),
                    region: self.sms_region.unwrap_or(DEFAULT_REGION.into()),
                }),
                aliyun: None,
            })),
            "tencent" => Ok(Some(Sms {
                kind: SmsProviderKind::Tencent,
                tencent: Some(TencentSettings {
                    endpoint: self
                        .sms_endpoint
                        .unwrap_or_else(|| Url::parse(DEFAULT_TENCENT_ENDPOINT).expect("a URL")),
                    secret_id: need(self.sms_secret_id, "WXLOGIN_SMS_SECRET_ID")?,
                    secret_key: self.sms_secret_key.ok_or_else(|| {
                        invalid("WXLOGIN_SMS_PROVIDER=tencent needs WXLOGIN_SMS_SECRET_KEY")
                    })?,
                    sdk_app_id: need(self.sms_sdk_app_id, "WXLOGIN_SMS_SDK_APP_ID")?,
                    sign_name: need(self.sms_sign_name, "WXLOGIN_SMS_SIGN_NAME")?,
                    template_id: need(self.sms_template_id, "WXLOGIN_SMS_TEMPLATE_ID")?,
                    region: self.sms_region.unwrap_or(DEFAULT_REGION.into()),
                }),
                aliyun: None,
            })),
            "aliyun" => Ok(Some(Sms {
                kind: SmsProviderKind::Aliyun,
                tencent: None,
                aliyun: Some(AliyunSettings {
                    endpoint: self
                        .sms_endpoint
                        .unwrap_or_else(|| Url::parse(DEFAULT_ALIYUN_ENDPOINT).expect("a URL")),
                    access_key_id: need(self.sms_access_key_id, "WXLOGIN_SMS_ACCESS_KEY_ID")?,
                    access_key_secret: self.sms_access_key_secret.ok_or_else(|| {
                        invalid("WXLOGIN_SMS_PROVIDER=aliyun needs WXLOGIN_SMS_ACCESS_KEY_SECRET")
                    })?,
                    sign_name: need(self.sms_sign_name, "WXLOGIN_SMS_SIGN_NAME")?,
                    template_code: need(self.sms_template_id, "WXLOGIN_SMS_TEMPLATE_ID")?,
                }),
            })),
            other => Err(invalid(format!(
                "WXLOGIN_SMS_PROVIDER: `{other}` is none of tencent, aliyun, emulator, log"
            ))),
        }
    }
}
