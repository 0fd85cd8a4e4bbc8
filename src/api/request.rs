//! What a call's metadata says besides credentials: its request id and the caller's language.

use tonic::metadata::MetadataMap;

use crate::domain::{cart::Checkout, messages::Locale, InvalidInput, Problem};

/// The request id the request-id layer put on the call.
pub(crate) fn request_id(metadata: &MetadataMap) -> String {
    metadata
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The caller's language from `accept-language`; English when absent or unknown.
pub(crate) fn locale(metadata: &MetadataMap) -> Locale {
    metadata
        .get("accept-language")
        .and_then(|v| v.to_str().ok())
        .map(Locale::from_accept_language)
        .unwrap_or_default()
}

/// Header naming the end customer a call is made for (the shopper's IP address or session id),
/// which the code-guessing throttle counts unknown codes by.
pub(crate) const END_USER_HEADER: &str = "x-end-user";
/// Longest `x-end-user` value.
const MAX_END_USER_CHARS: usize = 256;

/// The `x-end-user` header, trimmed; `None` when absent or blank.
pub(crate) fn end_user_header(metadata: &MetadataMap) -> Result<Option<String>, InvalidInput> {
    let Some(value) = metadata.get(END_USER_HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| InvalidInput::field(END_USER_HEADER, Problem::NotPrintableAscii))?
        .trim();
    if text.chars().count() > MAX_END_USER_CHARS {
        return Err(InvalidInput::field(
            END_USER_HEADER,
            Problem::TooLong {
                max: MAX_END_USER_CHARS,
            },
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// Whom the throttle counts a call's unknown codes for: the `x-end-user` the calling service
/// passed, else the checkout's customer (id, else e-mail); calls with neither share one
/// anonymous allowance per tenant.
pub(crate) fn end_user(header: Option<String>, checkout: &Checkout) -> String {
    match header {
        Some(end_user) => format!("end-user:{end_user}"),
        None => checkout
            .customer
            .ledger_key()
            .map(|customer| format!("customer:{customer}"))
            .unwrap_or_default(),
    }
}
