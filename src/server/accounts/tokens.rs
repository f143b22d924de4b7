//! API access tokens: JWTs signed with `SECRET_KEY` and `ALGORITHM`.

use crate::error::AppError;
use crate::model::UserInfo;
use crate::server::config::Config;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a JWT carries.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The username at the time the token was made.
    pub name: String,
    pub iat: u64,
    pub exp: u64,
}

/// Issues and checks access tokens.
pub struct Tokens {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    minutes: u64,
}

impl Tokens {
    pub fn new(config: &Config) -> Tokens {
        let algorithm = match config.algorithm.as_str() {
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            _ => Algorithm::HS256,
        };
        let secret = config.secret_key.as_bytes();
        Tokens {
            algorithm,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            minutes: config.access_token_expire_minutes,
        }
    }

    /// A signed access token for `user` and how many seconds it lives.
    pub fn issue(&self, user: &UserInfo) -> Result<(String, u64), AppError> {
        let now = unix_now();
        let ttl = self.minutes * 60;
        let claims = Claims {
            sub: user.id.clone(),
            name: user.username.clone(),
            iat: now,
            exp: now + ttl,
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .map(|t| (t, ttl))
            .map_err(|e| {
                tracing::error!(error = %e, "could not sign a token");
                AppError::Internal
            })
    }

    /// The user a bearer token names, or a 401 that says what is wrong with it.
    pub fn verify(&self, token: &str) -> Result<UserInfo, AppError> {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation) {
            Ok(data) => Ok(UserInfo {
                id: data.claims.sub,
                username: data.claims.name,
            }),
            Err(e) => {
                use jsonwebtoken::errors::ErrorKind;
                let msg = match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        "The access token has expired. Request a new one at /api/v1/token."
                    }
                    ErrorKind::InvalidAlgorithm => {
                        "The access token is signed with the wrong algorithm."
                    }
                    ErrorKind::InvalidSignature => "The access token's signature is not valid.",
                    _ => "The access token is not valid.",
                };
                Err(AppError::Unauthorized(msg.into()))
            }
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}
