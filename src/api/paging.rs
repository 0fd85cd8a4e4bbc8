//! Pagination: `page_size` rules and opaque page tokens bound to the tenant and the query.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{InvalidInput, Problem, TenantId};

/// A listing's page size rule: 0 means `default`, above `max` means `max`, negative is invalid.
pub fn page_size(requested: i32, default: u64, max: u64) -> Result<u64, InvalidInput> {
    match requested {
        n if n < 0 => Err(InvalidInput::field("page_size", Problem::Negative)),
        0 => Ok(default),
        n => Ok((n as u64).min(max)),
    }
}

#[derive(Serialize, Deserialize)]
struct TokenBody {
    /// Fingerprint of tenant and query.
    q: String,
    /// Last key of the previous page.
    k: String,
}

/// Tokens for one query of one tenant: a token made for another query or tenant is refused.
pub struct PageTokens {
    fingerprint: String,
}

impl PageTokens {
    /// `query` names the listing and every filter that shapes it.
    pub fn new(tenant: &TenantId, query: &str) -> Self {
        let digest = Sha256::digest(format!("{}\u{0}{query}", tenant.0).as_bytes());
        Self {
            fingerprint: hex::encode(&digest[..12]),
        }
    }

    /// The key to continue after, from a request's `page_token`.
    pub fn decode(&self, token: &str) -> Result<Option<String>, InvalidInput> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || InvalidInput::field("page_token", Problem::UnknownPageToken);
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let body: TokenBody = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if body.q != self.fingerprint {
            return Err(invalid());
        }
        Ok(Some(body.k))
    }

    /// The `next_page_token` for a page whose last key is `next_after` (empty at the end).
    pub fn encode(&self, next_after: Option<String>) -> String {
        let Some(key) = next_after else {
            return String::new();
        };
        let body = TokenBody {
            q: self.fingerprint.clone(),
            k: key,
        };
        serde_json::to_vec(&body)
            .map(|json| URL_SAFE_NO_PAD.encode(json))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_rules() {
        assert_eq!(page_size(0, 50, 500).ok(), Some(50));
        assert_eq!(page_size(7, 50, 500).ok(), Some(7));
        assert_eq!(page_size(9_999, 50, 500).ok(), Some(500));
        assert!(page_size(-1, 50, 500).is_err());
    }

    #[test]
    fn tokens_are_bound_to_tenant_and_query() {
        let mine = PageTokens::new(&TenantId("a".into()), "coupons");
        let token = mine.encode(Some("cpn_1".into()));
        assert_eq!(mine.decode(&token).ok().flatten().as_deref(), Some("cpn_1"));
        let other_tenant = PageTokens::new(&TenantId("b".into()), "coupons");
        assert!(other_tenant.decode(&token).is_err());
        let other_query = PageTokens::new(&TenantId("a".into()), "coupons active");
        assert!(other_query.decode(&token).is_err());
        assert!(mine.decode("garbage!").is_err());
        assert_eq!(mine.encode(None), "");
    }
}
