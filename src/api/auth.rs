//! Who is asking: the bearer token of a request, matched in constant time against the
//! config's tokens, and what its role lets it do.
//!
//! No token, no data: every route but liveness takes a [`Caller`], so a handler cannot be
//! written that forgets to ask.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::ApiState;
use crate::config::{ApiRole, ApiToken};
use crate::queue::AgentId;

/// The role of a request's token.
#[derive(Debug, Clone)]
pub struct Caller(pub ApiRole);

impl Caller {
    /// Changes to the queues (create and cancel callbacks): admins only.
    pub fn must_admin(&self, what: &str) -> Result<(), ApiError> {
        match self.0 {
            ApiRole::Admin => Ok(()),
            _ => Err(ApiError::forbidden(what)),
        }
    }

    /// Acting as `agent`: an admin, or that agent's own token.
    pub fn must_act_as(&self, agent: &AgentId) -> Result<(), ApiError> {
        match &self.0 {
            ApiRole::Admin => Ok(()),
            ApiRole::Agent(own) if own == agent => Ok(()),
            _ => Err(ApiError::forbidden(&format!("act as agent {agent}"))),
        }
    }
}

/// The role of the token `presented`, if it is one of `tokens`. Every token is compared,
/// each in constant time, so neither a match's place nor its prefix shows in the timing
/// (only a length that matches none does).
pub fn role_of(tokens: &[ApiToken], presented: &str) -> Option<ApiRole> {
    let mut found = None;
    for t in tokens {
        if bool::from(t.secret.as_bytes().ct_eq(presented.as_bytes())) {
            found = Some(t.role.clone());
        }
    }
    found
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(ApiError::unauthorized)?;
        let config = state.config();
        let tokens = config.http.as_ref().map_or(&[][..], |h| &h.tokens[..]);
        role_of(tokens, token.trim())
            .map(Caller)
            .ok_or_else(ApiError::unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_its_role_and_nothing_else_is_any() {
        let alice = AgentId::new("alice").unwrap();
        let tokens = [
            ApiToken {
                secret: "admin-token-0123456789abcdef".into(),
                role: ApiRole::Admin,
            },
            ApiToken {
                secret: "alice-token-0123456789abcdef".into(),
                role: ApiRole::Agent(alice.clone()),
            },
        ];
        assert_eq!(
            role_of(&tokens, "alice-token-0123456789abcdef"),
            Some(ApiRole::Agent(alice))
        );
        assert_eq!(
            role_of(&tokens, "admin-token-0123456789abcdef"),
            Some(ApiRole::Admin)
        );
        for wrong in [
            "",
            "admin-token-0123456789abcde",
            "admin-token-0123456789abcdeF",
        ] {
            assert_eq!(role_of(&tokens, wrong), None, "{wrong}");
        }
    }
}
