//! Prepaid voucher products whose PINs are sold.

use serde::{Deserialize, Serialize};

use super::{Currency, Problem, Violations};

/// Longest product slug (`value`).
const MAX_SLUG_LEN: usize = 64;

/// Texts rendered for the customer after a purchase; `{pin}`, `{serial}`, `{product}` and
/// `{company}` are filled in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationTemplates {
    pub sms: String,
    pub email_subject: String,
    pub email_body: String,
    pub company_name: String,
}

/// The editable fields of a product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductSpec {
    pub name: String,
    pub value: String,
    pub amount: i64,
    pub currency: Option<Currency>,
    pub active: bool,
    pub templates: NotificationTemplates,
}

/// Longest product name, in characters.
const MAX_NAME_LEN: usize = 200;

/// The fields of a product an update replaces; `None` keeps what is there. The product's
/// `value` names it and never changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<Option<Currency>>,
    pub active: Option<bool>,
    pub templates: Option<NotificationTemplates>,
}

impl ProductPatch {
    /// The names of the fields this patch replaces, as an update mask names them.
    pub fn parts(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("amount", self.amount.is_some()),
            ("currency", self.currency.is_some()),
            ("active", self.active.is_some()),
            ("templates", self.templates.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }

    /// `spec` with this patch applied, or every problem: those already in `violations` (found
    /// while the patch was parsed) and every rule the result would break.
    pub fn apply(
        self,
        spec: &ProductSpec,
        mut violations: Violations,
    ) -> Result<ProductSpec, super::InvalidInput> {
        let mut spec = spec.clone();
        let Self {
            name,
            amount,
            currency,
            active,
            templates,
        } = self;
        super::coupon::replace(&mut spec.name, name);
        super::coupon::replace(&mut spec.amount, amount);
        super::coupon::replace(&mut spec.currency, currency);
        super::coupon::replace(&mut spec.active, active);
        super::coupon::replace(&mut spec.templates, templates);
        spec.check("product", &mut violations);
        violations.finish(spec)
    }
}

impl ProductSpec {
    /// Records every rule this product breaks, under `prefix` (such as `product`).
    pub fn check(&self, prefix: &str, violations: &mut Violations) {
        let field = |name: &str| format!("{prefix}.{name}");
        let name_len = self.name.trim().chars().count();
        violations.require(
            (1..=MAX_NAME_LEN).contains(&name_len),
            &field("name"),
            Problem::RequiredUpTo { max: MAX_NAME_LEN },
        );
        violations.require(
            is_slug(&self.value),
            &field("value"),
            Problem::NotASlug { max: 64 },
        );
        violations.require(self.amount > 0, &field("amount"), Problem::NotPositive);
        violations.require(
            self.currency.is_some(),
            &field("currency"),
            Problem::Required,
        );
        let t = &self.templates;
        for (name, text) in [
            ("name", &self.name),
            ("templates.sms", &t.sms),
            ("templates.email_subject", &t.email_subject),
            ("templates.email_body", &t.email_body),
            ("templates.company_name", &t.company_name),
        ] {
            super::text::refuse_nul(&field(name), text, violations);
        }
    }
}

/// A stored product with its stock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    /// Identifier (the PIN API's `idx`).
    pub idx: String,
    pub spec: ProductSpec,
    /// PINs in stock: unsold and not expired.
    pub available: i64,
    pub created_at: super::Timestamp,
}

/// A product as a sale needs it: its id and definition, without the stock count (counting the
/// stock on every sale made each sale cost more as stock grew).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductDefinition {
    /// Identifier (the PIN API's `idx`).
    pub idx: String,
    pub spec: ProductSpec,
}

/// A PIN to import, before sealing. Its `Debug` never shows the PIN.
#[derive(Clone, PartialEq, Eq)]
pub struct PinToImport {
    pub pin: String,
    pub serial: String,
    pub expires_at: Option<super::Timestamp>,
}

impl std::fmt::Debug for PinToImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinToImport")
            .field("pin", &"<redacted>")
            .field("serial", &self.serial)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A PIN ready to be stored: sealed, with its keyed digest for duplicate checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedPin {
    pub ciphertext: String,
    pub digest: String,
    pub serial: String,
    pub expires_at: Option<super::Timestamp>,
}

/// What an import did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportOutcome {
    pub imported: i64,
    pub duplicates: i64,
    pub available: i64,
}

fn is_slug(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_SLUG_LEN
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_bad_field() {
        let spec = ProductSpec {
            name: " ".into(),
            value: "Fifa 2026".into(),
            amount: 0,
            currency: None,
            active: true,
            templates: NotificationTemplates::default(),
        };
        let mut violations = Violations::new();
        spec.check("product", &mut violations);
        let fields: Vec<String> = violations
            .finish(())
            .unwrap_err()
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "product.name",
                "product.value",
                "product.amount",
                "product.currency"
            ]
        );
    }

    #[test]
    fn accepts_the_source_apis_product() {
        let spec = ProductSpec {
            name: "Fifa-2026".into(),
            value: "fifa-2026".into(),
            amount: 10_000,
            currency: Some(Currency::parse("NPR").unwrap()),
            active: true,
            templates: NotificationTemplates::default(),
        };
        let mut violations = Violations::new();
        spec.check("product", &mut violations);
        assert!(violations.is_empty());
    }
}
