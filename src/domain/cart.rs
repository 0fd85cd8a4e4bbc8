//! Carts and checkouts as the rules engine sees them, parsed from caller input with every amount
//! checked so that no later sum can overflow.

use std::collections::BTreeMap;

use super::{
    policy::TenantPolicy,
    text::{refuse_nul, refuse_nul_in},
    Currency, InvalidInput, Problem, Violations,
};

/// Most lines a cart may have.
pub const MAX_LINES: usize = 1_000;

/// Caller input for one line, before checks.
#[derive(Clone, Debug, Default)]
pub struct LineInput {
    pub line_id: String,
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub categories: Vec<String>,
    /// `None` when the caller sent no price: refused, since a line priced at zero by omission
    /// would make a redemption that gives nothing but still uses the coupon.
    pub unit_price: Option<i64>,
    pub original_unit_price: i64,
    pub quantity: i64,
    pub metadata: BTreeMap<String, String>,
}

/// Caller input for a checkout, before checks.
#[derive(Clone, Debug, Default)]
pub struct CheckoutInput {
    pub currency: String,
    pub lines: Vec<LineInput>,
    pub shipping: i64,
    pub tax: i64,
    pub metadata: BTreeMap<String, String>,
    pub subtotal_override: i64,
    pub customer: Customer,
    pub channel: String,
    pub payment_method: String,
    pub payment_link_id: String,
    pub order_type: String,
    pub loyalty_points_used: i64,
    pub referral_code: String,
}

/// What the caller says of a customer's history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum CustomerHistory {
    /// The service decides from its redemption ledger.
    #[default]
    Unknown,
    New,
    Returning,
}

/// The customer checking out.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Customer {
    pub id: String,
    /// Lower-cased.
    pub email: String,
    pub phone: String,
    pub phone_verified: bool,
    pub history: CustomerHistory,
}

impl Customer {
    /// The key the ledger knows the customer by: the id, else the e-mail; `None` when anonymous.
    pub fn ledger_key(&self) -> Option<String> {
        if !self.id.is_empty() {
            Some(self.id.clone())
        } else if !self.email.is_empty() {
            Some(format!("email:{}", self.email))
        } else {
            None
        }
    }
}

/// One checked line. `unit_price * quantity` fits in an i64, and so does every sum of lines.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Line {
    pub line_id: String,
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub categories: Vec<String>,
    pub unit_price: i64,
    /// Equal to `unit_price` when the caller sent none.
    pub original_unit_price: i64,
    pub quantity: i64,
    pub metadata: BTreeMap<String, String>,
}

/// A checked cart.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Cart {
    pub currency: Currency,
    pub lines: Vec<Line>,
    pub shipping: i64,
    pub tax: i64,
    pub metadata: BTreeMap<String, String>,
    /// Amount of an item-less checkout (a payment link); zero when the cart has lines.
    pub subtotal_override: i64,
}

/// A checked checkout.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Checkout {
    pub cart: Cart,
    pub customer: Customer,
    pub channel: String,
    pub payment_method: String,
    pub payment_link_id: String,
    pub order_type: String,
    pub loyalty_points_used: i64,
    pub referral_code: String,
    /// The tenant's policy, checked before each coupon's own conditions; empty until
    /// [`Checkout::under_policy`] sets it. Not part of the caller's request.
    #[serde(skip)]
    pub policy: TenantPolicy,
}

/// Largest total the engine accepts: small enough that adding shipping and tax cannot overflow.
const MAX_AMOUNT: i64 = i64::MAX / 4;

impl Checkout {
    /// Checks every field, reporting problems under `prefix` (such as `checkout`).
    pub fn parse(input: CheckoutInput, prefix: &str) -> Result<Self, InvalidInput> {
        let mut violations = Violations::new();
        let field = |name: &str| format!("{prefix}.{name}");
        let currency = violations.take(&field("cart.currency"), Currency::parse(&input.currency));
        violations.require(
            input.lines.len() <= MAX_LINES,
            &field("cart.items"),
            Problem::TooManyLines { max: MAX_LINES },
        );
        for (name, value) in [
            ("cart.shipping", input.shipping),
            ("cart.tax", input.tax),
            ("cart.subtotal_override", input.subtotal_override),
            ("loyalty_points_used", input.loyalty_points_used),
        ] {
            violations.require(
                (0..=MAX_AMOUNT).contains(&value),
                &field(name),
                Problem::NegativeOrTooLarge,
            );
        }
        refuse_nul_in_checkout(&input, prefix, &mut violations);
        let mut subtotal: i64 = 0;
        // Checked like the subtotal: two lines of i64::MAX units must not wrap to a small count.
        let mut units: i64 = 0;
        let mut lines = Vec::with_capacity(input.lines.len());
        for (index, line) in input.lines.into_iter().enumerate() {
            let at = |name: &str| format!("{prefix}.cart.items[{index}].{name}");
            violations.require(
                !line.product_id.trim().is_empty(),
                &at("product_id"),
                Problem::Required,
            );
            violations.require(
                line.quantity >= 1,
                &at("quantity"),
                Problem::AtLeast { min: 1 },
            );
            let unit_price = match line.unit_price {
                Some(price) => {
                    violations.require(price >= 0, &at("unit_price"), Problem::Negative);
                    price
                }
                None => {
                    violations.add(at("unit_price"), Problem::UnitPriceRequired);
                    0
                }
            };
            match units
                .checked_add(line.quantity.max(0))
                .filter(|u| *u <= MAX_AMOUNT)
            {
                Some(sum) => units = sum,
                None => violations.add(at("quantity"), Problem::TotalQuantityTooLarge),
            }
            violations.require(
                line.original_unit_price >= 0,
                &at("original_unit_price"),
                Problem::Negative,
            );
            let original = if line.original_unit_price == 0 {
                unit_price
            } else {
                line.original_unit_price
            };
            let line_total = unit_price
                .max(original)
                .checked_mul(line.quantity.max(0))
                .filter(|t| *t <= MAX_AMOUNT);
            match line_total
                .and_then(|t| subtotal.checked_add(t))
                .filter(|s| *s <= MAX_AMOUNT)
            {
                Some(sum) => subtotal = sum,
                None => violations.add(at("quantity"), Problem::LineTotalTooLarge),
            }
            lines.push(Line {
                line_id: if line.line_id.trim().is_empty() {
                    index.to_string()
                } else {
                    line.line_id.trim().to_owned()
                },
                product_id: line.product_id.trim().to_owned(),
                sku: line.sku.trim().to_owned(),
                name: line.name,
                categories: line
                    .categories
                    .iter()
                    .map(|c| c.trim().to_owned())
                    .collect(),
                unit_price,
                original_unit_price: original,
                quantity: line.quantity,
                metadata: line.metadata,
            });
        }
        let Some(currency) = currency else {
            violations.add(field("cart.currency"), Problem::Required);
            return Err(violations.into_error());
        };
        let checkout = Checkout {
            cart: Cart {
                currency,
                subtotal_override: if lines.is_empty() {
                    input.subtotal_override
                } else {
                    0
                },
                lines,
                shipping: input.shipping,
                tax: input.tax,
                metadata: input.metadata,
            },
            customer: Customer {
                id: input.customer.id.trim().to_owned(),
                email: input.customer.email.trim().to_lowercase(),
                phone: input.customer.phone.trim().to_owned(),
                ..input.customer
            },
            channel: input.channel.trim().to_owned(),
            payment_method: input.payment_method.trim().to_owned(),
            payment_link_id: input.payment_link_id.trim().to_owned(),
            order_type: input.order_type.trim().to_owned(),
            loyalty_points_used: input.loyalty_points_used,
            referral_code: input.referral_code.trim().to_owned(),
            policy: TenantPolicy::default(),
        };
        violations.finish(checkout)
    }

    /// The checkout under its tenant's policy: the policy's default channel fills in a missing
    /// channel, and the engine checks the policy before each coupon's own conditions.
    pub fn under_policy(mut self, policy: TenantPolicy) -> Self {
        if self.channel.is_empty() {
            self.channel = policy.default_channel.clone();
        }
        self.policy = policy;
        self
    }
}

/// Every caller string of a checkout must be storable: PostgreSQL text cannot hold a NUL byte.
fn refuse_nul_in_checkout(input: &CheckoutInput, prefix: &str, violations: &mut Violations) {
    let field = |name: &str| format!("{prefix}.{name}");
    for (name, value) in [
        ("cart.currency", &input.currency),
        ("customer.id", &input.customer.id),
        ("customer.email", &input.customer.email),
        ("customer.phone", &input.customer.phone),
        ("channel", &input.channel),
        ("payment_method", &input.payment_method),
        ("payment_link_id", &input.payment_link_id),
        ("order_type", &input.order_type),
        ("referral_code", &input.referral_code),
    ] {
        refuse_nul(&field(name), value, violations);
    }
    refuse_nul_in_map(&field("cart.metadata"), &input.metadata, violations);
    for (index, line) in input.lines.iter().enumerate() {
        let at = |name: &str| format!("{prefix}.cart.items[{index}].{name}");
        for (name, value) in [
            ("line_id", &line.line_id),
            ("product_id", &line.product_id),
            ("sku", &line.sku),
            ("name", &line.name),
        ] {
            refuse_nul(&at(name), value, violations);
        }
        refuse_nul_in(&at("categories"), &line.categories, violations);
        refuse_nul_in_map(&at("metadata"), &line.metadata, violations);
    }
}

fn refuse_nul_in_map(field: &str, map: &BTreeMap<String, String>, violations: &mut Violations) {
    if map
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        violations.add(field, Problem::ContainsNul);
    }
}

impl Cart {
    /// Sum of line subtotals at the prices used (original prices when `original` is true), or
    /// the payment-link amount of an item-less checkout.
    pub fn subtotal(&self, original: bool) -> i64 {
        if self.lines.is_empty() {
            return self.subtotal_override;
        }
        self.lines
            .iter()
            .map(|l| l.price(original) * l.quantity)
            .sum()
    }

    /// Units in the cart; parsing made sure the sum fits.
    pub fn quantity(&self) -> i64 {
        self.lines.iter().map(|l| l.quantity).sum()
    }
}

impl Line {
    /// Unit price used: the original when item promotions are removed.
    pub fn price(&self, original: bool) -> i64 {
        if original {
            self.original_unit_price
        } else {
            self.unit_price
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(price: i64, quantity: i64) -> LineInput {
        LineInput {
            product_id: "p".into(),
            unit_price: Some(price),
            quantity,
            ..Default::default()
        }
    }

    fn input(lines: Vec<LineInput>) -> CheckoutInput {
        CheckoutInput {
            currency: "INR".into(),
            lines,
            ..Default::default()
        }
    }

    #[test]
    fn refuses_a_line_without_a_price_and_nul_bytes() {
        let mut unpriced = line(100, 1);
        unpriced.unit_price = None;
        let mut nul = line(100, 1);
        nul.metadata.insert("brand".into(), "a\0b".into());
        let mut checkout = input(vec![unpriced, nul]);
        checkout.customer.id = "c\0".into();
        let fields: Vec<String> = Checkout::parse(checkout, "checkout")
            .unwrap_err()
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "checkout.customer.id",
                "checkout.cart.items[1].metadata",
                "checkout.cart.items[0].unit_price"
            ]
        );
    }

    #[test]
    fn parses_the_cart_apis_example() {
        let checkout = Checkout::parse(input(vec![line(79_900, 2)]), "checkout").unwrap();
        assert_eq!(checkout.cart.subtotal(false), 159_800);
        assert_eq!(checkout.cart.lines[0].original_unit_price, 79_900);
        assert_eq!(checkout.cart.lines[0].line_id, "0");
    }

    #[test]
    fn refuses_overflowing_and_negative_amounts() {
        let error =
            Checkout::parse(input(vec![line(i64::MAX, 2), line(-1, 0)]), "checkout").unwrap_err();
        let fields: Vec<String> = error.violations.into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "checkout.cart.items[0].quantity",
                "checkout.cart.items[1].quantity",
                "checkout.cart.items[1].unit_price"
            ]
        );
        // Prices of zero, so only the unit count can overflow.
        let error = Checkout::parse(
            input(vec![line(0, i64::MAX), line(0, i64::MAX)]),
            "checkout",
        )
        .unwrap_err();
        assert_eq!(error.violations[0].field, "checkout.cart.items[0].quantity");
        let mut bad_currency = input(vec![]);
        bad_currency.currency = "??".into();
        assert!(Checkout::parse(bad_currency, "checkout").is_err());
    }
}
