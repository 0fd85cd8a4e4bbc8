//! Buying a prepaid PIN: the order, the sale, and the texts that carry the PIN to the customer.

use super::{product::NotificationTemplates, Currency, Timestamp};

/// A purchase to make: idempotent by `reference`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurchaseOrder {
    pub reference: String,
    /// Digest of the request's content: a retry must match it.
    pub fingerprint: String,
    pub product_id: String,
    pub product_value: String,
    pub amount: i64,
    pub currency: Currency,
    pub phone_number: String,
    pub email: String,
    pub name: String,
    pub request_id: String,
}

/// A completed purchase; the PIN is still sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct Sale {
    pub id: String,
    pub reference: String,
    pub fingerprint: String,
    pub product_id: String,
    pub product_value: String,
    pub amount: i64,
    pub currency: Currency,
    pub sealed_pin: String,
    pub serial: String,
    pub phone_number: String,
    pub email: String,
    pub name: String,
    pub credits_available: i64,
    pub created_at: Timestamp,
}

// Never print a sealed PIN either: it is still a secret's ciphertext.
impl std::fmt::Debug for Sale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sale")
            .field("id", &self.id)
            .field("reference", &self.reference)
            .field("product_value", &self.product_value)
            .finish_non_exhaustive()
    }
}

/// The customer notification texts, with `{pin}`, `{serial}`, `{product}` and `{company}` filled.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedNotification {
    pub sms: String,
    pub email_subject: String,
    pub email_body: String,
}

/// Fills a product's templates for one sold PIN.
pub fn render(
    templates: &NotificationTemplates,
    pin: &str,
    serial: &str,
    product: &str,
) -> RenderedNotification {
    let fill = |text: &str| {
        text.replace("{pin}", pin)
            .replace("{serial}", serial)
            .replace("{product}", product)
            .replace("{company}", &templates.company_name)
            .replace("{Company name}", &templates.company_name)
    };
    RenderedNotification {
        sms: fill(&templates.sms),
        email_subject: fill(&templates.email_subject),
        email_body: fill(&templates.email_body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_placeholder() {
        let templates = NotificationTemplates {
            sms: "Via {company}: your code is {pin} ({serial}) for {product}.".into(),
            email_subject: "Your {product} code".into(),
            email_body: "Code: {pin}\nBest regards,\n{Company name}".into(),
            company_name: "Khalti".into(),
        };
        let rendered = render(&templates, "c3", "S-1", "Fifa-2026");
        assert_eq!(
            rendered.sms,
            "Via Khalti: your code is c3 (S-1) for Fifa-2026."
        );
        assert_eq!(rendered.email_subject, "Your Fifa-2026 code");
        assert_eq!(rendered.email_body, "Code: c3\nBest regards,\nKhalti");
    }
}
